"""DataLoaders: each batches one kind of read into one SQL statement per request tick, so a
query costs a fixed number of statements whatever the lengths of its lists.

A request runs one statement at a time: results then arrive in the order the batches were
dispatched, so the same query batches the same way every time (and holds one connection).
Reads return plain rows (SQLAlchemy Core), not ORM instances: they are only read, and
building instances was a quarter of the time of a large list.
"""

import asyncio
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from app.db import Database
from app.models import (
    Division,
    Interaction,
    MonitoringSession,
    Participant,
    Queue,
    QueueMember,
    User,
)
from app.models.enums import InteractionState, ParticipantPurpose, ParticipantState
from app.monitoring.visibility import interaction_visible, user_visible


class Reader:
    """Runs one statement at a time, each on a pooled connection."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._one_at_a_time = asyncio.Lock()

    async def rows(self, statement) -> Sequence[sa.Row]:
        async with self._one_at_a_time, self._db.engine.connect() as connection:
            return (await connection.execute(statement)).all()

    async def scalars(self, statement) -> Sequence:
        async with self._one_at_a_time, self._db.engine.connect() as connection:
            return (await connection.execute(statement)).scalars().all()


class RowLoaders:
    """Rows by id, and each interaction's participants and sessions: the same for every
    viewer, so that all the subscribers of one event can share them."""

    def __init__(self, db: Database) -> None:
        self.reader = Reader(db)
        self.division = DataLoader(self._by_id(Division))
        self.user = DataLoader(self._by_id(User))
        self.queue = DataLoader(self._by_id(Queue))
        self.interaction = DataLoader(self._by_id(Interaction))
        self.participant = DataLoader(self._by_id(Participant))
        self.session = DataLoader(self._by_id(MonitoringSession))
        self.participants = DataLoader(
            self._grouped(
                Participant,
                Participant.interaction_id,
                (Participant.connected_at, Participant.id),
            )
        )
        self.sessions = DataLoader(
            self._grouped(
                MonitoringSession,
                MonitoringSession.interaction_id,
                (MonitoringSession.started_at, MonitoringSession.id),
            )
        )
        self.queue_members = DataLoader(self._queue_members)

    def _by_id(self, model) -> Callable:
        table = model.__table__

        async def load(ids: list[int]) -> list:
            rows = await self.reader.rows(sa.select(table).where(table.c.id.in_(ids)))
            by_id = {row.id: row for row in rows}
            return [by_id.get(pk) for pk in ids]

        return load

    async def _queue_members(self, queue_ids: list[int]) -> list[list[User]]:
        rows = await self.reader.rows(
            sa.select(QueueMember.queue_id.label("member_of"), User.__table__)
            .join(User, User.id == QueueMember.user_id)
            .where(QueueMember.queue_id.in_(queue_ids))
            .order_by(User.name, User.id)
        )
        groups = defaultdict(list)
        for row in rows:
            groups[row.member_of].append(row)
        return [groups.get(queue_id, []) for queue_id in queue_ids]

    def _grouped(self, model, key_column, order_by: tuple) -> Callable:
        async def load(keys: list[int]) -> list[list]:
            rows = await self.reader.rows(
                sa.select(model.__table__).where(key_column.in_(keys)).order_by(*order_by)
            )
            groups = defaultdict(list)
            for row in rows:
                groups[getattr(row, key_column.key)].append(row)
            return [groups.get(key, []) for key in keys]

        return load


class Loaders(RowLoaders):
    """Per request and viewer: the row loaders (fresh, or shared with other subscribers of
    the same events), and what depends on the viewer. Caches live as long as the request."""

    def __init__(self, db: Database, viewer: User, shared: RowLoaders | None = None) -> None:
        if shared is None:
            super().__init__(db)
        else:
            vars(self).update(vars(shared))  # the same loaders and reader, not copies
        self._viewer = viewer

    # Built on first use: each builds SQL for the viewer, which a subscriber resolving an
    # event never needs (that was most of the cost of delivering to many subscribers).

    @functools.cached_property
    def visible_interaction(self) -> DataLoader:
        return DataLoader(self._visible_ids(Interaction, interaction_visible(self._viewer)))

    @functools.cached_property
    def visible_user(self) -> DataLoader:
        return DataLoader(self._visible_ids(User, user_visible(self._viewer)))

    @functools.cached_property
    def agent_interactions(self) -> DataLoader:
        return DataLoader(self._agent_interactions(interaction_visible(self._viewer)))

    async def rows(self, statement) -> Sequence:
        return await self.reader.rows(statement)

    async def scalars(self, statement) -> Sequence:
        return await self.reader.scalars(statement)

    def _visible_ids(self, model, condition) -> Callable:
        async def load(ids: list[int]) -> list[bool]:
            visible = set(
                await self.scalars(sa.select(model.id).where(model.id.in_(ids), condition))
            )
            return [pk in visible for pk in ids]

        return load

    def _agent_interactions(self, visible) -> Callable:
        """An agent's in-progress interactions that the viewer may see, oldest first."""

        async def load(user_ids: list[int]) -> list[list[Interaction]]:
            rows = await self.rows(
                sa.select(Participant.user_id.label("agent_id"), Interaction.__table__)
                .join(Interaction, Interaction.id == Participant.interaction_id)
                .where(
                    Participant.user_id.in_(user_ids),
                    Participant.purpose == ParticipantPurpose.AGENT,
                    Participant.state == ParticipantState.CONNECTED,
                    Interaction.state != InteractionState.ENDED,
                    visible,
                )
                .order_by(Interaction.started_at, Interaction.id)
            )
            groups = defaultdict(list)
            for row in rows:
                groups[row.agent_id].append(row)
            return [groups.get(user_id, []) for user_id in user_ids]

        return load
