"""Where live views meet graphql-transport-ws: the operation a subscription runs for, and its
socket, so that an update encoded once is written to every socket that shares it.

Strawberry sends each subscription result through its own pipeline (result processing, one
JSON encoding, one task wake-up per subscriber), which bounded delivery to thousands of
subscribers. A live view's updates skip it: the handler below tells the subscription which
operation it runs for, and `Sink` writes `next` frames for that operation's id itself. The
operation's start, its errors and its `complete` still go through Strawberry.

Reaches into Strawberry's handler (`run_operation`, `operations`, the adapter's `ws`): the
version is pinned (app/graphql/execution.py: WRITTEN_FOR) and tests/graphql/test_live_views.py
runs through the real handler.
"""

import asyncio
import contextlib
from contextvars import ContextVar

import orjson
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

# The graphql-transport-ws operation the current task runs (each runs in a task of its own).
current_operation: ContextVar[Operation | None] = ContextVar("current_operation", default=None)

SLOW_SUBSCRIBER_CLOSE = 4008
# How long one socket may hold up a write before it counts as too slow to keep up.
WRITE_BUDGET_SECONDS = 0.05


class TransportHandler(BaseGraphQLTransportWSHandler):
    async def run_operation(self, operation: Operation) -> None:
        current_operation.set(operation)
        await super().run_operation(operation)


class SlowSocket(Exception):
    """A socket that did not take a frame within the write budget: it has been closed."""


class Sink:
    """One subscription's end of its socket: writes `next` frames of pre-encoded payloads."""

    def __init__(self, operation: Operation) -> None:
        self._operation = operation
        self._operations = operation.handler.operations
        self._socket: WebSocket = operation.handler.websocket.ws
        self._prefix = f'{{"id":{orjson.dumps(operation.id).decode()},"type":"next","payload":'

    @property
    def open(self) -> bool:
        """Still subscribed: not completed by the client, not ended by the server."""
        return self._operations.get(self._operation.id) is self._operation

    async def send(self, payload: str) -> int:
        """Write one `next` frame; the bytes written (0 once closed). A socket that does not
        take it within the write budget is closed (its client resubscribes and gets a new
        snapshot) and SlowSocket raised."""
        if not self.open:
            return 0
        frame = f"{self._prefix}{payload}}}"
        try:
            async with asyncio.timeout(WRITE_BUDGET_SECONDS):
                await self._socket.send_text(frame)
        except TimeoutError:
            asyncio.ensure_future(self._close_slow())
            raise SlowSocket from None
        except Exception:  # noqa: BLE001 - the client went away: nothing more to send
            return 0
        return len(frame)

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):  # already gone: nothing to close
            await self._socket.close(
                code=SLOW_SUBSCRIBER_CLOSE, reason="Too slow to keep up: subscribe again."
            )
