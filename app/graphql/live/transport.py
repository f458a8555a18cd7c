"""Where live views meet graphql-transport-ws: the operation a subscription runs for, and its
socket, so that an update encoded once is written to every socket that shares it.

Strawberry sends each subscription result through its own pipeline (result processing, one
JSON encoding, one task wake-up per subscriber), which bounded delivery to thousands of
subscribers. A live view's updates skip it: the handler below tells the subscription which
operation it runs for, and `Sink` writes `next` frames for that operation's id itself. The
operation's start, its errors and its `complete` still go through Strawberry.

Reaches into Strawberry's handler (`run_operation`, `operations`, the adapter's `ws`) and
uvicorn's protocol (its transport, app/ops/edge.py): both are pinned (app/graphql/execution.py:
WRITTEN_FOR), and tests/graphql/test_live_views.py runs through the real handler and server.
"""

import asyncio
import collections
import contextlib
from contextvars import ContextVar

import orjson
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from app.ops.edge import TRANSPORT

# The graphql-transport-ws operation the current task runs (each runs in a task of its own).
current_operation: ContextVar[Operation | None] = ContextVar("current_operation", default=None)

SLOW_SUBSCRIBER_CLOSE = 4008
# Frames a socket may have waiting, in characters, before it counts as too slow to keep up.
BACKLOG_LIMIT = 8_000_000


class TransportHandler(BaseGraphQLTransportWSHandler):
    async def run_operation(self, operation: Operation) -> None:
        current_operation.set(operation)
        await super().run_operation(operation)


class SlowSocket(Exception):
    """A socket whose client stopped reading: it has been closed."""


class Sink:
    """One subscription's end of its socket: writes `next` frames of pre-encoded payloads.

    A frame goes out at once while the socket's buffer is low (the write cannot wait then):
    the fan-out writes to thousands of sockets from one task, with no task per socket. A
    socket whose client reads slowly gets its frames queued, in order, behind a writer task
    of its own, so that it holds up nobody; one that falls BACKLOG_LIMIT behind is closed,
    and its client subscribes again (and gets a new snapshot)."""

    def __init__(self, operation: Operation) -> None:
        self._operation = operation
        self._operations = operation.handler.operations
        self._socket: WebSocket = operation.handler.websocket.ws
        self._transport = self._socket.scope.get(TRANSPORT)
        self._prefix = f'{{"id":{orjson.dumps(operation.id).decode()},"type":"next","payload":'
        self._backlog: collections.deque[str] = collections.deque()
        self._backlog_size = 0
        self._writer: asyncio.Task | None = None

    @property
    def open(self) -> bool:
        """Still subscribed: not completed by the client, not ended by the server."""
        return self._operations.get(self._operation.id) is self._operation

    async def send(self, payload: str) -> int:
        """Write (or queue) one `next` frame; its size, 0 once closed. SlowSocket when the
        client is too far behind (the socket is then closed)."""
        if not self.open:
            return 0
        frame = f"{self._prefix}{payload}}}"
        if self._backlog or self._would_wait():
            self._queue(frame)
            return len(frame)
        try:
            await self._socket.send_text(frame)
        except Exception:  # noqa: BLE001 - the client went away: nothing more to send
            return 0
        return len(frame)

    async def drained(self) -> None:
        """Once the queued frames are written (before the operation's last message)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    def _would_wait(self) -> bool:
        """Above the low-water mark, the transport may be paused: a write would wait for
        the client. (Without a known transport, writes are awaited in turn.)"""
        if self._transport is None:
            return False
        low, _high = self._transport.get_write_buffer_limits()
        return self._transport.get_write_buffer_size() > low

    def _queue(self, frame: str) -> None:
        if self._backlog_size + len(frame) > BACKLOG_LIMIT:
            self._backlog.clear()
            asyncio.ensure_future(self._close_slow())
            raise SlowSocket
        self._backlog.append(frame)
        self._backlog_size += len(frame)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_backlog())

    async def _write_backlog(self) -> None:
        try:
            while self._backlog and self.open:
                await self._socket.send_text(self._backlog[0])
                self._backlog_size -= len(self._backlog.popleft())
        except Exception:  # noqa: BLE001 - the client went away
            self._backlog.clear()
        finally:
            self._writer = None

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):  # already gone: nothing to close
            await self._socket.close(
                code=SLOW_SUBSCRIBER_CLOSE, reason="Too slow to keep up: subscribe again."
            )
