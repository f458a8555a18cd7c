"""The silent rule, per session, through every GraphQL path, on both databases.

A session only ever in MONITOR mode is invisible to the interaction's agents, whatever their
roles: no MONITOR participant, activeMonitoring and monitoredBy null, monitoringSessions
empty, node of the session or of its participant null, absent from the audit, no event. From
its first COACH or BARGE, or its take over, it is visible to them for good (back in MONITOR,
ended). Each session of an interaction is judged on its own.
"""

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import encode_id
from app.models import User
from tests.conftest import DIRECTORY
from tests.events.test_change_feed import quiet
from tests.events.test_subscription import Subscriber

# --- what a viewer sees, by every path -------------------------------------------------------

SEEN = """
fragment seen on Interaction {
  id state
  participants { id purpose state user { key } monitoredBy { id mode state } }
  activeMonitoring { id mode state }
  monitoringSessions { id mode state }
}"""

PATHS = (
    """query($id: ID!, $queue: ID!) {
  interaction(id: $id) { ...seen }
  node(id: $id) { ... on Interaction { ...seen } }
  interactions(first: 100) { nodes { ...seen } }
  queueActivity(queueId: $queue) { waiting { ...seen } interacting { ...seen } }
  interactionPanel { interaction { ...seen } }
  monitoringSessions(first: 100) { totalCount nodes { id mode state interaction { id } } }
}"""
    + SEEN
)

NODE = """query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on MonitoringSession { mode state monitor { key } agent { key } }
    ... on Participant { purpose participantState: state user { key } }
  }
}"""


@dataclass(frozen=True)
class Session:
    """A session and its MONITOR participant."""

    id: str
    participant: str


def summary(view: dict, agent: str) -> dict:
    """What one view of the interaction tells of its monitoring."""
    (agent_participant,) = [
        p
        for p in view["participants"]
        if p["purpose"] == "AGENT" and p["user"]["key"] == agent and p["state"] == "CONNECTED"
    ] or [p for p in view["participants"] if p["purpose"] == "AGENT" and p["user"]["key"] == agent]
    return {
        "monitors": [p["id"] for p in view["participants"] if p["purpose"] == "MONITOR"],
        "active": (view["activeMonitoring"] or {}).get("id"),
        "monitoredBy": (agent_participant["monitoredBy"] or {}).get("id"),
        "sessions": [s["id"] for s in view["monitoringSessions"]],
    }


async def views(api, user: str, interaction: str, agent: str) -> tuple[dict, list[str]]:
    """{path: summary} over every query that reaches the interaction, and the viewer's audit
    (this interaction's sessions, newest first)."""
    data = await api.data(PATHS, {"id": interaction, "queue": api.ids["billing"]}, user=user)
    found = {"interaction": data["interaction"], "node": data["node"]}
    for path, candidates in (
        ("interactions", data["interactions"]["nodes"]),
        (
            "queueActivity",
            data["queueActivity"]["waiting"] + data["queueActivity"]["interacting"],
        ),
        ("interactionPanel", [entry["interaction"] for entry in data["interactionPanel"]]),
    ):
        matching = [i for i in candidates if i["id"] == interaction]
        if matching:
            (found[path],) = matching
    audit = [
        n["id"]
        for n in data["monitoringSessions"]["nodes"]
        if n["interaction"]["id"] == interaction
    ]
    assert data["monitoringSessions"]["totalCount"] == len(data["monitoringSessions"]["nodes"])
    return {path: summary(view, agent) for path, view in found.items()}, audit


async def node(api, node_id: str, user: str) -> dict | None:
    return (await api.data(NODE, {"id": node_id}, user=user))["node"]


async def assert_sees(
    api,
    user: str,
    interaction: str,
    agent: str,
    shown: list[Session],
    hidden: list[Session] = (),
    active: Session | None = None,
    monitored_by: Session | None = "active",
    live: bool = True,
) -> None:
    """`user` sees exactly the sessions `shown` (oldest first) of the interaction, on every
    path, `active` as its active one, and nothing of those `hidden`."""
    if monitored_by == "active":
        monitored_by = active
    by_path, audit = await views(api, user, interaction, agent)
    paths = {"interaction", "node", "interactions"}
    if live:  # in progress, with the agent connected: in the queue and in the agent's panel
        paths |= {"queueActivity"} | ({"interactionPanel"} if user == agent else set())
    assert paths <= set(by_path), (user, sorted(by_path))
    expected = {
        "monitors": [s.participant for s in shown],
        "active": active.id if active else None,
        "monitoredBy": monitored_by.id if monitored_by else None,
        "sessions": [s.id for s in shown],
    }
    for path, seen in by_path.items():
        assert seen == expected, (user, path)
    assert audit == [s.id for s in reversed(shown)], user
    for s in shown:
        assert (await node(api, s.id, user))["__typename"] == "MonitoringSession", (user, s)
        assert (await node(api, s.participant, user))["purpose"] == "MONITOR", (user, s)
    for s in hidden:
        assert await node(api, s.id, user) is None, (user, s)
        assert await node(api, s.participant, user) is None, (user, s)
        assert s.id not in audit


async def monitor_participant(api, interaction: str, monitor: str) -> str:
    """The MONITOR participant of `monitor` (the integration sees all of it)."""
    found = await api.data(
        "query($id: ID!) { interaction(id: $id) { participants { id purpose user { key } } } }",
        {"id": interaction},
        user="pbx",
    )
    (participant,) = [
        p["id"]
        for p in found["interaction"]["participants"]
        if p["purpose"] == "MONITOR" and p["user"]["key"] == monitor
    ]
    return participant


async def start(api, supervisor: str, interaction: str, mode: str | None = None, agent=None):
    started = await api.start(supervisor, interaction, agent=agent, mode=mode)
    assert started["errors"] == [], started
    assert started["session"]["mode"] == (mode or "MONITOR")
    session_id = started["session"]["id"]
    return Session(session_id, await monitor_participant(api, interaction, supervisor))


async def switch(api, user: str, session: Session, mode: str) -> None:
    changed = await api.change_mode(user, session.id, mode)
    assert changed["errors"] == [], changed
    assert changed["session"]["mode"] == mode


async def call(api, agent: str, media: str = "VOICE") -> str:
    interaction = await api.create(media=media)
    await api.connect(interaction, agent)
    return interaction


# The agents of the interaction: a plain agent, and a supervisor who takes calls too (being
# an agent of the interaction outweighs their SUPERVISOR role).
SAL = {"key": "sal", "name": "Sal Ito", "division": "north", "roles": ["AGENT", "SUPERVISOR"]}


@pytest.fixture(params=["bob", "sal"])
async def agent(request, db, directory) -> str:
    if request.param == "sal":
        await load_directory(
            db, DirectoryFile.model_validate({"divisions": DIRECTORY["divisions"], "users": [SAL]})
        )
        async with db.read() as session:
            pk = (await session.exec(sa.select(User.id).where(User.key == "sal"))).scalar_one()
        directory["sal"] = encode_id("User", pk)
    return request.param


# --- silent ----------------------------------------------------------------------------------


async def test_a_monitor_only_session_is_invisible_to_the_agent_on_every_path(api, agent):
    interaction = await call(api, agent)
    s = await start(api, "ann", interaction)
    await assert_sees(api, agent, interaction, agent, shown=[], hidden=[s])
    # Those who may see it see it on every path: the paths do show monitoring.
    for supervisor in ("ann", "carl", "root", "pbx"):
        await assert_sees(api, supervisor, interaction, agent, shown=[s], active=s)
    # Another agent of the division, not on the interaction, sees nothing of it either.
    await assert_sees(api, "dina", interaction, agent, shown=[], hidden=[s])


async def test_no_refusal_tells_the_agent_of_a_silent_session(api, agent):
    """Mutations and monitorability are paths too: for the agent the silent session does
    not exist (NOT_FOUND), and no currentMonitor names its supervisor."""
    interaction = await call(api, agent)
    s = await start(api, "ann", interaction)
    assert (await api.stop(agent, s.id))["errors"][0]["code"] == "NOT_FOUND"
    assert (await api.change_mode(agent, s.id, "COACH"))["errors"][0]["code"] == "NOT_FOUND"
    assert (await api.take_over(agent, s.id))["errors"][0]["code"] == "NOT_FOUND"
    own = await api.start(agent, interaction)
    assert own["session"] is None
    assert [e["currentMonitor"] for e in own["errors"]] == [None]
    assert own["errors"][0]["code"] == ("NOT_PERMITTED" if agent == "bob" else "SELF_MONITORING")
    found = await api.data(
        """query($id: ID!) { interaction(id: $id) { participants { purpose
             monitorability { allowed reason currentMonitor { key } modes } } } }""",
        {"id": interaction},
        user=agent,
    )
    (mine,) = [p for p in found["interaction"]["participants"] if p["purpose"] == "AGENT"]
    assert mine["monitorability"]["allowed"] is False
    assert mine["monitorability"]["reason"] != "ALREADY_MONITORED"
    assert mine["monitorability"]["currentMonitor"] is None
    # Nothing of the attempts changed the session.
    assert (await node(api, s.id, "ann"))["state"] == "ACTIVE"
    # Once coached, the session exists for the agent: not theirs, though.
    await switch(api, "ann", s, "COACH")
    assert (await api.stop(agent, s.id))["errors"][0]["code"] == "NOT_SESSION_OWNER"
    assert (await api.change_mode(agent, s.id, "MONITOR"))["errors"][0]["code"] == (
        "NOT_SESSION_OWNER"
    )


# --- disclosed -------------------------------------------------------------------------------


async def test_coaching_discloses_the_session_for_good(api, agent):
    interaction = await call(api, agent)
    s = await start(api, "ann", interaction)
    await assert_sees(api, agent, interaction, agent, shown=[], hidden=[s])
    await switch(api, "ann", s, "COACH")
    await assert_sees(api, agent, interaction, agent, shown=[s], active=s)
    assert (await node(api, s.id, agent))["mode"] == "COACH"
    # Back in MONITOR: the agent was told, and is not made to forget.
    await switch(api, "ann", s, "MONITOR")
    await assert_sees(api, agent, interaction, agent, shown=[s], active=s)
    assert (await node(api, s.id, agent))["mode"] == "MONITOR"
    # Ended: still in the record, no longer active.
    assert (await api.stop("ann", s.id))["errors"] == []
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None)
    assert (await node(api, s.id, agent))["state"] == "ENDED"
    await api.end(interaction)
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None, live=False)
    # Disclosure is for the interaction's agents only: other agents still see nothing.
    await assert_sees(api, "dina", interaction, agent, shown=[], hidden=[s], live=False)


async def test_starting_in_coach_discloses_from_the_start(api, agent):
    interaction = await call(api, agent)
    s = await start(api, "ann", interaction, mode="COACH")
    await assert_sees(api, agent, interaction, agent, shown=[s], active=s)
    await api.end(interaction)
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None, live=False)


async def test_barging_into_a_chat_discloses_from_the_start(api, agent):
    interaction = await call(api, agent, media="CHAT")
    s = await start(api, "ann", interaction, mode="BARGE")
    await assert_sees(api, agent, interaction, agent, shown=[s], active=s)
    await switch(api, "ann", s, "MONITOR")
    await assert_sees(api, agent, interaction, agent, shown=[s], active=s)
    await api.end(interaction)
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None, live=False)
    ended = await node(api, s.id, agent)
    assert (ended["state"], ended["mode"]) == ("ENDED", "MONITOR")


async def test_a_take_over_discloses_the_session(api, agent):
    interaction = await call(api, agent, media="CHAT")
    s = await start(api, "root", interaction)
    await assert_sees(api, agent, interaction, agent, shown=[], hidden=[s])
    taken = await api.take_over("root", s.id)
    assert taken["errors"] == [], taken
    assert taken["session"]["endReason"] == "TAKEN_OVER"
    # The agent is off the chat now (no panel, still in the queue's interacting list), and
    # learns who took it over: the session, ended, and its MONITOR participant.
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None, live=False)
    by_path, _ = await views(api, agent, interaction, agent)
    assert "queueActivity" in by_path and "interactionPanel" not in by_path
    ended = await node(api, s.id, agent)
    assert (ended["state"], ended["monitor"]["key"], ended["agent"]["key"]) == (
        "ENDED",
        "root",
        agent,
    )
    assert (await node(api, s.participant, agent))["participantState"] == "DISCONNECTED"
    await api.end(interaction)
    await assert_sees(api, agent, interaction, agent, shown=[s], active=None, live=False)


# --- per session -----------------------------------------------------------------------------


async def test_each_session_of_an_interaction_is_judged_on_its_own(api, agent):
    interaction = await call(api, agent)
    first = await start(api, "ann", interaction)
    await switch(api, "ann", first, "COACH")
    assert (await api.stop("ann", first.id))["errors"] == []
    second = await start(api, "carl", interaction)  # stays MONITOR
    # The agent: the coached first session, ended; nothing of carl's silent one, active.
    await assert_sees(api, agent, interaction, agent, shown=[first], hidden=[second], active=None)
    # Supervisors: both, carl's active.
    await assert_sees(api, "ann", interaction, agent, shown=[first, second], active=second)
    assert await node(api, second.participant, agent) is None
    await api.end(interaction)
    await assert_sees(api, agent, interaction, agent, shown=[first], hidden=[second], live=False)
    # A third, coached, shows beside the first while the second stays hidden.
    again = await call(api, agent)
    third = await start(api, "carl", again, mode="COACH")
    await assert_sees(api, agent, again, agent, shown=[third], active=third)
    audit = (await api.data("{ monitoringSessions { nodes { id } } }", user=agent))[
        "monitoringSessions"
    ]["nodes"]
    assert [n["id"] for n in audit] == [third.id, first.id]


async def test_a_disclosed_monitor_from_another_division_becomes_a_known_user(api):
    """sue (south) monitors tom on a billing call that bob shares: silent, sue is nobody to
    bob (no MONITOR participant, no user by node); coached, bob, an agent of the interaction
    though not the monitored one, sees the session and sue with it."""
    interaction = await call(api, "tom")
    await api.connect(interaction, "bob")
    s = await start(api, "sue", interaction, agent="tom")
    await assert_sees(api, "bob", interaction, "tom", shown=[], hidden=[s])
    assert await node(api, api.ids["sue"], "bob") is None
    await switch(api, "sue", s, "COACH")
    await assert_sees(api, "bob", interaction, "tom", shown=[s], active=s)
    # bob is an agent of it, not the one monitored: his own participant is monitored by none.
    by_path, _ = await views(api, "bob", interaction, "bob")
    assert {seen["monitoredBy"] for seen in by_path.values()} == {None}
    assert (await node(api, api.ids["sue"], "bob"))["id"] == api.ids["sue"]


# --- events ----------------------------------------------------------------------------------

SESSION_EVENTS = """subscription($after: String) {
  monitoringSessionChanged(after: $after) {
    cursor kind session { id state mode endReason monitor { key } interaction { id } }
  }
}"""

INTERACTION_EVENTS = """subscription($after: String) {
  interactionChanged(after: $after) {
    cursor kind interaction { id } agent { key }
    session { id state mode endReason }
  }
}"""


def session_feed(server, api, user, **variables) -> Subscriber:
    return Subscriber(server, api.token(user), SESSION_EVENTS, **variables)


def interaction_feed(server, api, user, **variables) -> Subscriber:
    return Subscriber(server, api.token(user), INTERACTION_EVENTS, **variables)


def of_sessions(events) -> list[tuple]:
    return [(e["kind"], e["session"]["id"], e["session"]["mode"]) for e in events]


def of_interaction(events) -> list[tuple]:
    return [
        (e["kind"], (e["agent"] or {}).get("key"), (e["session"] or {}).get("id")) for e in events
    ]


async def test_events_follow_the_silent_rule_per_session(server, live_api, agent):
    """Over a real server: the agent gets no STARTED of a MONITOR-only session, its
    MODE_CHANGED to COACH and every later event of it, and nothing of a later silent session
    on the same interaction. Every change waits for its event (ann's feed where the agent
    gets none) so that what each shows does not depend on delivery speed."""
    api = live_api
    async with (
        session_feed(server, api, agent) as agent_sessions,
        interaction_feed(server, api, agent) as agent_changes,
        session_feed(server, api, "dina") as other_agent,
        session_feed(server, api, "ann") as ann_sessions,
        interaction_feed(server, api, "ann") as ann_changes,
    ):
        interaction = await api.create()
        await api.connect(interaction, agent)
        await agent_changes.wait_for(2)
        await ann_changes.wait_for(2)
        first = (await api.start("ann", interaction))["session"]["id"]
        await ann_sessions.wait_for(1)
        await ann_changes.wait_for(3)
        assert (await api.change_mode("ann", first, "COACH"))["errors"] == []
        await agent_sessions.wait_for(1)
        await agent_changes.wait_for(3)
        await ann_sessions.wait_for(2)
        assert (await api.change_mode("ann", first, "MONITOR"))["errors"] == []
        await agent_sessions.wait_for(2)
        await agent_changes.wait_for(4)
        await ann_sessions.wait_for(3)
        assert (await api.stop("ann", first))["errors"] == []
        await agent_sessions.wait_for(3)
        await agent_changes.wait_for(5)
        await ann_sessions.wait_for(4)
        second = (await api.start("carl", interaction))["session"]["id"]
        await ann_sessions.wait_for(5)
        await api.end(interaction)
        await ann_sessions.wait_for(6)
        await agent_changes.wait_for(6)
        await quiet(agent_sessions)
        await quiet(agent_changes)
        await quiet(other_agent)
    assert of_sessions(agent_sessions.events) == [
        ("MODE_CHANGED", first, "COACH"),
        ("MODE_CHANGED", first, "MONITOR"),
        ("ENDED", first, "MONITOR"),
    ]
    assert agent_sessions.events[2]["session"]["endReason"] == "STOPPED"
    assert of_interaction(agent_changes.events) == [
        ("CREATED", None, None),
        ("AGENT_CONNECTED", agent, None),
        ("MONITORING_MODE_CHANGED", None, first),
        ("MONITORING_MODE_CHANGED", None, first),
        ("MONITORING_ENDED", None, first),
        ("ENDED", None, None),
    ]
    assert [e["session"]["mode"] for e in agent_changes.events[2:4]] == ["COACH", "MONITOR"]
    # ann sees all of both sessions; dina, an agent not on the call, none of it.
    assert of_sessions(ann_sessions.events) == [
        ("STARTED", first, "MONITOR"),
        ("MODE_CHANGED", first, "COACH"),
        ("MODE_CHANGED", first, "MONITOR"),
        ("ENDED", first, "MONITOR"),
        ("STARTED", second, "MONITOR"),
        ("ENDED", second, "MONITOR"),
    ]
    assert other_agent.events == []


async def test_events_of_a_barged_chat_reach_its_agent_from_the_start(server, live_api, agent):
    api = live_api
    interaction = await call(api, agent, media="CHAT")
    async with session_feed(server, api, agent) as feed:
        session = (await api.start("ann", interaction, mode="BARGE"))["session"]["id"]
        await feed.wait_for(1)
        assert (await api.change_mode("ann", session, "MONITOR"))["errors"] == []
        await feed.wait_for(2)
        await api.end(interaction)
        await feed.wait_for(3)
        events = await quiet(feed)
    assert of_sessions(events) == [
        ("STARTED", session, "BARGE"),
        ("MODE_CHANGED", session, "MONITOR"),
        ("ENDED", session, "MONITOR"),
    ]
    assert events[2]["session"]["endReason"] == "INTERACTION_ENDED"


async def test_a_take_over_reaches_the_agent_but_not_its_silent_start(server, live_api, agent):
    api = live_api
    interaction = await call(api, agent, media="CHAT")
    async with (
        session_feed(server, api, agent) as agent_sessions,
        interaction_feed(server, api, agent) as agent_changes,
        session_feed(server, api, "pbx") as integration,
    ):
        session = (await api.start("root", interaction))["session"]["id"]
        await integration.wait_for(1)
        assert (await api.take_over("root", session))["errors"] == []
        await agent_sessions.wait_for(1)
        await agent_changes.wait_for(3)
        await integration.wait_for(2)
        await quiet(agent_sessions)
        await quiet(agent_changes)
    assert [(e["kind"], e["session"]["id"]) for e in integration.events] == [
        ("STARTED", session),
        ("ENDED", session),
    ]
    assert [(e["kind"], e["session"]["endReason"]) for e in agent_sessions.events] == [
        ("ENDED", "TAKEN_OVER")
    ]
    assert of_interaction(agent_changes.events) == [
        ("AGENT_DISCONNECTED", agent, None),
        ("AGENT_CONNECTED", "root", None),
        ("MONITORING_ENDED", None, session),
    ]


async def test_a_replay_gives_the_agent_only_what_was_disclosed_when_it_happened(
    server, live_api, agent
):
    """Resuming after the session was coached: the STARTED, silent when it happened, stays
    untold; the MODE_CHANGED and what followed come."""
    api = live_api
    async with interaction_feed(server, api, agent) as before:
        interaction = await call(api, agent)
        connected = (await before.wait_for(2))[1]
    session = (await api.start("ann", interaction))["session"]["id"]
    assert (await api.change_mode("ann", session, "COACH"))["errors"] == []
    assert (await api.stop("ann", session))["errors"] == []
    async with interaction_feed(server, api, agent, after=connected["cursor"]) as resumed:
        await resumed.wait_for(2)
        events = await quiet(resumed)
    assert of_interaction(events) == [
        ("MONITORING_MODE_CHANGED", None, session),
        ("MONITORING_ENDED", None, session),
    ]
