"""The seam into uvicorn that live views rely on: under every middleware, a WebSocket's scope
carries the server's own ASGI `send`, a method of uvicorn's WebSocket protocol, through which
DirectSocket writes frames with no await, as uvicorn's `send` would, until the client stops
reading (the write would wait) or the socket closes."""

import asyncio

import uvicorn

from app.graphql.live.transport import DirectSocket
from app.ops.edge import SERVER_SEND
from tests.servers import free_port


async def serving(app):
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, log_config=None, ws="websockets-sansio", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port


async def test_frames_go_straight_through_uvicorns_protocol_until_the_client_stops_reading():
    outcomes: list = []
    paused = asyncio.Event()
    closed = asyncio.Event()

    async def app(scope, receive, send):
        scope[SERVER_SEND] = send
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        direct = DirectSocket.of(scope[SERVER_SEND])
        outcomes.append(direct.write_now("hello"))
        # The client reads nothing more: the writes fill the buffers until one would wait.
        frame = "x" * 65536
        for _ in range(10_000):
            written = direct.write_now(frame)
            if written is not True:
                outcomes.append(written)
                break
            await asyncio.sleep(0)
        paused.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass
        outcomes.append(direct.write_now("after the client left"))
        closed.set()

    server, task, port = await serving(app)
    try:
        # A client that reads the handshake and the first frame, then nothing more.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(7) == b"\x81\x05hello"
        writer.transport.pause_reading()
        await asyncio.wait_for(paused.wait(), 30)
        writer.close()
        await asyncio.wait_for(closed.wait(), 30)
    finally:
        server.should_exit = True
        await task
    assert outcomes == [True, False, None]


def test_another_servers_send_is_not_written_to_directly():
    async def send(message):
        pass

    assert DirectSocket.of(send) is None
    assert DirectSocket.of(None) is None
