"""The change feeds obey the visibility policy: every viewer of the floor replays the whole
log through interactionChanged and presenceChanged, and gets exactly the events that the
independent oracle says they may see (silent monitoring included), in log order."""

import asyncio

import sqlalchemy as sa

from app.graphql.ids import encode_cursor
from app.models import EventLogEntry
from tests.events.test_change_feed import INTERACTIONS, PRESENCE, quiet
from tests.events.test_subscription import Subscriber
from tests.visibility.conftest import VIEWERS
from tests.visibility.oracle import read_floor
from tests.visibility.test_property import _sights

MONITORING = {"MONITORING_STARTED", "MONITORING_ENDED"}


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
                    EventLogEntry.user_id,
                ).order_by(EventLogEntry.xid, EventLogEntry.position)
            )
        ).all()
    start = encode_cursor("event", log[0].xid, log[0].position - 1)
    sights = _sights(await read_floor(db.engine))

    def allowed(viewer: str, presence_feed: bool) -> list[str]:
        sight = sights[viewer]
        cursors = []
        for event in log:
            kind = event.kind.value
            if presence_feed:
                visible = kind == "PRESENCE_CHANGED" and event.user_id in sight.users
            elif kind == "PRESENCE_CHANGED":
                visible = False
            elif kind in MONITORING:
                visible = event.interaction_id in sight.monitoring_on
            else:
                visible = event.interaction_id in sight.interactions
            if visible:
                cursors.append(encode_cursor("event", event.xid, event.position))
        return cursors

    feeds = {
        (viewer, presence_feed): Subscriber(
            server, api.token(viewer), PRESENCE if presence_feed else INTERACTIONS, after=start
        )
        for viewer in VIEWERS
        for presence_feed in (False, True)
    }
    for feed in feeds.values():
        await feed.__aenter__()
    try:
        await asyncio.gather(*(quiet(feed) for feed in feeds.values()))
    finally:
        for feed in feeds.values():
            await feed.__aexit__(None, None, None)
    seen = {name: [e["cursor"] for e in feed.events] for name, feed in feeds.items()}
    expected = {name: allowed(*name) for name in feeds}
    wrong = {name: (seen[name], expected[name]) for name in feeds if seen[name] != expected[name]}
    assert not wrong, wrong
    # The floor reaches every edge: some viewers miss events, some get all, monitoring is
    # silenced for some viewers of interactions they see.
    interaction_events = sum(1 for e in log if e.kind.value != "PRESENCE_CHANGED")
    assert len(expected["root", False]) == interaction_events
    assert 0 < len(expected["bob", False]) < interaction_events
    assert any(
        e.interaction_id in sights["max"].interactions
        and e.interaction_id not in sights["max"].monitoring_on
        and e.kind.value in MONITORING
        for e in log
    )
    assert 0 < len(expected["sue", True]) < len(expected["root", True])
