"""Live connections follow the token and the directory, and monitoring stays silent to the
monitored, on a real server over real WebSockets."""

import asyncio
import json
import time

import websockets

from app.auth import issue_token
from app.directory.load import DirectoryFile, load_directory
from tests.conftest import DIRECTORY, JWT_SECRET
from tests.events.test_subscription import Subscriber, kinds, monitored
from tests.servers import raw_subscriber


async def test_a_subscription_is_closed_with_4403_when_its_token_expires(server, live_api):
    """It used to go on streaming: a 3-second token still received events 5 seconds later."""
    token = issue_token(JWT_SECRET, "ann", 3)
    opened = time.monotonic()
    async with raw_subscriber(server.ws_url, token) as ws:
        await monitored(live_api)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "next"
        try:
            while True:  # nothing else may arrive: the socket closes at expiry (+2 s leeway)
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] != "next", message
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd.code == 4403, closed
    assert 3 <= time.monotonic() - opened < 8


async def test_a_directory_load_takes_effect_from_the_next_event(server, live_api, db):
    async with Subscriber(server, live_api.token("ann")) as ann:
        _, north = await monitored(live_api)
        assert kinds(await ann.wait_for(1)) == [("STARTED", north)]
        moved = {
            "divisions": DIRECTORY["divisions"],
            "users": [{**ann_entry(), "division": "south"}],
        }
        await load_directory(db, DirectoryFile.model_validate(moved))  # Ann moves to South
        _, still_north = await monitored(live_api, agent="dina", supervisor="carl")
        _, south = await monitored(live_api, queue="sales", agent="tom", supervisor="sue")
        events = await ann.wait_for(2)
    assert kinds(events) == [("STARTED", north), ("STARTED", south)], still_north


async def test_the_monitored_agent_is_never_told(server, live_api, db):
    """Nor when the agent is a supervisor too: Sal takes calls, and Ann monitors one."""
    sal = {"key": "sal", "name": "Sal Ito", "division": "north", "roles": ["AGENT", "SUPERVISOR"]}
    await load_directory(
        db, DirectoryFile.model_validate({"divisions": DIRECTORY["divisions"], "users": [sal]})
    )
    live_api.ids.update(await _user_ids(live_api, "sal"))
    async with (
        Subscriber(server, live_api.token("bob")) as bob,
        Subscriber(server, live_api.token("sal")) as sal_events,
        Subscriber(server, live_api.token("carl")) as carl,
    ):
        _, of_bob = await monitored(live_api, agent="bob")
        _, of_sal = await monitored(live_api, agent="sal")
        assert kinds(await carl.wait_for(2)) == [("STARTED", of_bob), ("STARTED", of_sal)]
        await asyncio.sleep(1)  # anything for Bob or Sal would have arrived by now
    assert bob.events == []  # an agent is told of no monitoring at all
    assert kinds(sal_events.events) == [("STARTED", of_bob)]  # a supervisor, not on that call


def ann_entry() -> dict:
    return next(user for user in DIRECTORY["users"] if user["key"] == "ann")


async def _user_ids(api, key: str) -> dict[str, str]:
    data = await api.data(
        "query($q: ID!) { queueActivity(queueId: $q) { queue { id } } viewer { id } }",
        {"q": api.ids["billing"]},
        user=key,
    )
    return {key: data["viewer"]["id"]}


async def test_queries_over_one_websocket_read_current_data(server, live_api):
    """Each operation on a socket reads the database as it is: a query sent again after the
    interaction ended (over HTTP) no longer answers CONNECTED."""
    interaction = await live_api.create()
    await live_api.connect(interaction, "bob")
    query = "query($id: ID!) { interaction(id: $id) { state agents { state } } }"
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"Authorization": f"Bearer {live_api.token('ann')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        async def ask(operation_id: str) -> dict:
            payload = {"query": query, "variables": {"id": interaction}}
            await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "complete"
            return answer["payload"]["data"]["interaction"]

        assert await ask("1") == {"state": "CONNECTED", "agents": [{"state": "CONNECTED"}]}
        await live_api.end(interaction)
        assert await ask("2") == {"state": "ENDED", "agents": [{"state": "DISCONNECTED"}]}
