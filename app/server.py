"""The ASGI application: GraphQL over HTTP and WebSocket at /graphql, health and metrics."""

import asyncio
import contextlib
import gc
import logging
import weakref
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
import uvicorn
from cross_web import HTTPException
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app import ide
from app.config import Settings
from app.db import Database
from app.events.broker import Broker
from app.events.retention import keep_window
from app.graphql.context import Context
from app.graphql.http import GraphQLResponseJson
from app.graphql.live.engine import LiveViews
from app.graphql.live.transport import TransportHandler
from app.graphql.schema import schema
from app.ops.edge import BodyLimit, RequestContext
from app.ops.health import Readiness
from app.ops.metrics import CONTENT_TYPE, Metrics

logger = logging.getLogger("binocular.server")
GOING_AWAY = 1001
TOKEN_EXPIRED = 4403


class _Router(GraphQLResponseJson, GraphQLRouter):
    graphql_transport_ws_handler_class = TransportHandler

    def __init__(self, *args, websockets: weakref.WeakSet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._websockets = websockets

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than json for the large lists of queue activity.
        # Text, not bytes: Strawberry would send bytes as binary WebSocket frames, which
        # graphql-transport-ws clients refuse.
        return orjson.dumps(data).decode()

    def create_response(self, response_data, sub_response: Response) -> Response:
        # The JSON as orjson's bytes: encode_json's text would be encoded again to send.
        response = Response(
            orjson.dumps(response_data),
            media_type="application/json",
            status_code=sub_response.status_code or 200,
        )
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    async def render_graphql_ide(self, request) -> HTMLResponse:
        """Our own GraphiQL, with its assets served by this server (Strawberry's uses a CDN)."""
        return HTMLResponse(ide.page())

    def decode_json(self, data: str | bytes) -> object:
        """Text that is not UTF-8, or JSON nested deeper than Python decodes, is invalid JSON
        like any other: 400 (Strawberry only catches JSONDecodeError, the rest made a 500)."""
        try:
            return super().decode_json(data)
        except (UnicodeDecodeError, RecursionError) as error:
            raise HTTPException(400, "Unable to parse request body as JSON") from error

    async def parse_http_body(self, request):
        """A JSON body must be an operation (an object; a list is a batch, refused later):
        Strawberry calls .get() on whatever it decoded, and null, 5 or "x" made a 500."""
        content_type, _ = parse_content_type(request.content_type or "")
        if (
            request.method == "POST"
            and "application/json" in content_type
            and not isinstance(self.parse_json(await request.get_body()), dict | list)
        ):
            raise HTTPException(400, "The request body must be a JSON object.")
        return await super().parse_http_body(request)

    async def on_ws_connect(self, context: Context):
        """A WebSocket needs a valid token in its connection_init payload, else 4403; it is
        closed with 4403 when that token expires."""
        if await context.viewer() is None:
            raise ConnectionRejectionError()
        self._websockets.add(context.request)
        expiry = context.token_expiry()  # None if it expired since the check just above
        delay = (expiry - datetime.now(UTC)).total_seconds() if expiry else 0
        asyncio.get_running_loop().call_later(
            max(delay, 0), lambda: asyncio.ensure_future(_close_expired(context.request))
        )
        return await super().on_ws_connect(context)


async def _close_expired(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):  # already closed: nothing to do
        await websocket.close(code=TOKEN_EXPIRED, reason="The token has expired.")


def create_app(settings: Settings) -> FastAPI:
    if not settings.jwt_secret:
        raise ValueError("BINOCULAR_JWT_SECRET is not set: the server cannot check tokens.")
    db = Database(settings.database_url, settings.pool_size)
    broker = Broker(db, poll_seconds=settings.event_poll_seconds)
    metrics = Metrics(broker)
    live_views = LiveViews(db, broker, metrics, verify_sharing=settings.live_view_verify_sharing)
    readiness = Readiness(db)
    websockets: weakref.WeakSet[WebSocket] = weakref.WeakSet()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        db.on_events_committed.append(metrics.count_events)
        await broker.start()
        _tune_garbage_collector()
        retention = None
        if settings.retention_days is not None:
            window = timedelta(days=settings.retention_days)
            retention = asyncio.create_task(
                keep_window(db, window, settings.retention_check_seconds), name="retention"
            )
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            await live_views.stop()
            await broker.stop()
            await db.dispose()

    async def context() -> Context:
        return Context(
            db, broker, metrics, settings.jwt_secret, live_views, settings.compiled_execution
        )

    router = _Router(
        schema,
        context_getter=context,
        # Only graphql-transport-ws: the legacy graphql-ws protocol stays off.
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        graphql_ide="graphiql",
        # WebSockets from pages of other origins are refused (403) unless listed, as CORS is.
        allowed_origins=settings.allowed_origins,
        websockets=websockets,
    )
    app = FastAPI(
        title="Binocular", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.include_router(router, prefix="/graphql")
    app.mount(ide.ASSETS_URL, ide.Assets(), name="graphiql-assets")
    app.state.db, app.state.broker, app.state.metrics = db, broker, metrics
    app.state.live_views = live_views
    app.state.websockets = websockets

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """The process is up and its database answers."""
        try:
            async with db.read() as session:
                await session.exec(sa.select(1))
        except Exception:  # noqa: BLE001 - whatever the failure, the database is unreachable
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready to serve: the database answers and its migrations are at head."""
        problems = await readiness.problems()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Pages of the allowed origins may call the API over HTTP. Outside BodyLimit, so that
    # they can read a 413; inside RequestContext, so that preflights get a request id and are
    # measured. The token travels in the Authorization header, never in a cookie: no
    # credentials, which also keeps "*" a plain wildcard rather than every origin echoed back.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type", "x-request-id"],
        expose_headers=["x-request-id"],
    )
    app.add_middleware(RequestContext, metrics=metrics)
    return app


def _tune_garbage_collector() -> None:
    """What start-up allocated lives as long as the process: freeze it out of collections,
    and collect the young generation less often. Full collections over a large heap were
    the long tail of response times."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def close_websockets(app: FastAPI) -> None:
    """Tell every subscriber the server is going away (1001), so it reconnects elsewhere."""
    sockets = list(app.state.websockets)
    if sockets:
        logger.info("closing %d WebSocket connections: going away", len(sockets))
    for websocket in sockets:
        with contextlib.suppress(Exception):
            await websocket.close(code=GOING_AWAY, reason="Server going away")


class _GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT: subscribers get 1001 first; in-flight requests then finish."""

    async def shutdown(self, sockets=None) -> None:
        await close_websockets(self.config.app)
        await asyncio.sleep(0.1)  # let the close frames leave before uvicorn drops the sockets
        await super().shutdown(sockets)


def server_for(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # WebSocket pings keep idle subscriptions open through proxies.
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Events are a few hundred bytes: compressing each one for each subscriber cost more
        # CPU than anything else in delivering to thousands, and saves little bandwidth.
        ws_per_message_deflate=False,
        # Named, not "auto": live views write frames through its protocol (DirectSocket in
        # app/graphql/live/transport.py).
        ws="websockets-sansio",
        timeout_graceful_shutdown=10,
    )
    return _GracefulServer(config)


def run(settings: Settings, host: str, port: int) -> None:
    server_for(create_app(settings), host, port).run()
