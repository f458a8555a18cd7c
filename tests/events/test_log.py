"""The event log's cursor follows commit order, even when transactions interleave."""

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

from app.events.broker import Broker, SlowSubscriber
from app.events.log import append_recorded, record
from app.models import (
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


async def last_position(db) -> tuple[int, int]:
    """The cursor of the newest event, or (0, 0)."""
    async with db.read() as session:
        newest = await session.exec(
            sa.select(EventLogEntry.xid, EventLogEntry.position)
            .order_by(EventLogEntry.xid.desc(), EventLogEntry.position.desc())
            .limit(1)
        )
        return tuple(newest.first() or (0, 0))


async def readable(broker: Broker, after) -> tuple[list, bool]:
    """What the broker's reader would take after `after` now, and whether some committed
    events wait behind the horizon."""
    events, held_back = await broker._read(after)
    return [event.position for event in events], held_back


async def test_an_event_committed_behind_an_open_older_writer_waits_for_it(db, directory, backend):
    """T1 takes its transaction id first, appends, and stays open; T2 appends and commits
    without waiting for it (no lock is shared). The reader does not take T2's event while T1
    may still commit one before it; once T1 has committed, it reads both, in order, each once.
    Had it read T2's at once, T1's, with a smaller cursor, would have been skipped."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: nothing can interleave")
    broker = Broker(db)  # not started: the test reads through it by hand
    start = await last_position(db)
    t1_appended, t1_may_commit = asyncio.Event(), asyncio.Event()

    async def t1():
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 1)
            position = await record_started(session, monitoring, directory)
            t1_appended.set()
            await t1_may_commit.wait()
        return position

    async def t2():
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 2)
            return await record_started(session, monitoring, directory)

    first = asyncio.create_task(t1())
    await t1_appended.wait()
    second = await asyncio.wait_for(t2(), 5)  # commits while T1 is open: nothing to wait on
    assert await readable(broker, start) == ([], True)
    t1_may_commit.set()
    first = await first
    assert first < second  # T1's cursor comes first...
    assert await readable(broker, start) == ([first, second], False)  # ...and nothing is lost


async def test_a_rolled_back_older_writer_holds_nothing_back_for_long(db, directory, backend):
    """An older transaction that rolls back sends no notification: the reader looks again
    soon after it found events held back, rather than at the next poll."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: nothing can interleave")
    broker = Broker(db, poll_seconds=30)
    await broker.start()
    try:
        subscriber, _ = await broker.subscribe(lambda event: True)
        t1_appended, t1_may_end = asyncio.Event(), asyncio.Event()

        async def t1():
            with contextlib.suppress(RuntimeError):
                async with db.transaction() as session:
                    monitoring = await new_session(session, directory, 3)
                    await record_started(session, monitoring, directory)
                    t1_appended.set()
                    await t1_may_end.wait()
                    raise RuntimeError("rolled back")

        first = asyncio.create_task(t1())
        await t1_appended.wait()
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 4)
            record(session, session_event(EventKind.MONITORING_STARTED, monitoring, 1))
        await asyncio.sleep(0.3)
        t1_may_end.set()
        await first
        event = await asyncio.wait_for(subscriber.next(), 2)  # long before the 30 s poll
        assert event.session.id == monitoring.id
    finally:
        await broker.stop()


async def record_started(session, monitoring, directory) -> tuple[int, int]:
    """Record and append at once (rather than at commit), returning the cursor taken."""
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
        E = EventLogEntry
        rows = (
            await session.exec(
                sa.select(E.xid, E.position, E.kind)
                .where(sa.tuple_(E.xid, E.position) > sa.tuple_(*start))
                .order_by(E.xid, E.position)
            )
        ).all()
    cursors = [(xid, position) for xid, position, _ in rows]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
    assert rows[3].xid == rows[4].xid  # the end's two events: one transaction
    assert rows[3].position < rows[4].position
    assert [kind for _, _, kind in rows] == [
        EventKind.INTERACTION_CREATED,
        EventKind.AGENT_CONNECTED,
        EventKind.MONITORING_STARTED,
        EventKind.MONITORING_ENDED,
        EventKind.INTERACTION_ENDED,
    ]


async def test_a_refused_write_records_nothing(api, db):
    interaction = await api.create()
    await api.end(interaction)
    start = await last_position(db)
    refused = await api.integration(
        "connectAgent", interactionId=interaction, agentId=api.ids["bob"]
    )
    assert refused["errors"][0]["message"] == "This interaction has ended."
    assert await last_position(db) == start


async def test_a_subscriber_arriving_while_an_unwatched_reader_skips_ahead_misses_nothing(
    db, directory
):
    """With nobody subscribed, the reader jumps to the newest position without reading the
    events. A subscriber that registers while the reader asks for that position starts live
    after what was committed before it (the reader's position, or the newest settled event if
    later); what is committed next must reach it: the reader must not jump past it."""
    broker = Broker(db, poll_seconds=0.1)
    await broker.start()
    try:
        start = broker.position
        newest_position, asked, may_answer = broker._last_position, asyncio.Event(), asyncio.Event()

        async def reader_held_once_the_log_moves() -> int:
            position = await newest_position()
            if position > start and not asked.is_set():  # the reader's first look: held
                asked.set()
                await may_answer.wait()
            return position

        broker._last_position = reader_held_once_the_log_moves
        async with db.transaction() as session:
            before = await new_session(session, directory, 400)
            record(session, session_event(EventKind.MONITORING_STARTED, before, 1))
        await asyncio.wait_for(asked.wait(), 5)
        subscriber, live_after = await broker.subscribe(lambda event: True)
        assert live_after > start  # what was committed before subscribing is not live
        async with db.transaction() as session:
            after = await new_session(session, directory, 401)
            record(session, session_event(EventKind.MONITORING_STARTED, after, 1))
        may_answer.set()
        event = await asyncio.wait_for(subscriber.next(), 5)
        while event.position <= live_after:  # offered, and skipped by the subscription
            assert event.session.id == before.id
            event = await asyncio.wait_for(subscriber.next(), 5)
        assert event.session.id == after.id
    finally:
        await broker.stop()


async def test_a_long_open_older_writer_is_looked_at_less_and_less_often(db, directory, backend):
    """Held back behind a transaction that stays open for a second, the reader backs off
    from 10 ms towards its poll interval instead of reading a hundred times a second."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: nothing can interleave")
    broker = Broker(db, poll_seconds=1)
    reads = 0
    read = broker._read

    async def counted(*args):
        nonlocal reads
        reads += 1
        return await read(*args)

    broker._read = counted
    await broker.start()
    try:
        subscriber, _ = await broker.subscribe(lambda event: True)
        appended, may_commit = asyncio.Event(), asyncio.Event()

        async def older():
            async with db.transaction() as session:
                monitoring = await new_session(session, directory, 5)
                await record_started(session, monitoring, directory)
                appended.set()
                await may_commit.wait()

        first = asyncio.create_task(older())
        await appended.wait()
        async with db.transaction() as session:
            monitoring = await new_session(session, directory, 6)
            record(session, session_event(EventKind.MONITORING_STARTED, monitoring, 1))
        reads = 0
        await asyncio.sleep(1.5)
        assert 3 <= reads <= 12, reads  # 10, 20, 40 ... ms, capped at the 1 s poll
        may_commit.set()
        await first
        delivered = [await asyncio.wait_for(subscriber.next(), 5) for _ in range(2)]
        assert delivered[0].position < delivered[1].position
    finally:
        await broker.stop()
