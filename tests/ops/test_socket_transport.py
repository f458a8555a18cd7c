"""The seam into uvicorn that live views rely on: a WebSocket's scope carries the asyncio
transport under uvicorn's protocol, whose write buffer tells whether a write would wait."""

import asyncio

import uvicorn
import websockets

from app.ops.edge import TRANSPORT, socket_transport
from tests.servers import free_port


async def test_uvicorn_gives_the_transport_of_each_websocket():
    found = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        scope[TRANSPORT] = socket_transport(send)
        found.append(scope[TRANSPORT])
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close"})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, log_config=None, ws="websockets-sansio", loop="uvloop")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as socket:
            assert await socket.recv() == "hello"
    finally:
        server.should_exit = True
        await serving
    (transport,) = found
    low, high = transport.get_write_buffer_limits()
    assert 0 <= low <= high
    assert transport.get_write_buffer_size() >= 0
