"""Delivering the event log to subscribers.

One reader task per process reads the log after the last position it has seen and hands
each event to the matching subscribers' bounded queues. It wakes when a local transaction
that recorded events commits, on PostgreSQL when another process's NOTIFY arrives (sent in
the recording transaction, so delivered only on commit), and every `poll_seconds` anyway,
so that a lost notification delays an event but never loses it. It reads only events below
the visibility horizon (app/events/log.py); when committed ones wait behind an older open
transaction, it looks again after 10 ms.

A subscriber registers and learns the reader's position in one step with no await between,
and the reader hands out a batch and advances its position in one step too: events up to
that position come from `replay`, later ones through the queue, with no gap and no repeat.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.db import Database
from app.events.log import NOTIFY_CHANNEL
from app.models import (
    EventLogEntry,
    EventRetention,
    MonitoringSession,
    Participant,
    Queue,
    QueueMember,
    User,
)
from app.models.enums import EventKind, ParticipantPurpose, Presence

logger = logging.getLogger("binocular.events")

_BATCH = 500
_HELD_BACK_SECONDS = 0.01


def _settled(sqlite: bool) -> sa.ColumnElement[bool]:
    """An event below the visibility horizon: every transaction with a smaller id has ended
    (app/events/log.py). On SQLite every committed event is."""
    if sqlite:
        return sa.true()
    horizon = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
    return EventLogEntry.xid < sa.cast(sa.cast(horizon, sa.Text), sa.BigInteger)


class Batch:
    """What one read of the log brought: the API layer shares its reads per batch."""


# An event's place in the log, its cursor: (transaction id, position); see app/events/log.py.
Position = tuple[int, int]


@dataclass(frozen=True)
class Event:
    position: Position
    kind: EventKind
    occurred_at: datetime
    # Interaction and monitoring events: the interaction and its queue.
    interaction_id: int | None
    queue_id: int | None
    # MONITORING_*: the session, as it is when read, and whether it had been disclosed to the
    # interaction's agents when the event happened (the silent rule: a SessionScope).
    session: MonitoringSession | None
    disclosed: bool
    # AGENT_*: the agent; PRESENCE_CHANGED: the user, and the presence set.
    user_id: int | None
    presence: Presence | None
    # What the visibility policy decides an interaction's events on (an InteractionScope):
    # the queue's division, and every AGENT participant, connected now or earlier.
    queue_division_id: int | None
    agents: tuple["Agent", ...]
    # PRESENCE_CHANGED: the queues the user is a member of.
    member_of: frozenset[int]
    batch: Batch

    @property
    def monitor_id(self) -> int | None:
        return self.session.monitor_id if self.session is not None else None


@dataclass(frozen=True)
class Agent:
    user_id: int
    division_id: int


class CursorExpired(Exception):
    """The events after the cursor have been pruned from the log: the client starts over."""


class SlowSubscriber(Exception):
    """The subscriber's queue overflowed: it must reconnect and resume with its cursor."""


class Subscriber:
    def __init__(
        self,
        matches: Callable[[Event], bool],
        limit: int,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.matches = matches
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=limit)
        self._notify = notify
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed or not self.matches(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Wake the consumer so that it learns at once; the queue's content is dropped.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        if self._notify is not None:
            self._notify()

    async def next(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise SlowSubscriber
        return event

    def drain(self) -> list[Event]:
        """Every event queued now, without waiting (for a consumer woken by `notify`)."""
        events = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                raise SlowSubscriber
            events.append(event)
        return events


class Broker:
    def __init__(self, db: Database, poll_seconds: float = 2.0, queue_limit: int = 1000) -> None:
        self._db = db
        self._poll_seconds = poll_seconds
        self._queue_limit = queue_limit
        self._subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        # The last position read; None until the log could be read (a server may start
        # before its database is migrated, and reports not ready meanwhile).
        self.position: Position | None = None
        self._position_known = asyncio.Event()
        self._settled = _settled(db.sqlite)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        self._db.on_events_committed.append(self.on_commit)
        self._set_first_position(await self._last_position_or_none())
        self._tasks.append(asyncio.create_task(self._read_forever(), name="event-reader"))
        if not self._db.sqlite:
            self._tasks.append(asyncio.create_task(self._listen_forever(), name="event-listener"))

    async def stop(self) -> None:
        self._db.on_events_committed.remove(self.on_commit)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    def on_commit(self, _recorded: list) -> None:
        self.wake()

    async def subscribe(
        self, matches: Callable[[Event], bool], notify: Callable[[], None] | None = None
    ) -> tuple[Subscriber, Position]:
        """Register; returns the subscriber and the position live delivery starts after: the
        events up to it committed before the call, those after it are delivered live.

        Only once the reader has read the log: while it cannot be read (a process started
        with its database unreachable), a subscriber waits."""
        await self._position_known.wait()
        # No await from here on: registering and learning the position are one step.
        subscriber = Subscriber(matches, self._queue_limit, notify)
        self._subscribers.add(subscriber)
        position = self.position
        # Events committed before now are reachable only through `after`, also those the
        # reader has not read yet: live delivery starts after the newest one settled now. (A
        # transaction still open now has a larger id than every settled event: nothing it
        # commits later falls at or below that position.)
        try:
            position = max(position, await self._last_position())
        except BaseException:
            self._subscribers.discard(subscriber)
            raise
        return subscriber, position

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def replay(self, after: Position, until: Position):
        """Batches of the events in (after, until], oldest first; CursorExpired where some
        of them have been pruned (decided in the snapshot of each batch, as pruning goes on
        from the oldest end)."""
        while after < until:
            events, _ = await self._read(after, until)
            if not events:
                return
            yield events
            after = events[-1].position

    async def _read_forever(self) -> None:
        wait = self._poll_seconds
        # While committed events wait behind an older open transaction: how long the reader
        # waited last before looking again (None when nothing is held back).
        held_back_wait: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            wait = self._poll_seconds
            try:
                if self.position is None:
                    self._set_first_position(await self._last_position())
                if await self._skipped_unwatched():
                    continue
                while True:
                    events, held_back = await self._read(self.position)
                    # No await from here to the position update: see the module docstring.
                    for event in events:
                        for subscriber in tuple(self._subscribers):
                            subscriber.offer(event)
                    if events:
                        self.position = events[-1].position
                    if not events or held_back:
                        break
                # Held back: look again soon (an older transaction that rolls back sends no
                # notification), then less and less often while it stays open.
                if held_back:
                    held_back_wait = (
                        _HELD_BACK_SECONDS
                        if held_back_wait is None
                        else min(held_back_wait * 2, self._poll_seconds)
                    )
                    wait = held_back_wait
                else:
                    held_back_wait = None
            except Exception:  # a database hiccup must not kill delivery: retry at next wake
                logger.exception("reading the event log failed; retrying")

    async def _skipped_unwatched(self) -> bool:
        """With nobody subscribed, move to the newest position without reading the events
        (a write-heavy process with no subscriber read every event it wrote). Not if someone
        subscribed meanwhile: they were handed the position before, and get what follows."""
        if self._subscribers:
            return False
        last = await self._last_position()
        if self._subscribers:
            return False
        self.position = max(self.position, last)
        return True

    def _set_first_position(self, position: int | None) -> None:
        self.position = position
        if position is not None:
            self._position_known.set()

    async def _last_position_or_none(self) -> int | None:
        try:
            return await self._last_position()
        except Exception:  # noqa: BLE001 - not migrated yet: the reader retries
            logger.warning("the event log cannot be read yet; will retry")
            return None

    async def _last_position(self) -> Position:
        """The last position every subscriber may start after: the newest event below the
        horizon, or the last one pruned when there is none."""
        E, R = EventLogEntry, EventRetention
        newest = (
            sa.select(E.xid, E.position)
            .where(self._settled)
            .order_by(E.xid.desc(), E.position.desc())
            .limit(1)
            .subquery()
        )
        async with self._db.single_read() as session:
            found = await session.exec(
                sa.union_all(sa.select(newest), sa.select(R.xid, R.position).where(R.id == 1))
            )
            return max(tuple(row) for row in found.all())

    async def _read(
        self, after: Position, until: Position | None = None
    ) -> tuple[list[Event], bool]:
        """The events after `after` (up to `until`), and whether committed ones wait behind
        the horizon. With `until` (a replay): CursorExpired if `after` was pruned."""
        E, S, Q, R = EventLogEntry, MonitoringSession, Queue, EventRetention
        cursor = sa.tuple_(E.xid, E.position)
        query = (
            sa.select(E, S, Q.division_id, self._settled.label("settled"))
            .outerjoin(S, S.id == E.session_id)
            .outerjoin(Q, Q.id == E.queue_id)
            .where(cursor > sa.tuple_(*after))
            .order_by(E.xid, E.position)
            .limit(_BATCH)
        )
        if until is not None:
            query = query.where(cursor <= sa.tuple_(*until))
        async with self._db.read() as session:
            if until is not None:
                pruned = (await session.exec(sa.select(R.xid, R.position))).one()
                if after < tuple(pruned):
                    raise CursorExpired
            rows = (await session.exec(query)).all()
            held_back = next((n for n, row in enumerate(rows) if not row.settled), None)
            if held_back is not None:
                rows = rows[:held_back]
            if not rows:
                return [], held_back is not None
            agents = await _agents_of(session, {e.interaction_id for e, _, _, _ in rows})
            member_of = await _memberships_of(
                session,
                {e.user_id for e, _, _, _ in rows if e.kind == EventKind.PRESENCE_CHANGED},
            )
        batch = Batch()
        return [
            Event(
                position=(event.xid, event.position),
                kind=event.kind,
                occurred_at=event.occurred_at,
                interaction_id=event.interaction_id,
                queue_id=event.queue_id,
                session=monitoring,
                disclosed=bool(event.disclosed),
                user_id=event.user_id,
                presence=event.presence,
                queue_division_id=queue_division,
                agents=tuple(agents.get(event.interaction_id, ())),
                member_of=frozenset(member_of.get(event.user_id, ()))
                if event.kind == EventKind.PRESENCE_CHANGED
                else frozenset(),
                batch=batch,
            )
            for event, monitoring, queue_division, _ in rows
        ], held_back is not None

    async def _listen_forever(self) -> None:
        """LISTEN on PostgreSQL; reconnect when the connection drops."""
        url = make_url(self._db.url)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(dsn)
                await connection.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
                self.wake()  # catch up on whatever committed while not listening
                while not connection.is_closed():
                    await asyncio.sleep(self._poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("event listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(self._poll_seconds)
            finally:
                if connection is not None and not connection.is_closed():
                    await connection.close()


async def _agents_of(session, interaction_ids: set) -> dict[int, list[Agent]]:
    """Every AGENT participant of these interactions, connected now or earlier."""
    interaction_ids.discard(None)
    agents = defaultdict(list)
    if not interaction_ids:
        return agents
    P, U = Participant, User
    for interaction_id, user_id, division_id in (
        await session.exec(
            sa.select(P.interaction_id, P.user_id, U.division_id)
            .join(U, U.id == P.user_id)
            .where(P.interaction_id.in_(interaction_ids), P.purpose == ParticipantPurpose.AGENT)
            .distinct()
        )
    ).all():
        agents[interaction_id].append(Agent(user_id, division_id))
    return agents


async def _memberships_of(session, user_ids: set) -> dict[int, list[int]]:
    """The queues each of these users is a member of."""
    queues = defaultdict(list)
    if not user_ids:
        return queues
    for user_id, queue_id in (
        await session.exec(
            sa.select(QueueMember.user_id, QueueMember.queue_id).where(
                QueueMember.user_id.in_(user_ids)
            )
        )
    ).all():
        queues[user_id].append(queue_id)
    return queues
