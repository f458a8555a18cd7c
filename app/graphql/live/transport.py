"""Where live views meet graphql-transport-ws: the operation a subscription runs for, and its
socket, so that an update encoded once is written to every socket that shares it.

Strawberry sends each subscription result through its own pipeline (result processing, one
JSON encoding, one task wake-up per subscriber), which bounded delivery to thousands of
subscribers. A live view's updates skip it: the handler below tells the subscription which
operation it runs for, and `Sink` writes `next` frames for that operation's id itself. The
operation's start, its errors and its `complete` still go through Strawberry.

Reaches into Strawberry's handler (`run_operation`, `operations`, the adapter's `ws`) and
uvicorn's WebSocket protocol (DirectSocket): both are pinned (app/graphql/execution.py:
WRITTEN_FOR); tests/graphql/test_live_views.py runs through the real handler and server, and
tests/ops/test_socket_transport.py through uvicorn's protocol.
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
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

from app.ops.edge import SERVER_SEND

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


class DirectSocket:
    """Writes text frames straight through uvicorn's WebSocket protocol (websockets-sansio),
    exactly as its ASGI `send` does for `websocket.send`, without the ASGI and Starlette
    layers above it: those cost about 30 microseconds a frame, most of a fan-out to
    thousands. uvicorn is pinned (WRITTEN_FOR); tests/ops/test_socket_transport.py runs it."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, server_send) -> "DirectSocket | None":
        """For the server's ASGI `send` of a WebSocket: a method of uvicorn's protocol."""
        protocol = getattr(server_send, "__self__", None)
        return cls(protocol) if isinstance(protocol, WebSocketsSansIOProtocol) else None

    def write_now(self, text: str) -> bool | None:
        """True once written; False where the write would wait (the client reads slowly,
        the transport is paused); None once the socket is closing (from either end)."""
        protocol = self._protocol
        if (
            protocol.disconnected
            or protocol.close_sent
            or not protocol.handshake_complete
            or protocol.transport.is_closing()
            or protocol.conn.state is not State.OPEN
        ):
            return None
        if not protocol.writable.is_set():
            return False
        try:
            protocol.conn.send_text(text.encode())
        except InvalidState:  # the client's close frame arrived: as uvicorn's send does
            return None
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        return True


class Sink:
    """One subscription's end of its socket: writes `next` frames of pre-encoded payloads.

    A frame goes out at once, written from the fan-out's own task with no await, while the
    socket can take it: thousands of sockets cost no task and no wake-up each. A socket
    whose client reads slowly gets its frames queued, in order, behind a writer task of its
    own, so that it holds up nobody; one that falls BACKLOG_LIMIT behind is closed, and its
    client subscribes again (and gets a new snapshot). Under another server than uvicorn,
    every frame goes through that writer."""

    def __init__(self, operation: Operation) -> None:
        self._operation = operation
        self._operations = operation.handler.operations
        self._socket: WebSocket = operation.handler.websocket.ws
        self._direct = DirectSocket.of(self._socket.scope.get(SERVER_SEND))
        self._prefix = f'{{"id":{orjson.dumps(operation.id).decode()},"type":"next","payload":'
        self._backlog: collections.deque[str] = collections.deque()
        self._backlog_size = 0
        self._writer: asyncio.Task | None = None
        self._slow = False

    @property
    def open(self) -> bool:
        """Still subscribed: not completed by the client, not ended by the server, not
        closed for being too slow."""
        return not self._slow and self._operations.get(self._operation.id) is self._operation

    def send(self, payload: str) -> int:
        """Write (or queue) one `next` frame; its size, 0 once closed. SlowSocket when the
        client is too far behind (the socket is then closed)."""
        if not self.open:
            return 0
        frame = f"{self._prefix}{payload}}}"
        if not self._backlog and self._direct is not None:
            written = self._direct.write_now(frame)
            if written is None:
                return 0
            if written:
                return len(frame)
        self._queue(frame)
        return len(frame)

    async def drained(self) -> None:
        """Once the queued frames are written (before the operation's last message)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    def _queue(self, frame: str) -> None:
        if self._backlog_size + len(frame) > BACKLOG_LIMIT:
            self._slow = True
            self._backlog.clear()
            self._backlog_size = 0
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
