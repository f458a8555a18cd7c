"""Delivery edges, on a real uvicorn server running the test app in this process (so that
the test can look at its broker): protocols, cleanup, slow consumers."""

import asyncio
import contextlib
import json

import pytest
import uvicorn
import websockets

from tests.events.test_log import new_session, record_started
from tests.events.test_subscription import Subscriber
from tests.servers import free_port, raw_subscriber


@pytest.fixture
async def served(app):
    """The session's app (lifespan already running) behind a real uvicorn server."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    server.url, server.ws_url, server.app = (
        f"http://127.0.0.1:{port}",
        f"ws://127.0.0.1:{port}/graphql",
        app,
    )
    yield server
    server.should_exit = True
    await task


async def wait_until(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_the_legacy_graphql_ws_protocol_is_refused(served):
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(served.ws_url, subprotocols=["graphql-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            await ws.recv()
    assert closed.value.rcvd.code == 4406  # Subprotocol not acceptable


async def test_a_closed_socket_leaves_no_subscriber_behind(served, api):
    broker = served.app.state.broker
    before = broker.subscriber_count
    subscribers = [Subscriber(served, api.token("ann")) for _ in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        for subscriber in subscribers:
            await stack.enter_async_context(subscriber)
        await wait_until(lambda: broker.subscriber_count == before + 5)
    await wait_until(lambda: broker.subscriber_count == before)


async def test_a_subscriber_too_slow_to_keep_up_is_closed_with_4008(served, api, db):
    broker = served.app.state.broker
    limit, broker._queue_limit = broker._queue_limit, 2
    try:
        async with raw_subscriber(served.ws_url, api.token("ann")) as ws:
            await wait_until(lambda: broker.subscriber_count >= 1)
            # Five events committed at once reach the reader in one batch: more than the
            # subscriber may hold.
            async with db.transaction() as session:
                for n in range(5):
                    monitoring = await new_session(session, api.ids, 300 + n)
                    await record_started(session, monitoring, api.ids)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 4008
        assert "after" in closed.value.rcvd.reason
    finally:
        broker._queue_limit = limit
