"""interactionChanged and presenceChanged: every committed change as an event, over
graphql-transport-ws with a real client and server, resumable, within the visibility policy."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from app.directory.load import DirectoryFile, load_directory
from app.events.retention import prune
from app.models import EventLogEntry
from tests.conftest import DIRECTORY
from tests.events.test_subscription import SETTLE, SUBSCRIPTION, Subscriber
from tests.servers import ws_client

INTERACTIONS = """
subscription($interactionId: ID, $queueId: ID, $after: String) {
  interactionChanged(interactionId: $interactionId, queueId: $queueId, after: $after) {
    cursor kind occurredAt
    interaction { id state }
    agent { key }
    session { id state endReason monitor { key } }
  }
}"""

PRESENCE = """
subscription($queueId: ID, $after: String) {
  presenceChanged(queueId: $queueId, after: $after) {
    cursor occurredAt presence user { key presence }
  }
}"""


def interaction_feed(server, api, user, **variables) -> Subscriber:
    return Subscriber(server, api.token(user), INTERACTIONS, **variables)


def presence_feed(server, api, user, **variables) -> Subscriber:
    return Subscriber(server, api.token(user), PRESENCE, **variables)


def summary(events) -> list[tuple]:
    """Kind, agent, and for an ended session its end reason. (A started session shows as it
    is when delivered: perhaps already stopped.)"""
    return [
        (
            e["kind"],
            (e["agent"] or {}).get("key"),
            e["session"]["endReason"] if e["kind"] == "MONITORING_ENDED" else None,
        )
        for e in events
    ]


async def log_size(db) -> int:
    async with db.read() as session:
        return (await session.exec(sa.select(sa.func.count()).select_from(EventLogEntry))).scalar()


async def quiet(subscriber: Subscriber, seconds: float = 1.0) -> list[dict]:
    """What arrived once nothing more arrives for a while (for 'nothing else came')."""
    count = -1
    while count != len(subscriber.events):
        count = len(subscriber.events)
        await asyncio.sleep(seconds)
    return subscriber.events


async def test_every_write_is_an_event_and_a_no_op_is_none(server, live_api, db):
    api = live_api
    before = await log_size(db)  # the test directory's load: DIRECTORY_CHANGED
    async with interaction_feed(server, api, "root") as feed:
        interaction = await api.create()
        await api.create(external_id="ext-1")  # the same externalId again: no event
        await api.connect(interaction, "bob")
        await api.connect(interaction, "dina")
        await api.connect(interaction, "bob")  # already there: no event
        session = (await api.start("ann", interaction, "bob"))["session"]["id"]
        await api.stop("ann", session)
        await api.stop("ann", session)  # already ended: no event
        await api.disconnect(interaction, "dina")
        await api.disconnect(interaction, "dina")  # already gone: no event
        await api.start("ann", interaction, "bob")
        await api.end(interaction)
        await api.end(interaction)  # already ended: no event
        events = await feed.wait_for(9)
        events = await quiet(feed)
    assert summary(events) == [
        ("CREATED", None, None),
        ("AGENT_CONNECTED", "bob", None),
        ("AGENT_CONNECTED", "dina", None),
        ("MONITORING_STARTED", None, None),
        ("MONITORING_ENDED", None, "STOPPED"),
        ("AGENT_DISCONNECTED", "dina", None),
        ("MONITORING_STARTED", None, None),
        ("MONITORING_ENDED", None, "INTERACTION_ENDED"),
        ("ENDED", None, None),
    ]
    assert {e["interaction"]["id"] for e in events} == {interaction}
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == len(cursors)
    times = [datetime.fromisoformat(e["occurredAt"]) for e in events]
    assert times == sorted(times)
    assert await log_size(db) == before + 9


async def test_disconnecting_the_monitored_agent_ends_the_session_after_the_leave(server, live_api):
    api = live_api
    interaction = await api.create()
    await api.connect(interaction, "bob")
    await api.start("ann", interaction)
    async with interaction_feed(server, api, "root", interactionId=interaction) as feed:
        await api.disconnect(interaction, "bob")
        events = await feed.wait_for(2)
    assert summary(events) == [
        ("AGENT_DISCONNECTED", "bob", None),
        ("MONITORING_ENDED", None, "AGENT_DISCONNECTED"),
    ]
    assert events[0]["interaction"]["state"] == "WAITING"


async def test_filters_narrow_to_an_interaction_or_a_queue(server, live_api):
    api = live_api
    billing, support = await api.create(queue="billing"), await api.create(queue="support")
    async with (
        interaction_feed(server, api, "ann", interactionId=billing) as one,
        interaction_feed(server, api, "ann", queueId=api.ids["support"]) as queue,
        interaction_feed(server, api, "ann", queueId=api.ids["bob"]) as wrong_type,
    ):
        await api.connect(billing, "bob")
        await api.connect(support, "eli")
        await one.wait_for(1)
        await queue.wait_for(1)
        await quiet(one)
    assert [(e["kind"], e["interaction"]["id"]) for e in one.events] == [
        ("AGENT_CONNECTED", billing)
    ]
    assert [(e["kind"], e["interaction"]["id"]) for e in queue.events] == [
        ("AGENT_CONNECTED", support)
    ]
    assert wrong_type.events == []


async def test_each_viewer_gets_what_the_policy_lets_them_see(server, live_api):
    """Other divisions' interactions never arrive; monitoring events never reach a viewer
    who is an agent of the interaction, nor an agent at all; INTEGRATION sees all."""
    api = live_api
    async with (
        interaction_feed(server, api, "bob") as agent,
        interaction_feed(server, api, "dina") as other_agent,
        interaction_feed(server, api, "sue") as south,
        interaction_feed(server, api, "carl") as supervisor,
        interaction_feed(server, api, "pbx") as integration,
    ):
        interaction = await api.create()
        await api.connect(interaction, "bob")
        session = (await api.start("ann", interaction))["session"]["id"]
        await api.stop("ann", session)
        sales = await api.create(queue="sales")
        await supervisor.wait_for(4)
        await integration.wait_for(5)
        await south.wait_for(1)
        await quiet(agent)
    kinds = ["CREATED", "AGENT_CONNECTED", "MONITORING_STARTED", "MONITORING_ENDED"]
    assert [e["kind"] for e in supervisor.events] == kinds
    assert [e["kind"] for e in integration.events] == [*kinds, "CREATED"]
    # Agents see the interactions of their division, never its monitoring.
    assert [e["kind"] for e in agent.events] == ["CREATED", "AGENT_CONNECTED"]
    assert [e["kind"] for e in other_agent.events] == ["CREATED", "AGENT_CONNECTED"]
    assert [(e["kind"], e["interaction"]["id"]) for e in south.events] == [("CREATED", sales)]


async def test_a_supervisor_who_was_an_agent_of_the_interaction_gets_no_monitoring_events(
    server, live_api
):
    api = live_api
    interaction = await api.create()
    await api.connect(interaction, "carl")  # a supervisor taking a call
    await api.connect(interaction, "bob")
    await api.disconnect(interaction, "carl")
    async with interaction_feed(server, api, "carl", interactionId=interaction) as carl:
        session = (await api.start("ann", interaction, "bob"))["session"]["id"]
        await api.stop("ann", session)
        await api.end(interaction)
        await carl.wait_for(1)
        await quiet(carl)
    assert [e["kind"] for e in carl.events] == ["ENDED"]


async def created_and_connected(server, api) -> tuple[str, Subscriber]:
    """An interaction created and connected while Ann follows the feed: her two events."""
    async with interaction_feed(server, api, "ann") as feed:
        interaction = await api.create()
        await api.connect(interaction, "bob")
        await feed.wait_for(2)
    return interaction, feed


async def test_resume_replays_then_goes_live_without_gap_or_repeat(server, live_api):
    api = live_api
    interaction, first = await created_and_connected(server, api)
    cursor = first.events[0]["cursor"]
    # While nobody listens: two more.
    session = (await api.start("ann", interaction))["session"]["id"]
    await api.stop("ann", session)
    async with interaction_feed(server, api, "ann", after=cursor) as resumed:
        await resumed.wait_for(3)
        await api.end(interaction)
        await resumed.wait_for(4)
        await quiet(resumed)
    assert [e["kind"] for e in resumed.events] == [
        "AGENT_CONNECTED",
        "MONITORING_STARTED",
        "MONITORING_ENDED",
        "ENDED",
    ]
    assert resumed.events[0]["cursor"] == first.events[1]["cursor"]
    # Each shows the interaction as it is when delivered: the replayed ones before the end.
    assert [e["interaction"]["state"] for e in resumed.events] == [
        "CONNECTED",
        "CONNECTED",
        "CONNECTED",
        "ENDED",
    ]


async def test_presence_changes_arrive_once_each_where_the_user_is_visible(server, live_api, db):
    api = live_api
    before = await log_size(db)
    async with (
        presence_feed(server, api, "ann") as north,
        presence_feed(server, api, "sue") as south,
        presence_feed(server, api, "ann", queueId=api.ids["support"]) as support,
    ):
        await api.set_presence("bob", "BUSY")
        await api.set_presence("bob", "BUSY")  # no change: no event
        await api.set_presence("eli", "ON_QUEUE")
        await api.set_presence("tom", "AWAY")
        await api.set_presence("bob", "ON_QUEUE")
        await north.wait_for(3)
        await south.wait_for(1)
        await support.wait_for(1)
        await quiet(north)
    assert [(e["user"]["key"], e["presence"]) for e in north.events] == [
        ("bob", "BUSY"),
        ("eli", "ON_QUEUE"),
        ("bob", "ON_QUEUE"),
    ]
    assert [(e["user"]["key"], e["presence"]) for e in south.events] == [("tom", "AWAY")]
    assert [(e["user"]["key"], e["presence"]) for e in support.events] == [("eli", "ON_QUEUE")]
    assert await log_size(db) == before + 4


async def test_a_user_on_a_visible_interaction_is_visible_there_with_their_presence(
    server, live_api
):
    """Tom (South) takes a call of Billing (North): Ann sees him on it, so she sees his
    presence too (the policy's user rule, decided in SQL)."""
    api = live_api
    interaction = await api.create()
    await api.connect(interaction, "tom")
    async with presence_feed(server, api, "ann") as ann:
        await api.set_presence("tom", "BUSY")
        await ann.wait_for(1)
    assert [(e["user"]["key"], e["presence"]) for e in ann.events] == [("tom", "BUSY")]


async def test_a_directory_load_that_changes_a_presence_is_an_event(server, live_api, db):
    api = live_api
    changed = {
        **DIRECTORY,
        "users": [
            {**user, "presence": "AWAY"} if user["key"] == "dina" else user
            for user in DIRECTORY["users"]
        ],
    }
    async with presence_feed(server, api, "ann") as ann:
        await load_directory(db, DirectoryFile.model_validate(changed))
        await load_directory(db, DirectoryFile.model_validate(changed))  # the same again
        await ann.wait_for(1)
        await quiet(ann)
    assert [(e["user"]["key"], e["presence"]) for e in ann.events] == [("dina", "AWAY")]


async def test_resuming_from_a_pruned_cursor_is_cursor_expired(server, live_api, db):
    api = live_api
    _, feed = await created_and_connected(server, api)
    cursor = feed.events[0]["cursor"]
    pruned = await prune(db, datetime.now(UTC) + timedelta(seconds=1))
    assert pruned.events >= 2
    await api.set_presence("bob", "AWAY")  # something kept, after the pruned ones
    for query in (INTERACTIONS, PRESENCE, SUBSCRIPTION):  # monitoringSessionChanged too
        async with ws_client(server, api.token("ann")) as session:
            with pytest.raises(TransportQueryError) as raised:
                async for _ in session.subscribe(
                    GraphQLRequest(query, variable_values={"after": cursor})
                ):
                    pass
        assert raised.value.errors[0]["extensions"]["code"] == "CURSOR_EXPIRED", query
    # The newest cursor still resumes.
    async with presence_feed(server, api, "ann") as fresh:
        await api.set_presence("bob", "BUSY")
        await fresh.wait_for(1)
    async with presence_feed(server, api, "ann", after=fresh.events[0]["cursor"]) as resumed:
        await asyncio.sleep(SETTLE)
        await api.set_presence("bob", "ON_QUEUE")
        await resumed.wait_for(1)
    assert [e["presence"] for e in resumed.events] == ["ON_QUEUE"]


async def test_a_directory_load_that_changes_something_records_one_event(db, directory):
    """DIRECTORY_CHANGED: delivered by no subscription (live views start over from it)."""

    async def kinds() -> list[str]:
        async with db.read() as session:
            found = await session.exec(
                sa.select(EventLogEntry.kind).order_by(EventLogEntry.xid, EventLogEntry.position)
            )
            return [kind.value for kind in found.scalars()]

    assert await kinds() == ["DIRECTORY_CHANGED"]  # the test directory, loaded
    await load_directory(db, DirectoryFile.model_validate(DIRECTORY))
    assert await kinds() == ["DIRECTORY_CHANGED"]  # the same file again: nothing changed
    renamed = {
        **DIRECTORY,
        "queues": [{**q, "name": f"{q['name']}!"} for q in DIRECTORY["queues"]],
    }
    await load_directory(db, DirectoryFile.model_validate(renamed))
    assert await kinds() == ["DIRECTORY_CHANGED", "DIRECTORY_CHANGED"]
