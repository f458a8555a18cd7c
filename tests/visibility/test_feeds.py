"""The change feeds obey the visibility policy: every viewer of the floor replays the whole
log through interactionChanged, monitoringSessionChanged and presenceChanged, and gets
exactly the events that the independent oracle says they may see, with the kind each feed
calls them by, in log order.

Events about a session (STARTED, MODE_CHANGED, ENDED) follow the per-session silent rule
with the session as it was when the event was recorded: an event recorded while the session
was silent stays silent to the interaction's agents, even once the session is disclosed
(coached, barged or taken over). The oracle works out "disclosed by then" from the log
itself, in order, and the session's mode history: a session's k-th MODE_CHANGED event is the
step k of its history, and an end TAKEN_OVER discloses it. It does not read
`event_log.disclosed`.
"""

import asyncio
from collections import Counter

import sqlalchemy as sa

from app.graphql.ids import encode_cursor
from app.models import EventLogEntry
from tests.events.test_change_feed import PRESENCE, quiet
from tests.events.test_subscription import Subscriber
from tests.visibility.conftest import VIEWERS
from tests.visibility.oracle import DISCLOSING_MODES, Floor, _enum, read_floor
from tests.visibility.test_property import _sights

INTERACTIONS = """
subscription($after: String) {
  interactionChanged(after: $after) { cursor kind }
}"""
SESSIONS = """
subscription($after: String) {
  monitoringSessionChanged(after: $after) { cursor kind }
}"""
FEEDS = {"interactions": INTERACTIONS, "sessions": SESSIONS, "presence": PRESENCE}

STARTED, MODE_CHANGED, ENDED = "MONITORING_STARTED", "MONITORING_MODE_CHANGED", "MONITORING_ENDED"
MONITORING = {STARTED, MODE_CHANGED, ENDED}
# What each feed calls the log's kinds (the contract's enums).
INTERACTION_KINDS = {
    "INTERACTION_CREATED": "CREATED",
    "AGENT_CONNECTED": "AGENT_CONNECTED",
    "AGENT_DISCONNECTED": "AGENT_DISCONNECTED",
    "INTERACTION_ENDED": "ENDED",
    STARTED: STARTED,
    MODE_CHANGED: MODE_CHANGED,
    ENDED: ENDED,
}
SESSION_KINDS = {STARTED: "STARTED", MODE_CHANGED: "MODE_CHANGED", ENDED: "ENDED"}


def disclosed_then(log, floor: Floor) -> dict[tuple[int, int], bool]:
    """Each monitoring event's place in the log -> whether its session had been disclosed
    when it was recorded."""
    steps: Counter = Counter()
    disclosed: dict[int, bool] = {}
    then = {}
    for event in log:
        kind = event.kind.value
        if kind not in MONITORING:
            continue
        session = event.session_id
        history = floor.histories[session]
        if kind == STARTED:
            now = history[0] in DISCLOSING_MODES
        elif kind == MODE_CHANGED:
            steps[session] += 1
            now = disclosed[session] or history[steps[session]] in DISCLOSING_MODES
        else:
            ended_taken_over = _enum(floor.sessions[session].end_reason) == "TAKEN_OVER"
            now = disclosed[session] or ended_taken_over
        disclosed[session] = now
        then[(event.xid, event.position)] = now
    # One MODE_CHANGED event per step of the history after the first: none lost, none extra.
    assert {s: steps[s] for s in floor.sessions} == {
        s: len(floor.histories[s]) - 1 for s in floor.sessions
    }
    return then


def _difference(seen: list, expected: list, log, then) -> dict:
    """What a feed got wrong, event by event, in words."""
    if seen == expected:
        return {}
    by_cursor = {encode_cursor("event", e.xid, e.position): e for e in log}

    def describe(item) -> str:
        cursor, kind = item
        event = by_cursor.get(cursor)
        if event is None:
            return f"{kind} at an unknown cursor {cursor}"
        about = f"{event.kind.value} (as {kind}) of interaction {event.interaction_id}"
        if event.session_id is not None:
            disclosed = then.get((event.xid, event.position))
            about += f", session {event.session_id}, disclosed then: {disclosed}"
        return about

    missing = [describe(item) for item in expected if item not in seen]
    extra = [describe(item) for item in seen if item not in expected]
    return {"missing": missing, "not allowed": extra} if missing or extra else {"order": seen}


async def test_each_viewer_replays_exactly_the_events_the_oracle_allows(server, api, db, floor):
    for user, presence in (("bob", "BUSY"), ("tom", "AWAY"), ("max", "BUSY"), ("nia", "AWAY")):
        await api.set_presence(user, presence)
    async with db.read() as session:
        log = (
            await session.exec(
                sa.select(
                    EventLogEntry.xid,
                    EventLogEntry.position,
                    EventLogEntry.kind,
                    EventLogEntry.interaction_id,
                    EventLogEntry.session_id,
                    EventLogEntry.user_id,
                ).order_by(EventLogEntry.xid, EventLogEntry.position)
            )
        ).all()
    start = encode_cursor("event", log[0].xid, log[0].position - 1)
    rows = await read_floor(db.engine)
    sights = _sights(rows)
    then = disclosed_then(log, rows)

    def visible(viewer: str, feed: str, event) -> bool:
        sight = sights[viewer]
        kind = event.kind.value
        if feed == "presence":
            return kind == "PRESENCE_CHANGED" and event.user_id in sight.users
        if kind in MONITORING:
            return sight.sees_event(event.interaction_id, then[(event.xid, event.position)])
        return (
            feed == "interactions"
            and event.kind.value in INTERACTION_KINDS
            and (event.interaction_id in sight.interactions)
        )

    def allowed(viewer: str, feed: str) -> list[tuple[str, str | None]]:
        names = {"interactions": INTERACTION_KINDS, "sessions": SESSION_KINDS}.get(feed, {})
        return [
            (encode_cursor("event", event.xid, event.position), names.get(event.kind.value))
            for event in log
            if visible(viewer, feed, event)
        ]

    feeds = {
        (viewer, feed): Subscriber(server, api.token(viewer), query, after=start)
        for viewer in VIEWERS
        for feed, query in FEEDS.items()
    }
    for subscriber in feeds.values():
        await subscriber.__aenter__()
    try:
        await asyncio.gather(*(quiet(subscriber) for subscriber in feeds.values()))
    finally:
        for subscriber in feeds.values():
            await subscriber.__aexit__(None, None, None)
    seen = {name: [(e["cursor"], e.get("kind")) for e in sub.events] for name, sub in feeds.items()}
    expected = {name: allowed(*name) for name in feeds}
    wrong = {name: _difference(seen[name], expected[name], log, then) for name in feeds}
    wrong = {name: difference for name, difference in wrong.items() if difference}
    assert not wrong, "\n".join(f"{name}: {difference}" for name, difference in wrong.items())

    # The floor reaches every edge: some viewers miss events, some get all; monitoring is
    # silenced for some viewers of interactions they see; an agent gets the events of a
    # disclosed session but not those recorded while it was silent.
    interaction_events = sum(1 for e in log if e.kind.value in INTERACTION_KINDS)
    monitoring_events = sum(1 for e in log if e.kind.value in MONITORING)
    assert len(expected["pbx", "interactions"]) == interaction_events
    assert len(expected["pbx", "sessions"]) == monitoring_events
    # An ADMIN who took a chat over misses its silent sessions' events: carl's, and the
    # STARTED of the very session root took it over with.
    assert len(expected["root", "interactions"]) == interaction_events - 3
    assert 0 < len(expected["bob", "interactions"]) < interaction_events
    assert any(e.kind.value == MODE_CHANGED for e in log)

    def edge(viewer: str, condition) -> bool:
        sight = sights[viewer]
        return any(
            e.kind.value in MONITORING
            and e.interaction_id in sight.interactions
            and sight.was_agent_of(e.interaction_id)
            and condition(sight, e)
            for e in log
        )

    # max: carl's silent session on max_call, never delivered.
    assert edge("max", lambda sight, e: e.session_id not in sight.sessions)
    # eli, on barged_chat: kim's STARTED (silent then) withheld, her switches delivered.
    assert edge(
        "eli",
        lambda sight, e: e.session_id in sight.sessions and not then[(e.xid, e.position)],
    )
    assert edge("eli", lambda sight, e: e.kind.value == MODE_CHANGED and then[(e.xid, e.position)])
    # root, an ADMIN who took a chat over: carl's silent session there, withheld.
    assert edge("root", lambda sight, e: e.session_id not in sight.sessions)
    assert 0 < len(expected["sue", "presence"]) < len(expected["root", "presence"])
