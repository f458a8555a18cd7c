"""DataLoaders: each batches one kind of read into one SQL statement per request tick, so a
query costs a fixed number of statements whatever the lengths of its lists.

An operation's reads all see one moment: its Reader holds one connection in one snapshot
(Database.snapshot) from the first statement until the operation ends, so that what a field
computes from several reads (`monitorability`, counts beside their lists) is what a single
state of the database says. The Reader runs one statement at a time: results then arrive in
the order the batches were dispatched, so the same query batches the same way every time.
Reads return plain rows (SQLAlchemy Core, as records: app/records.py), not ORM instances:
they are only read, and building instances was a quarter of the time of a large list.
"""

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from app.db import Database
from app.graphql.prefetch import MISSING, RowLoader, peek, settled
from app.models import (
    Division,
    Interaction,
    MonitoringModeChange,
    MonitoringSession,
    Participant,
    Queue,
    QueueMember,
    User,
)
from app.models.enums import InteractionState, ParticipantPurpose, ParticipantState
from app.records import records
from app.visibility import Policy


class Reader:
    """Runs one statement at a time, all in one snapshot: the first statement opens it, on a
    connection of the pool that the Reader holds until `close`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._one_at_a_time = asyncio.Lock()
        self._snapshot: AsyncConnection | None = None
        self._closed = False

    async def rows(self, statement, parameters: dict | None = None) -> Sequence:
        """The statement's rows, as records (app/records.py)."""
        return await self._run(statement, parameters, records)

    async def scalars(self, statement) -> Sequence:
        return await self._run(statement, None, lambda result: result.scalars().all())

    async def _run(
        self, statement, parameters: dict | None, take: Callable[[sa.Result], Sequence]
    ) -> Sequence:
        # Shielded: a resolver cancelled while its statement runs (graphql-core cancels the
        # siblings of a failed field) must not stop the statement halfway, which left the
        # snapshot's connection unusable and never returned to the pool.
        return await asyncio.shield(self._run_alone(statement, parameters, take))

    async def _run_alone(
        self, statement, parameters: dict | None, take: Callable[[sa.Result], Sequence]
    ) -> Sequence:
        async with self._one_at_a_time:
            if self._closed:
                # A DataLoader batch that outlived its operation (its resolvers were
                # cancelled): it reads alone rather than hold a connection after the end.
                async with self._db.snapshot() as connection:
                    return take(await connection.execute(statement, parameters))
            if self._snapshot is None:
                self._snapshot = await self._db.snapshot()
            return take(await self._snapshot.execute(statement, parameters))

    def outlived(self) -> None:
        """Read alone from the start (a Reader made after its operation ended)."""
        self._closed = True

    async def close(self) -> None:
        """End the snapshot and give the connection back; later reads see a moment of their
        own each."""
        async with self._one_at_a_time:
            self._closed = True
            snapshot, self._snapshot = self._snapshot, None
            if snapshot is not None:
                await snapshot.close()


class RowLoaders:
    """Rows by id, and each interaction's participants and sessions: the same for every
    viewer, so that all the subscribers of one event can share them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reader = reader = Reader(db)
        self.division = RowLoader(_by_id(reader, db, Division))
        self.user = RowLoader(_by_id(reader, db, User))
        self.queue = RowLoader(_by_id(reader, db, Queue))
        self.interaction = RowLoader(_by_id(reader, db, Interaction))
        self.participant = RowLoader(_by_id(reader, db, Participant))
        self.session = RowLoader(_by_id(reader, db, MonitoringSession))
        self.participants = RowLoader(
            _grouped(
                reader,
                db,
                Participant,
                Participant.interaction_id,
                (Participant.connected_at, Participant.id),
            )
        )
        self.sessions = RowLoader(
            _grouped(
                reader,
                db,
                MonitoringSession,
                MonitoringSession.interaction_id,
                (MonitoringSession.started_at, MonitoringSession.id),
            )
        )
        self.mode_changes = RowLoader(
            _grouped(
                reader,
                db,
                MonitoringModeChange,
                MonitoringModeChange.session_id,
                (MonitoringModeChange.at, MonitoringModeChange.id),
            )
        )
        self.queue_members = RowLoader(_queue_members(reader, db))

    async def close(self) -> None:
        await self.reader.close()


# The batch functions refer to the reader and the database, never to the loaders that hold
# them: that cycle left every row an operation read to the garbage collector (a young
# collection of 8 to 15 ms in most requests of a 1,000-interaction queueActivity). Without
# it, the rows go as soon as the operation lets go of its loaders.


# Each statement is built once per database (Database.statement), its keys bound when it
# runs.


def _rows_by_id(db: Database, table: sa.Table) -> sa.Select:
    return sa.select(table).where(db.one_of(table.c.id))


def _by_id(reader: Reader, db: Database, model) -> Callable:
    table = model.__table__

    async def load(ids: list[int]) -> list:
        rows = await reader.rows(db.statement(_rows_by_id, table), {"keys": ids})
        by_id = {row.id: row for row in rows}
        return [by_id.get(pk) for pk in ids]

    return load


def _members_of_queues(db: Database) -> sa.Select:
    return (
        sa.select(QueueMember.queue_id.label("member_of"), User.__table__)
        .join(User, User.id == QueueMember.user_id)
        .where(db.one_of(QueueMember.queue_id))
        .order_by(User.name, User.id)
    )


def _queue_members(reader: Reader, db: Database) -> Callable:
    async def load(queue_ids: list[int]) -> list[list[User]]:
        rows = await reader.rows(db.statement(_members_of_queues), {"keys": queue_ids})
        groups = defaultdict(list)
        for row in rows:
            groups[row.member_of].append(row)
        return [groups.get(queue_id, []) for queue_id in queue_ids]

    return load


def _rows_grouped(db: Database, table: sa.Table, key_column, order_by: tuple) -> sa.Select:
    return sa.select(table).where(db.one_of(key_column)).order_by(*order_by)


def _grouped(reader: Reader, db: Database, model, key_column, order_by: tuple) -> Callable:
    async def load(keys: list[int]) -> list[list]:
        statement = db.statement(_rows_grouped, model.__table__, key_column, order_by)
        rows = await reader.rows(statement, {"keys": keys})
        groups = defaultdict(list)
        for row in rows:
            groups[getattr(row, key_column.key)].append(row)
        return [groups.get(key, []) for key in keys]

    return load


class Loaders(RowLoaders):
    """Per operation and viewer: the row loaders (fresh, or shared with other subscribers of
    the same events), and what depends on the viewer. Caches live as long as the snapshot.

    What the GraphQL types show of an interaction's participants and monitoring, and of a
    queue's members, comes through the `*_seen` reads below, which apply the viewer's
    visibility policy to the shared rows in memory; lists and lookups filter in SQL with the
    same policy (`policy`)."""

    def __init__(
        self,
        db: Database,
        viewer: User,
        shared: RowLoaders | None = None,
        policy: Policy | None = None,
    ) -> None:
        if shared is None:
            super().__init__(db)
        else:
            vars(self).update(vars(shared))  # the same loaders and reader, not copies
        self._viewer = viewer
        self.shared = shared is not None
        self.policy = policy or Policy.of(viewer)

    async def close(self) -> None:
        """End the snapshot, unless it belongs to the subscribers that share it."""
        if not self.shared:
            await super().close()

    # Built on first use: each builds SQL for the viewer, which a subscriber resolving an
    # event never needs (that was most of the cost of delivering to many subscribers).

    @functools.cached_property
    def visible_interaction(self) -> DataLoader:
        """An interaction's row where the viewer may see it, else None."""
        return RowLoader(
            self._visible_rows(Interaction, self.policy.interaction.sql, self.interaction)
        )

    @functools.cached_property
    def visible_user(self) -> DataLoader:
        """A user's row where the viewer may see them in their own right, else None."""
        return RowLoader(self._visible_rows(User, self.policy.user, self.user))

    @functools.cached_property
    def agent_interactions(self) -> DataLoader:
        return RowLoader(self._agent_interactions(self.policy.interaction.sql))

    # The policy applied to rows in memory. Each answers now when its rows are loaded (the
    # list roots prefetch them), else with an awaitable.

    def participants_seen(self, interaction_pk: int):
        """The interaction's participants the viewer may see: MONITOR ones only where the
        viewer may see their session."""
        participants = peek(self.participants, interaction_pk)
        if participants is MISSING:
            return self._participants_seen_later(interaction_pk)
        for participant in participants:  # a loop: asked for every item of a list
            if participant.purpose == _MONITOR:
                break
        else:
            return participants
        sees = self.policy.sees_monitoring(_agents(participants))
        if sees is not None:  # all or none, whatever the sessions say
            return participants if sees else _without_monitors(participants)
        sessions = peek(self.sessions, interaction_pk)
        if sessions is MISSING:
            return self._participants_seen_later(interaction_pk, with_sessions=True)
        disclosed = {s.monitor_participant_id for s in sessions if s.disclosed_at is not None}
        return [
            p for p in participants if p.purpose != ParticipantPurpose.MONITOR or p.id in disclosed
        ]

    def sessions_seen(self, interaction_pk: int):
        """The interaction's monitoring sessions the viewer may see: silent monitoring stays
        silent to its agents."""
        sessions = peek(self.sessions, interaction_pk)
        if not sessions and sessions is not MISSING:
            return sessions  # most interactions of a list: none to decide about
        participants = peek(self.participants, interaction_pk)
        if participants is MISSING or sessions is MISSING:
            return self._sessions_seen_later(interaction_pk)
        sees = self.policy.sees_monitoring(_agents(participants))
        if sees is not None:
            return sessions if sees else []
        return [s for s in sessions if s.disclosed_at is not None]

    def members_seen(self, queue_pk: int):
        """A queue's members, for a queue the viewer sees in its own right; none through a
        reference (an interaction of another division's queue)."""
        queue = peek(self.queue, queue_pk)
        members = peek(self.queue_members, queue_pk)
        if MISSING in (queue, members):
            return self._members_seen_later(queue_pk)
        return members if self.policy.queue.check(queue) else []

    async def _participants_seen_later(self, interaction_pk: int, with_sessions=False) -> list:
        await self.participants.load(interaction_pk)
        if with_sessions:
            await self.sessions.load(interaction_pk)
        return await settled(self.participants_seen(interaction_pk))

    async def _sessions_seen_later(self, interaction_pk: int) -> list:
        await asyncio.gather(
            self.participants.load(interaction_pk), self.sessions.load(interaction_pk)
        )
        return self.sessions_seen(interaction_pk)

    async def _members_seen_later(self, queue_pk: int) -> list:
        await asyncio.gather(self.queue.load(queue_pk), self.queue_members.load(queue_pk))
        return self.members_seen(queue_pk)

    async def rows(self, statement, parameters: dict | None = None) -> Sequence:
        return await self.reader.rows(statement, parameters)

    async def scalars(self, statement) -> Sequence:
        return await self.reader.scalars(statement)

    def _visible_rows(self, model, condition, by_id: RowLoader) -> Callable:
        """Reads the rows with the visibility condition in one statement (rather than
        whether each is visible, then the row: a round trip less for `node` and
        `interaction`), and primes `by_id` with them."""
        table, reader, db = model.__table__, self.reader, self.db  # not self: see _by_id

        async def load(ids: list[int]) -> list:
            rows = await reader.rows(db.statement(_visible_by_id, table, condition), {"keys": ids})
            found = {row.id: row for row in rows}
            by_id.prime_many(found)
            return [found.get(pk) for pk in ids]

        return load

    def _agent_interactions(self, visible) -> Callable:
        """An agent's in-progress interactions that the viewer may see, oldest first. The
        statement reads which they are; their rows come through the interaction loader,
        which a queue's activity has primed with them already (reading them again was a
        third of its rows to decode)."""
        reader, db, interaction = self.reader, self.db, self.interaction  # see _by_id

        async def load(user_ids: list[int]) -> list[list[Interaction]]:
            statement = db.statement(_interactions_of_agents, visible)
            pairs = await reader.rows(statement, {"keys": user_ids})
            rows = await interaction.fetch_many([pair.interaction_id for pair in pairs])
            groups = defaultdict(list)
            for pair, row in zip(pairs, rows, strict=True):
                # None only where the two reads are not one snapshot (a batch that outlived
                # its operation) and the interaction was purged between them.
                if row is not None:
                    groups[pair.agent_id].append(row)
            return [groups.get(user_id, []) for user_id in user_ids]

        return load


# The viewer's conditions are keys of Database.statement: a policy's `sql` is built once per
# policy, and policies are shared by the viewers of one division and roles (Policy.of).


def _visible_by_id(db: Database, table: sa.Table, condition) -> sa.Select:
    return sa.select(table).where(db.one_of(table.c.id), condition)


def _interactions_of_agents(db: Database, visible) -> sa.Select:
    return (
        sa.select(Participant.user_id.label("agent_id"), Participant.interaction_id)
        .join(Interaction, Interaction.id == Participant.interaction_id)
        .where(
            db.one_of(Participant.user_id),
            Participant.purpose == ParticipantPurpose.AGENT,
            Participant.state == ParticipantState.CONNECTED,
            Interaction.state != InteractionState.ENDED,
            visible,
        )
        .order_by(Interaction.started_at, Interaction.id)
    )


_MONITOR = ParticipantPurpose.MONITOR


def _agents(participants: list) -> list:
    """An interaction's AGENT participants, connected now or earlier (what the silent rule
    reads: their user_id)."""
    return [p for p in participants if p.purpose == ParticipantPurpose.AGENT]


def _without_monitors(participants: list) -> list:
    return [p for p in participants if p.purpose != ParticipantPurpose.MONITOR]
