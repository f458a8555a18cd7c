"""The HTTP edge, as ASGI middleware: request ids, access log and metrics, a body size limit,
and quiet handling of clients that leave mid-request."""

import json
import logging
import re
import time
import uuid

import structlog
from starlette.requests import ClientDisconnect

from app.ops.metrics import Metrics

access_log = logging.getLogger("binocular.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


# Where a WebSocket's scope carries the server's own ASGI `send`, under every middleware: live
# views write their frames through it (app/graphql/live/transport.py).
SERVER_SEND = "binocular.server_send"


class RequestContext:
    """Gives each request an id (X-Request-ID, echoed back), logs it and measures it."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        status = {"code": 101 if scope["type"] == "websocket" else 500}
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "websocket.close" and status["code"] == 101:
                status["code"] = 403  # closed before it was accepted
            await send(message)

        route = self.metrics.route(scope["path"])
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except ClientDisconnect:
                # The client left before sending its whole request: nothing to answer.
                status["code"] = 499
                access_log.info("client disconnected mid-request", extra={"path": scope["path"]})
                return
            finally:
                elapsed = time.perf_counter() - started
                method = scope.get("method", "WEBSOCKET")
                self.metrics.requests.labels(method, route, str(status["code"])).inc()
                if scope["type"] == "http":
                    self.metrics.latency.labels(route).observe(elapsed)
                    access_log.info(
                        "%s %s %s %.1fms", method, scope["path"], status["code"], elapsed * 1000
                    )


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, before the application reads them."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        body, more = [], True
        size = 0
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(send)
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
        replayed = {"type": "http.request", "body": b"".join(body), "more_body": False}

        async def receive_again():
            nonlocal replayed
            if replayed is None:
                return await receive()
            message, replayed = replayed, None
            return message

        await self.app(scope, receive_again, send)

    async def _refuse(self, send):
        body = json.dumps(
            {
                "errors": [
                    {
                        "message": f"Request body larger than {self.max_bytes} bytes.",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
