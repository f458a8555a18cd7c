"""monitoringSessionChanged over graphql-transport-ws, with a real client and server."""

import asyncio
import contextlib
import json
import time
from datetime import datetime

import pytest
from gql import GraphQLRequest
from websockets.exceptions import ConnectionClosed

from tests.servers import metric, ws_client

SUBSCRIPTION = """
subscription($interactionId: ID, $queueId: ID, $mine: Boolean, $after: String) {
  monitoringSessionChanged(interactionId: $interactionId, queueId: $queueId, mine: $mine,
                           after: $after) {
    cursor kind occurredAt session { id state monitor { key } interaction { id state } }
  }
}"""


def subscription(query: str = SUBSCRIPTION, **variables) -> GraphQLRequest:
    return GraphQLRequest(query, variable_values=variables)


SETTLE = 0.5  # time for the server to accept a subscription before the test acts


class Subscriber:
    """A real graphql-transport-ws client collecting events in the background."""

    def __init__(self, server, token, query=SUBSCRIPTION, **variables):
        self.client = ws_client(server, token)
        self.query = query
        self.variables = variables
        self.events: list[dict] = []
        self.arrival_seconds: list[float] = []
        self.arrived = asyncio.Condition()
        self.task: asyncio.Task | None = None

    async def _run(self):
        async with self.client as session:
            async for result in session.subscribe(subscription(self.query, **self.variables)):
                async with self.arrived:
                    (payload,) = result.values()  # the subscription's one field
                    self.events.append(payload)
                    self.arrival_seconds.append(time.time())
                    self.arrived.notify_all()

    async def __aenter__(self):
        self.task = asyncio.create_task(self._run())
        await asyncio.sleep(SETTLE)
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    async def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.events) >= count), timeout
            )
        return self.events


def kinds(events):
    return [(e["kind"], e["session"]["id"]) for e in events]


async def monitored(api, queue="billing", agent="bob", supervisor="ann"):
    interaction = await api.create(queue=queue)
    await api.connect(interaction, agent)
    session = (await api.start(supervisor, interaction))["session"]
    return interaction, session["id"]


async def test_start_and_stop_arrive_in_order(server, live_api):
    async with Subscriber(server, live_api.token("ann")) as sub:
        interaction, session = await monitored(live_api)
        await live_api.stop("ann", session)
        events = await sub.wait_for(2)
    assert kinds(events) == [("STARTED", session), ("ENDED", session)]
    assert events[0]["session"]["interaction"]["id"] == interaction
    assert events[1]["session"]["state"] == "ENDED"
    assert events[0]["cursor"] != events[1]["cursor"]


async def test_automatic_ends_are_events_too(server, live_api):
    async with Subscriber(server, live_api.token("ann")) as sub:
        # Each step waits for its event before the next change commits, so that the state an
        # event shows cannot depend on how fast delivery was.
        first, first_session = await monitored(live_api)
        await sub.wait_for(1)
        await live_api.end(first)
        await sub.wait_for(2)
        second, second_session = await monitored(live_api)
        await sub.wait_for(3)
        await live_api.disconnect(second, "bob")
        events = await sub.wait_for(4)
    assert kinds(events) == [
        ("STARTED", first_session),
        ("ENDED", first_session),
        ("STARTED", second_session),
        ("ENDED", second_session),
    ]
    # Each event shows the rows as they are when it is delivered, not as the connection saw
    # them for an earlier event.
    states = [e["session"]["interaction"]["state"] for e in events]
    assert states == ["CONNECTED", "ENDED", "CONNECTED", "WAITING"]


async def test_filters(server, live_api):
    watched = await live_api.create(queue="billing")
    await live_api.connect(watched, "bob")
    other = await live_api.create(queue="support")
    await live_api.connect(other, "eli")
    token = live_api.token("ann")
    async with (
        Subscriber(server, token, interactionId=watched) as by_interaction,
        Subscriber(server, token, queueId=live_api.ids["support"]) as by_queue,
        Subscriber(server, token, mine=True) as mine,
    ):
        carl_session = (await live_api.start("carl", watched))["session"]["id"]
        ann_session = (await live_api.start("ann", other))["session"]["id"]
        assert kinds(await by_interaction.wait_for(1)) == [("STARTED", carl_session)]
        assert kinds(await by_queue.wait_for(1)) == [("STARTED", ann_session)]
        assert kinds(await mine.wait_for(1)) == [("STARTED", ann_session)]
        await asyncio.sleep(SETTLE)
        assert len(by_interaction.events) == len(by_queue.events) == len(mine.events) == 1


async def test_other_divisions_events_never_arrive(server, live_api):
    async with Subscriber(server, live_api.token("sue")) as south:
        _, north_session = await monitored(live_api)
        await live_api.stop("ann", north_session)
        _, south_session = await monitored(live_api, queue="sales", agent="tom", supervisor="sue")
        events = await south.wait_for(1)
        await asyncio.sleep(SETTLE)
    # The first and only event sue receives is her own: the north ones were never sent.
    assert kinds(events) == [("STARTED", south_session)]


async def test_a_filter_on_an_invisible_queue_delivers_nothing(server, live_api):
    async with Subscriber(server, live_api.token("sue"), queueId=live_api.ids["billing"]) as sub:
        await monitored(live_api)
        await asyncio.sleep(SETTLE * 2)
    assert sub.events == []


async def test_resume_after_disconnect_without_gap_or_repeat(server, live_api):
    async with Subscriber(server, live_api.token("ann")) as first:
        _, session_1 = await monitored(live_api)
        seen = await first.wait_for(1)
    cursor = seen[0]["cursor"]
    # While nobody listens: three more events.
    await live_api.stop("ann", session_1)
    _, session_2 = await monitored(live_api)
    await live_api.stop("ann", session_2)
    async with Subscriber(server, live_api.token("ann"), after=cursor) as resumed:
        replayed = await resumed.wait_for(3)
        _, session_3 = await monitored(live_api)  # and then live
        events = await resumed.wait_for(4)
        await asyncio.sleep(SETTLE)
    assert kinds(events) == [
        ("ENDED", session_1),
        ("STARTED", session_2),
        ("ENDED", session_2),
        ("STARTED", session_3),
    ]
    assert replayed[2]["session"]["state"] == "ENDED"
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == 4 and cursor not in cursors


async def test_a_bad_cursor_is_bad_user_input(server, live_api):
    client = ws_client(server, live_api.token("ann"))
    async with client as session:
        with pytest.raises(Exception) as raised:
            async for _ in session.subscribe(subscription(after="nope")):
                pass
    assert "not a valid cursor" in str(raised.value)


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_connection_without_a_valid_token_is_closed_with_4403(server, token):
    client = ws_client(server, token)
    with pytest.raises(Exception) as raised:
        async with client as session:
            async for _ in session.subscribe(subscription()):
                pass
    closed = raised.value
    while closed is not None and not isinstance(closed, ConnectionClosed):
        closed = closed.__cause__  # gql wraps the websockets exception
    assert closed is not None, raised.value
    assert closed.rcvd.code == 4403


async def test_subscribers_with_the_same_answer_share_one_execution(server, live_api):
    """Each event is computed once per distinct (operation, variables, viewer) and sent to
    all who share it; viewers still get their own answers (monitorability depends on who
    asks)."""
    query = """subscription { monitoringSessionChanged { kind session { interaction {
      participants { purpose monitorability { allowed reason } } } } } }"""
    executed = metric(server, "binocular_subscription_payloads_executed_total")
    sent = metric(server, "binocular_subscription_payloads_sent_total")
    async with contextlib.AsyncExitStack() as stack:
        anns = [
            await stack.enter_async_context(Subscriber(server, live_api.token("ann"), query))
            for _ in range(3)
        ]
        carl = await stack.enter_async_context(Subscriber(server, live_api.token("carl"), query))
        await monitored(live_api, supervisor="ann")
        answers = [(await s.wait_for(1))[0] for s in (*anns, carl)]
    assert metric(server, "binocular_subscription_payloads_executed_total") - executed == 2
    assert metric(server, "binocular_subscription_payloads_sent_total") - sent == 4

    def agent_monitorability(event):
        participants = event["session"]["interaction"]["participants"]
        return next(p["monitorability"] for p in participants if p["purpose"] == "AGENT")

    assert all(answer == answers[0] for answer in answers[:3])
    assert agent_monitorability(answers[0]) == {"allowed": True, "reason": None}
    assert agent_monitorability(answers[3]) == {"allowed": False, "reason": "ALREADY_MONITORED"}


async def test_two_hundred_subscribers_all_receive_an_event(server, live_api, repo_root):
    token = live_api.token("ann")
    subscribers = [Subscriber(server, token) for _ in range(200)]
    async with contextlib.AsyncExitStack() as stack:
        for subscriber in subscribers:
            subscriber.task = asyncio.create_task(subscriber._run())
            stack.push_async_exit(subscriber.__aexit__)
        await asyncio.sleep(3)  # 200 connections accepted
        _, session = await monitored(live_api)
        await asyncio.gather(*(s.wait_for(1, timeout=30) for s in subscribers))
    assert all(kinds(s.events) == [("STARTED", session)] for s in subscribers)
    record_latencies(repo_root, "subscribers-200", subscribers)


def record_latencies(repo_root, name, subscribers) -> None:
    """Delivery latency, from the event's occurredAt (before commit) to arrival: a figure for
    the record, not an assertion (speed is measured in bench/)."""
    latencies = sorted(
        s.arrival_seconds[0] - datetime.fromisoformat(s.events[0]["occurredAt"]).timestamp()
        for s in subscribers
    )
    figures = {
        "subscribers": len(latencies),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
        "max_ms": round(1000 * latencies[-1], 1),
    }
    folder = repo_root / "tests" / "artifacts"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures))
