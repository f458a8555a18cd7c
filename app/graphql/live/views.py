"""The three live views, and what each update of one carries.

A view is one subscribed document over one subject (a queue, an interaction, a viewer's
panel). Its subscribers are split, per update, into groups that get the same answer: the
same viewer class (division, roles, monitoring permissions), unless the viewer takes part in
what the view shows (an agent on one of its interactions, or its monitor), who then gets an
answer of their own (`monitorability` and the silent rule depend on exactly that).

Each update is computed from the events of one batch and the rows of one snapshot read after
them. A change the snapshot does not show yet comes with an event after the batch (the
event log's horizon, app/events/log.py), so it reaches a later update; what it shows early is
sent again then, as it is. Updates carry whole objects as they are now, so that applying one
twice, or one that repeats what a snapshot had, changes nothing.
"""

from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from graphql import GraphQLError

from app import models
from app.events.broker import Event
from app.graphql.ids import encode_id
from app.graphql.loaders import Loaders, RowLoaders
from app.graphql.prefetch import prefetch_interactions, settled
from app.graphql.screens import IN_PROGRESS, prefetch_agents, read_panel, read_queue_activity
from app.graphql.types import Interaction, QueueActivityUpdate, QueueAgent, User
from app.models.enums import (
    MONITORING_EVENTS,
    EventKind,
    ParticipantPurpose,
    ParticipantState,
    Presence,
)
from app.models.enums import InteractionState as State
from app.monitoring.permissions import permissions_of
from app.visibility import Policy

# An Interaction's fields read from its own row: what an event about its participants or
# monitoring leaves as it is.
ROW_FIELDS = frozenset(
    {"__typename", "id", "mediaType", "direction", "state", "startedAt", "endedAt"}
)


@dataclass(frozen=True)
class _Scope:
    """An InteractionScope (app/visibility): an interaction's queue division and agents."""

    queue_division_id: int
    agents: tuple


def not_found(what: str) -> GraphQLError:
    return GraphQLError(f"This {what} does not exist.", extensions={"code": "NOT_FOUND"})


def viewer_class(viewer: models.User) -> tuple:
    """Everything of a viewer that a view's answer depends on, unless they take part in it."""
    permissions = sorted(p.value for p in permissions_of(viewer))
    return (viewer.division_id, tuple(sorted(viewer.roles)), tuple(permissions))


class Snapshot:
    """A group's update is a new snapshot (the view cannot say what changed)."""


@dataclass
class Update:
    """What one group of subscribers is sent: the root value its document runs on, and
    whether the view ends after it (an ended interaction's last state)."""

    root: object
    final: bool = False


class Batch:
    """The events of one read of the log, and what every view reads of them, once."""

    def __init__(self, events: list[Event], reads: RowLoaders) -> None:
        self.events = events
        self.position = events[-1].position
        self.interaction_events = [e for e in events if e.interaction_id is not None]
        self.presence_users = {e.user_id for e in events if e.kind == EventKind.PRESENCE_CHANGED}
        self.presence_queues = {
            q for e in events if e.kind == EventKind.PRESENCE_CHANGED for q in e.member_of
        }
        self._reads = reads
        self._on_interactions: list | None = None
        # The queues that live views watch, and (read once, for all of them) their members
        # among the users whose interactions or presence changed.
        self.watched_queues: frozenset[int] = frozenset()
        self._members: dict[int, dict[int, sa.Row]] | None = None

    async def members(self, queue_id: int) -> dict[int, sa.Row]:
        """The queue's members (users rows, as they are now) among the batch's agents, its
        presence changes, and the agents on interactions where a presence changed."""
        if self._members is None:
            users = {a.user_id for e in self.interaction_events for a in e.agents}
            users |= self.presence_users
            touched = {row.interaction_id for row in await self.presence_on_interactions()}
            if touched:
                P = models.Participant
                users |= set(
                    await self._reads.reader.scalars(
                        sa.select(P.user_id).where(
                            P.interaction_id.in_(touched), P.purpose == ParticipantPurpose.AGENT
                        )
                    )
                )
            self._members = {}
            if users and self.watched_queues:
                U, M = models.User, models.QueueMember
                for row in await self._reads.reader.rows(
                    sa.select(M.queue_id.label("member_of"), U.__table__)
                    .join(M, M.user_id == U.id)
                    .where(M.queue_id.in_(self.watched_queues), U.id.in_(users))
                ):
                    self._members.setdefault(row.member_of, {})[row.id] = row
        return self._members.get(queue_id, {})

    async def interactions(self, ids) -> list:
        """These interactions' rows, as they are now (through the batch's shared loader)."""
        rows = await self._reads.interaction.fetch_many(list(ids))
        return [row for row in rows if row is not None]

    def visible_to(self, policy: Policy) -> list[Event]:
        """The interaction events the viewer may see (silent monitoring stays silent)."""
        return [
            e
            for e in self.interaction_events
            if policy.interaction_event(e, e.kind in MONITORING_EVENTS)
        ]

    async def presence_on_interactions(self) -> list:
        """(interaction, user) for each in-progress interaction with a participant whose
        presence changed in the batch: their `user { presence }` changed."""
        if self._on_interactions is None:
            self._on_interactions = []
            if self.presence_users:
                P, I = models.Participant, models.Interaction
                self._on_interactions = list(
                    await self._reads.reader.rows(
                        sa.select(P.interaction_id, P.user_id)
                        .join(I, I.id == P.interaction_id)
                        .where(P.user_id.in_(self.presence_users), I.state.in_(IN_PROGRESS))
                    )
                )
        return self._on_interactions


async def seen_presence_changes(batch: Batch, loaders: Loaders) -> set[int]:
    """The in-progress interactions on which the viewer sees a participant whose presence
    changed (a silent monitor's presence is as silent as the monitor)."""
    touched = set()
    for row in await batch.presence_on_interactions():
        seen = await settled(loaders.participants_seen(row.interaction_id))
        if any(p.user_id == row.user_id for p in seen):
            touched.add(row.interaction_id)
    return touched


@dataclass(eq=False)
class View:
    """One document (text, operation name, variables) over one subject."""

    subject: int
    document: tuple
    wanted: frozenset[str]
    members: set = field(default_factory=set)
    # The members whose snapshot has been sent: updates follow.
    ready: set = field(default_factory=set)

    kind = ""

    @property
    def key(self) -> tuple:
        return (self.kind, self.subject, self.document)

    @cached_property
    def follows_presence(self) -> bool:
        """The document shows users' presence below the view's interactions."""
        return "presence" in self.wanted

    @cached_property
    def follows_members(self) -> bool:
        """The document lists queue members below the view's interactions: a presence change
        of any member makes a new snapshot (rare, and simpler than tracking which)."""
        return "members" in self.wanted

    async def may_change(self, batch: Batch) -> bool:
        """Whether the batch could change the view for anyone (a superset, for nobody in
        particular: each group's update then decides for its viewers)."""
        return bool(batch.presence_users) and (self.follows_presence or self.follows_members)

    def group_key(self, viewer: models.User, involved: set[int], of_class: tuple) -> tuple:
        """`of_class`: the viewer's viewer_class."""
        if viewer.id in involved:
            return ("viewer", viewer.id)
        return ("class", of_class)

    async def involved(self, loaders: Loaders, viewer_ids: set[int]) -> set[int]:
        """Which of these viewers take part in what the view shows."""
        raise NotImplementedError

    async def snapshot(self, loaders: Loaders, cursor: str) -> Update | GraphQLError:
        raise NotImplementedError

    async def update(
        self, batch: Batch, loaders: Loaders, sees: Loaders, cursor: str
    ) -> Update | Snapshot | None:
        """The group's update for the batch, read through `loaders`; None when nothing it
        shows changed. What may have changed is decided through `sees`: loaders whose policy
        is what the group's viewers have in common (so that whichever of them computes it,
        the update is the same)."""
        raise NotImplementedError


def _took_part(interaction_ids):
    """The AGENT participants (ever) and connected monitors of these interactions' SQL."""
    P = models.Participant
    return sa.select(P.user_id).where(
        P.interaction_id.in_(interaction_ids),
        sa.or_(
            P.purpose == ParticipantPurpose.AGENT,
            sa.and_(P.purpose == ParticipantPurpose.MONITOR, P.state == ParticipantState.CONNECTED),
        ),
    )


@dataclass(eq=False)
class QueueActivityView(View):
    kind = "queueActivity"
    # Whether the document's agentsChanged shows more of their interactions than the
    # interaction's own row (ROW_FIELDS): then any change of one of them changes the agent.
    agents_follow_details: bool = True
    _counted: tuple | None = field(default=None, repr=False)

    def _shown_interactions(self):
        """The interactions the view shows: the queue's in progress, and those of its On
        Queue agents (their `interactions`)."""
        I, P, M, U = models.Interaction, models.Participant, models.QueueMember, models.User
        of_queue = sa.select(I.id).where(I.queue_id == self.subject, I.state.in_(IN_PROGRESS))
        of_agents = (
            sa.select(P.interaction_id)
            .join(I, I.id == P.interaction_id)
            .join(M, M.user_id == P.user_id)
            .join(U, U.id == P.user_id)
            .where(
                M.queue_id == self.subject,
                U.presence == Presence.ON_QUEUE,
                P.purpose == ParticipantPurpose.AGENT,
                P.state == ParticipantState.CONNECTED,
                I.state.in_(IN_PROGRESS),
            )
        )
        return sa.union(of_queue, of_agents)

    async def may_change(self, batch: Batch) -> bool:
        if any(e.queue_id == self.subject for e in batch.interaction_events):
            return True
        if await batch.members(self.subject):
            return True
        if self.follows_members and batch.presence_users:
            return True
        if self.follows_presence and batch.presence_users:
            touched = [row.interaction_id for row in await batch.presence_on_interactions()]
            rows = await batch.interactions(touched)
            return any(row.queue_id == self.subject for row in rows)
        return False

    async def involved(self, loaders: Loaders, viewer_ids: set[int]) -> set[int]:
        P = models.Participant
        statement = _took_part(self._shown_interactions()).where(P.user_id.in_(viewer_ids))
        return set(await loaders.scalars(statement))

    async def snapshot(self, loaders: Loaders, cursor: str) -> Update | GraphQLError:
        queue = await loaders.queue.load(self.subject)
        if queue is None or not loaders.policy.queue.check(queue):
            return not_found("queue")
        activity = await read_queue_activity(loaders, queue, self.wanted)
        return Update(
            QueueActivityUpdate(
                cursor=cursor,
                snapshot=activity,
                changed=[],
                removed=[],
                agents_changed=[],
                agents_removed=[],
                waiting_count=len(activity.waiting),
                interacting_count=len(activity.interacting),
                on_queue_agent_count=len(activity.on_queue_agents),
            )
        )

    async def update(
        self, batch: Batch, loaders: Loaders, sees: Loaders, cursor: str
    ) -> Update | Snapshot | None:
        if self.follows_members and batch.presence_users:
            return Snapshot()
        visible = batch.visible_to(sees.policy)
        touched = {e.interaction_id for e in visible}
        # Agents who joined or left the list, or whose `interactions` may have changed.
        agents = set(batch.presence_users)
        for e in visible:
            agents |= self._agents_changed_by(e, sees.policy)
        if self.follows_presence:
            nested = await seen_presence_changes(batch, sees)
            touched |= nested
            if self.agents_follow_details:
                for group in await loaders.participants.fetch_many(list(nested)):
                    agents |= {
                        p.user_id
                        for p in group
                        if p.purpose == ParticipantPurpose.AGENT
                        and p.state == ParticipantState.CONNECTED
                    }
        rows = await batch.interactions(touched)
        mine = [r for r in rows if r.queue_id == self.subject]
        members = [row for pk, row in (await batch.members(self.subject)).items() if pk in agents]
        if not mine and not members:
            return None
        changed = sorted(
            (r for r in mine if r.state in IN_PROGRESS), key=lambda r: (r.started_at, r.id)
        )
        removed = [r for r in mine if r.state not in IN_PROGRESS]
        joined = sorted(
            (u for u in members if u.presence == Presence.ON_QUEUE), key=lambda u: (u.name, u.id)
        )
        left = [
            u for u in members if u.presence != Presence.ON_QUEUE and u.id in batch.presence_users
        ]
        if not (changed or removed or joined or left):
            return None
        await prefetch_interactions(loaders, changed, self.wanted)
        await prefetch_agents(loaders, joined, self.wanted)
        waiting, interacting, on_queue = await self._counts(loaders)
        return Update(
            QueueActivityUpdate(
                cursor=cursor,
                snapshot=None,
                changed=[Interaction.of(r) for r in changed],
                removed=[encode_id("Interaction", r.id) for r in removed],
                agents_changed=[QueueAgent(agent=User.of(u)) for u in joined],
                agents_removed=[encode_id("User", u.id) for u in left],
                waiting_count=waiting,
                interacting_count=interacting,
                on_queue_agent_count=on_queue,
            )
        )

    def _agents_changed_by(self, event: Event, policy: Policy) -> set[int]:
        """The agents whose item an interaction's event may change. Where the document shows
        only the interactions' own rows, that is the list an agent is on and the rows'
        fields: an agent joining or leaving changes their own list (and the interaction's
        state, WAITING or CONNECTED, only when nobody else is connected), an end every
        agent's; monitoring changes none. Unless the joining agent is what makes the
        interaction visible to the group (an agent of its division): then it enters the
        lists of every agent on it."""
        every = {agent.user_id for agent in event.agents}
        if self.agents_follow_details or event.kind == EventKind.INTERACTION_ENDED:
            return every
        if event.kind == EventKind.AGENT_DISCONNECTED:
            return {event.user_id}
        if event.kind == EventKind.AGENT_CONNECTED:
            others = tuple(a for a in event.agents if a.user_id != event.user_id)
            seen_before = policy.interaction.check(_Scope(event.queue_division_id, others))
            return {event.user_id} if seen_before else every
        return set()

    async def _counts(self, loaders: Loaders) -> tuple[int, int, int]:
        """The three counts, the same for every group: read once per snapshot of rows."""
        reader = loaders.reader
        if self._counted is not None and self._counted[0] is reader:
            return self._counted[1]
        counts = await self._read_counts(loaders)
        self._counted = (reader, counts)
        return counts

    async def _read_counts(self, loaders: Loaders) -> tuple[int, int, int]:
        I, U, M = models.Interaction, models.User, models.QueueMember
        by_state = dict(
            tuple(row)
            for row in await loaders.rows(
                sa.select(I.state, sa.func.count())
                .where(I.queue_id == self.subject, I.state.in_(IN_PROGRESS))
                .group_by(I.state)
            )
        )
        on_queue = await loaders.scalars(
            sa.select(sa.func.count())
            .select_from(M)
            .join(U, U.id == M.user_id)
            .where(M.queue_id == self.subject, U.presence == Presence.ON_QUEUE)
        )
        return by_state.get(State.WAITING, 0), by_state.get(State.CONNECTED, 0), on_queue[0]


@dataclass(eq=False)
class InteractionView(View):
    kind = "interaction"

    async def may_change(self, batch: Batch) -> bool:
        return any(
            e.interaction_id == self.subject for e in batch.interaction_events
        ) or await super().may_change(batch)

    async def involved(self, loaders: Loaders, viewer_ids: set[int]) -> set[int]:
        P = models.Participant
        return set(
            await loaders.scalars(_took_part([self.subject]).where(P.user_id.in_(viewer_ids)))
        )

    async def snapshot(self, loaders: Loaders, cursor: str) -> Update | GraphQLError:
        row = await loaders.visible_interaction.load(self.subject)
        if row is None:
            return not_found("interaction")
        return await self._now(loaders, row)

    async def _now(self, loaders: Loaders, row) -> Update:
        await prefetch_interactions(loaders, [row], self.wanted)
        return Update(Interaction.of(row), final=row.state == State.ENDED)

    async def update(
        self, batch: Batch, loaders: Loaders, sees: Loaders, cursor: str
    ) -> Update | Snapshot | None:
        row = await loaders.interaction.load(self.subject)
        if row is None:  # pruned
            return None
        if self.follows_members and row.queue_id in batch.presence_queues:
            return await self._now(loaders, row)
        changed = any(e.interaction_id == self.subject for e in batch.visible_to(sees.policy))
        if not changed and self.follows_presence:
            changed = self.subject in await seen_presence_changes(batch, sees)
        return await self._now(loaders, row) if changed else None


@dataclass(eq=False)
class PanelView(View):
    """The subject is the viewer: a panel is nobody else's."""

    kind = "panel"
    # The interactions of the panel as last sent.
    shown: set[int] = field(default_factory=set)

    async def may_change(self, batch: Batch) -> bool:
        viewer = self.subject
        return any(
            e.interaction_id in self.shown
            or e.monitor_id == viewer
            or any(a.user_id == viewer for a in e.agents)
            for e in batch.interaction_events
        ) or await super().may_change(batch)

    def group_key(self, viewer: models.User, involved: set[int], of_class: tuple) -> tuple:
        return ("viewer", viewer.id)

    async def involved(self, loaders: Loaders, viewer_ids: set[int]) -> set[int]:
        return set(viewer_ids)

    async def snapshot(self, loaders: Loaders, cursor: str) -> Update:
        entries = await read_panel(loaders, self.subject, self.wanted)
        self.shown = {entry.interaction.pk for entry in entries}
        return Update(entries)

    async def update(
        self, batch: Batch, loaders: Loaders, sees: Loaders, cursor: str
    ) -> Update | Snapshot | None:
        viewer = self.subject
        changed = any(
            e.interaction_id in self.shown
            or e.monitor_id == viewer
            or any(a.user_id == viewer for a in e.agents)
            for e in batch.visible_to(sees.policy)
        )
        if not changed and self.follows_presence:
            changed = bool(self.shown & await seen_presence_changes(batch, sees))
        if not changed and self.follows_members:
            changed = bool(batch.presence_users)
        return await self.snapshot(loaders, cursor) if changed else None
