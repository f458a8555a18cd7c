"""The event log's cursor follows commit order, even when transactions interleave."""

import asyncio

import pytest
import sqlalchemy as sa

from app.events.broker import Broker, SlowSubscriber
from app.events.log import append_recorded, record
from app.models import (
    EventCounter,
    EventLogEntry,
    Interaction,
    MonitoringSession,
    Participant,
)
from app.models.columns import utcnow
from app.models.enums import (
    EventKind,
    InteractionState,
    MediaType,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
)
from app.monitoring.changes import session_event


async def new_session(session, api_ids, n: int) -> MonitoringSession:
    """An interaction with an ACTIVE session, written straight into the tables."""
    from app.graphql.ids import decode_node_id

    queue_id = decode_node_id(api_ids["billing"])[1]
    ann = decode_node_id(api_ids["ann"])[1]
    bob = decode_node_id(api_ids["bob"])[1]
    now = utcnow()
    interaction = Interaction(
        external_id=f"log-{n}",
        media_type=MediaType.VOICE,
        direction="INBOUND",
        state=InteractionState.CONNECTED,
        queue_id=queue_id,
        started_at=now,
    )
    session.add(interaction)
    await session.flush()
    monitor = Participant(
        interaction_id=interaction.id,
        purpose=ParticipantPurpose.MONITOR,
        state=ParticipantState.CONNECTED,
        user_id=ann,
        name="Ann Lee",
        connected_at=now,
    )
    session.add(monitor)
    await session.flush()
    monitoring = MonitoringSession(
        interaction_id=interaction.id,
        media_type=MediaType.VOICE,
        monitor_id=ann,
        agent_id=bob,
        monitor_participant_id=monitor.id,
        state=MonitoringState.ACTIVE,
        started_at=now,
    )
    session.add(monitoring)
    await session.flush()
    return monitoring


async def last_position(db) -> int:
    async with db.read() as session:
        return (await session.exec(sa.select(EventCounter.position))).scalar_one()


async def visible_positions(db, after: int) -> list[int]:
    async with db.read() as session:
        return list(
            (
                await session.exec(
                    sa.select(EventLogEntry.position)
                    .where(EventLogEntry.position > after)
                    .order_by(EventLogEntry.position)
                )
            ).scalars()
        )


async def test_transactions_committing_out_of_id_order_are_read_without_a_gap(
    db, directory, backend
):
    """T1 writes first (lower session id) but commits last; a reader polling between the
    commits, always from its last position, still gets both events, each once, in order."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: nothing can interleave")
    start = await last_position(db)
    t1_ready, t1_may_commit = asyncio.Event(), asyncio.Event()

    async def t1():
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 1)
            t1_ready.set()
            await t1_may_commit.wait()
            await record_started(session, monitoring, directory)
        return monitoring.id

    async def t2():
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 2)
            await record_started(session, monitoring, directory)
        return monitoring.id

    first = asyncio.create_task(t1())
    await t1_ready.wait()
    t2_session = await t2()  # commits while T1, with the lower session id, is still open
    reader_cursor, received = start, []
    received += await visible_positions(db, reader_cursor)
    reader_cursor = received[-1]
    t1_may_commit.set()
    t1_session = await first
    received += await visible_positions(db, reader_cursor)
    assert t1_session < t2_session  # ids were taken in the other order...
    assert received == [start + 1, start + 2]  # ...yet nothing was skipped or repeated


async def test_an_appender_waits_for_the_one_before_it_to_commit(db, directory, backend):
    """The counter's row lock (on SQLite, BEGIN IMMEDIATE) is held to commit: a second
    position is handed out only after the first is committed, so positions become visible
    in order."""
    start = await last_position(db)
    first_appended, first_may_commit = asyncio.Event(), asyncio.Event()

    async def append(n, appended=None, may_commit=None):
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, n)
            position = await record_started(session, monitoring, directory)
            if appended:
                appended.set()
                await may_commit.wait()
        return position

    first = asyncio.create_task(append(10, first_appended, first_may_commit))
    await first_appended.wait()
    second = asyncio.create_task(append(11))
    await asyncio.sleep(0.5)
    assert not second.done()  # blocked on the counter, behind the uncommitted first
    assert await visible_positions(db, start) == []
    first_may_commit.set()
    assert (await first, await second) == (start + 1, start + 2)


async def record_started(session, monitoring, directory) -> int:
    """Record and append at once (rather than at commit), returning the position taken."""
    queue = monitoring_queue(directory)
    record(session, session_event(EventKind.MONITORING_STARTED, monitoring, queue))
    return await append_recorded(session)


def monitoring_queue(directory) -> int:
    from app.graphql.ids import decode_node_id

    return decode_node_id(directory["billing"])[1]


async def test_a_slow_subscriber_overflows_and_is_told_so(db, directory):
    broker = Broker(db, poll_seconds=0.1, queue_limit=3)
    await broker.start()
    try:
        subscriber, _ = await broker.subscribe(lambda event: True)
        for n in range(5):
            async with db.transaction() as session:
                monitoring = await new_session(session, directory, 100 + n)
                await record_started(session, monitoring, directory)
        await asyncio.sleep(0.5)
        with pytest.raises(SlowSubscriber):
            await asyncio.wait_for(subscriber.next(), 2)
    finally:
        await broker.stop()


async def test_without_any_wake_up_the_periodic_read_delivers(db, directory):
    """A lost notification delays an event by at most the poll interval, never loses it."""
    broker = Broker(db, poll_seconds=0.3)
    await broker.start()
    db.on_events_committed.remove(broker.on_commit)  # as if every wake-up were lost
    try:
        subscriber, _ = await broker.subscribe(lambda event: True)
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 200)
            await record_started(session, monitoring, directory)
        event = await asyncio.wait_for(subscriber.next(), 5)
        assert event.session.id == monitoring.id
    finally:
        db.on_events_committed.append(broker.on_commit)
        await broker.stop()


async def test_a_subscriber_waits_for_a_position_the_reader_has_read(db, directory):
    """Started while its database is unreachable, the broker hands out no position until it
    has read one: a client resuming then replays everything it missed, with no gap (it was
    handed 0, replayed nothing, and the reader jumped to the newest position)."""
    positions = []
    for n in range(3):
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 300 + n)
            positions.append(await record_started(session, monitoring, directory))
    broker = Broker(db, poll_seconds=0.1)
    read_position, reachable = broker._last_position, False

    async def last_position() -> int:
        if not reachable:
            raise OSError("the database is unreachable")
        return await read_position()

    broker._last_position = last_position
    await broker.start()
    try:
        assert broker.position is None
        subscribing = asyncio.create_task(broker.subscribe(lambda event: True))
        await asyncio.sleep(0.5)  # several reads fail meanwhile
        assert not subscribing.done()
        reachable = True
        _, live_after = await asyncio.wait_for(subscribing, 5)
        assert live_after == positions[-1]
        replayed = [
            e.position async for batch in broker.replay(positions[0], live_after) for e in batch
        ]
        assert replayed == positions[1:]
    finally:
        await broker.stop()


async def test_the_events_of_one_transaction_take_consecutive_positions_in_order(api, db):
    start = await last_position(db)
    interaction = await api.create()
    await api.connect(interaction, "bob")
    await api.start("ann", interaction)
    await api.end(interaction)  # MONITORING_ENDED and INTERACTION_ENDED: one transaction
    async with db.read() as session:
        rows = (
            await session.exec(
                sa.select(EventLogEntry.position, EventLogEntry.kind)
                .where(EventLogEntry.position > start)
                .order_by(EventLogEntry.position)
            )
        ).all()
    assert [position for position, _ in rows] == list(range(start + 1, start + 6))
    assert [kind for _, kind in rows] == [
        EventKind.INTERACTION_CREATED,
        EventKind.AGENT_CONNECTED,
        EventKind.MONITORING_STARTED,
        EventKind.MONITORING_ENDED,
        EventKind.INTERACTION_ENDED,
    ]
    assert await last_position(db) == start + 5


async def test_a_refused_write_records_nothing(api, db):
    start = await last_position(db)
    interaction = await api.create()
    await api.end(interaction)
    refused = await api.integration(
        "connectAgent", interactionId=interaction, agentId=api.ids["bob"]
    )
    assert refused["errors"][0]["message"] == "This interaction has ended."
    assert await last_position(db) == start + 2


async def test_a_subscriber_arriving_while_an_unwatched_reader_skips_ahead_misses_nothing(
    db, directory
):
    """With nobody subscribed, the reader jumps to the newest position without reading the
    events. A subscriber that registers while it asks for that position was handed the
    position before: the reader must then read the events in between, not jump."""
    broker = Broker(db, poll_seconds=0.1)
    await broker.start()
    try:
        start = broker.position
        newest_position, asked, may_answer = broker._last_position, asyncio.Event(), asyncio.Event()

        async def last_position_held_once_it_moves() -> int:
            position = await newest_position()
            if position > start and not asked.is_set():
                asked.set()
                await may_answer.wait()
            return position

        broker._last_position = last_position_held_once_it_moves
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 400)
            record(session, session_event(EventKind.MONITORING_STARTED, monitoring, 1))
        await asyncio.wait_for(asked.wait(), 5)
        subscriber, live_after = await broker.subscribe(lambda event: True)
        assert live_after == start  # handed out before the jump the reader was about to make
        may_answer.set()
        event = await asyncio.wait_for(subscriber.next(), 5)
        assert (event.position, event.session.id) == (start + 1, monitoring.id)
    finally:
        await broker.stop()
