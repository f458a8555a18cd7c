"""Object types. Each wraps a table row; references resolve through the request's loaders."""

import asyncio
import functools
from datetime import datetime

import sqlalchemy as sa
import strawberry

from app import models
from app.graphql.context import Context
from app.graphql.enums import (
    Direction,
    InteractionState,
    MediaType,
    MonitoringEndReason,
    MonitoringErrorCodeEnum,
    MonitoringMode,
    MonitoringPermission,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
    Presence,
    Role,
)
from app.graphql.from_rows import built_from_rows
from app.graphql.ids import node_id
from app.graphql.prefetch import MISSING, now_or_later, peek, then
from app.models.enums import MonitoringState as State
from app.models.enums import ParticipantPurpose as Purpose
from app.monitoring.facts import InteractionFacts, user_ids_needed
from app.monitoring.permissions import permissions_of
from app.monitoring.rules import monitoring_options

Info = strawberry.Info[Context, None]


@strawberry.interface(description="An object with a global id: fetch it again with `node(id:)`.")
class Node:
    pk: strawberry.Private[int]

    @strawberry.field(description="Opaque global id: pass it back as it is, never parse it.")
    def id(self) -> strawberry.ID:
        return node_id(self.__class__.__name__, self.pk)  # an ID is a str


@built_from_rows(pk="id")
@strawberry.type(description="A division of the contact center: users see their own division.")
class Division(Node):
    key: str = strawberry.field(description="The division's key in the directory file.")
    name: str = strawberry.field(description="Display name.")


@strawberry.type(description="A user of the directory: agent, supervisor, admin or integration.")
class User(Node):
    key: str = strawberry.field(
        description="The identifier of the user in the directory the service was loaded from."
    )
    name: str = strawberry.field(description="Display name.")
    roles: list[Role] = strawberry.field(description="What the user may do.")
    presence: Presence = strawberry.field(description="The user's presence now.")
    monitoring_permissions: list[MonitoringPermission] = strawberry.field(
        description="What the user may do when monitoring (from the directory, or their roles' "
        "defaults)."
    )
    division_pk: strawberry.Private[int]

    @strawberry.field(description="The user's division.")
    def division(self, info: Info) -> Division:
        return now_or_later(info.context.loaders.division, self.division_pk, Division.of)

    @classmethod
    def of(cls, row: models.User) -> "User":
        return cls(
            pk=row.id,
            key=row.key,
            name=row.name,
            roles=_roles(tuple(row.roles)),
            presence=row.presence,
            monitoring_permissions=_permissions_listed(permissions_of(row)),
            division_pk=row.division_id,
        )


# Lists in the enums' order, one per value, shared by the users that have it (nothing
# changes a resolved object): iterating an enum class is a Python generator.
@functools.lru_cache(maxsize=64)
def _roles(names: tuple[str, ...]) -> list[Role]:
    return [role for role in models.enums.Role if role.value in names]


@functools.lru_cache(maxsize=64)
def _permissions_listed(granted: frozenset) -> list[MonitoringPermission]:
    return [p for p in models.enums.MonitoringPermission if p in granted]


@built_from_rows(pk="id", division_pk="division_id")
@strawberry.type(description="A queue that interactions wait in until an agent takes them.")
class Queue(Node):
    key: str = strawberry.field(description="The queue's key in the directory file.")
    name: str = strawberry.field(description="Display name.")
    division_pk: strawberry.Private[int]

    @strawberry.field(description="The division the queue belongs to.")
    def division(self, info: Info) -> Division:
        return now_or_later(info.context.loaders.division, self.division_pk, Division.of)

    @strawberry.field(
        description="The agents who take the queue's interactions, by name; empty for a queue "
        "of another division reached through one of its interactions."
    )
    def members(self, info: Info) -> list[User]:
        return then(
            info.context.loaders.members_seen(self.pk), lambda rows: [User.of(r) for r in rows]
        )


def _facts_now(loaders, interaction_pk: int) -> InteractionFacts | None:
    """The monitoring facts from primed loaders, or None when something is not loaded."""
    interaction = peek(loaders.interaction, interaction_pk)
    if interaction is MISSING:
        return None
    queue = peek(loaders.queue, interaction.queue_id)
    participants = peek(loaders.participants, interaction_pk)
    sessions = peek(loaders.sessions, interaction_pk)
    # Identity, not `in`: that compares rows by value.
    if queue is MISSING or participants is MISSING or sessions is MISSING:
        return None
    users = {}
    for user_id in user_ids_needed(participants, sessions):
        user = peek(loaders.user, user_id)
        if user is MISSING:
            return None
        users[user_id] = user
    return InteractionFacts.build(interaction, queue, participants, sessions, users)


async def _facts(info: Info, interaction_pk: int) -> InteractionFacts:
    """The monitoring facts of an interaction, from the request's loaders."""
    loaders = info.context.loaders
    interaction = await loaders.interaction.load(interaction_pk)
    queue, participants, sessions = await asyncio.gather(
        loaders.queue.load(interaction.queue_id),
        loaders.participants.load(interaction_pk),
        loaders.sessions.load(interaction_pk),
    )
    users = await loaders.user.load_many(list(user_ids_needed(participants, sessions)))
    return InteractionFacts.build(
        interaction, queue, participants, sessions, {user.id: user for user in users}
    )


@strawberry.type(description="Whether the viewer could start monitoring an agent now.")
class Monitorability:
    allowed: bool = strawberry.field(
        description="True where startMonitoring would succeed or return the viewer's session."
    )
    reason: MonitoringErrorCodeEnum | None = strawberry.field(
        description="Why not, when allowed is false: the code startMonitoring would answer with."
    )
    current_monitor: User | None = strawberry.field(
        description="Who is monitoring the interaction, when reason is ALREADY_MONITORED."
    )
    message: str | None = strawberry.field(
        description="Why not, in words for the supervisor, when allowed is false."
    )
    modes: list[MonitoringMode] = strawberry.field(
        description="The modes the viewer could start in, or switch their own session to, now; "
        "empty when allowed is false."
    )
    can_take_over: bool = strawberry.field(
        description="True where the viewer could take this interaction over from this agent now."
    )


def _monitorability(viewer, facts: InteractionFacts, agent_user_id: int) -> Monitorability:
    """What the monitoring mutations would answer now: the same rules, on the same facts."""
    options = monitoring_options(viewer, facts, agent_user_id)
    refusal = options.refusal
    if refusal is None:
        return _allowed_answer(options)
    monitor = facts.active_monitor if refusal.current_monitor_id else None
    return Monitorability(
        allowed=False,
        reason=refusal.code,
        current_monitor=User.of(monitor) if monitor else None,
        message=refusal.message,
        modes=[],
        can_take_over=options.can_take_over,
    )


# The answers that allow are few (one per set of modes): one object each, shared by every
# agent they answer for (nothing changes a resolved object).
@functools.lru_cache(maxsize=256)
def _allowed_answer(options) -> Monitorability:
    return Monitorability(
        allowed=True,
        reason=None,
        current_monitor=None,
        message=None,
        modes=list(options.modes),
        can_take_over=options.can_take_over,
    )


@built_from_rows(pk="id", user_pk="user_id", interaction_pk="interaction_id")
@strawberry.type(description="Someone on an interaction: the customer, an agent or a monitor.")
class Participant(Node):
    purpose: ParticipantPurpose = strawberry.field(description="Why they are on the interaction.")
    state: ParticipantState = strawberry.field(description="Whether they are still on it.")
    name: str = strawberry.field(
        description="Display name: the user's name, or the customer's name or address."
    )
    connected_at: datetime = strawberry.field(description="When they joined.")
    disconnected_at: datetime | None = strawberry.field(description="When they left, if they did.")
    user_pk: strawberry.Private[int | None]
    interaction_pk: strawberry.Private[int]

    @strawberry.field(
        description="The directory user behind an AGENT or MONITOR participant; null for a customer."
    )
    def user(self, info: Info) -> User | None:
        if self.user_pk is None:
            return None
        return now_or_later(info.context.loaders.user, self.user_pk, User.of)

    @strawberry.field(
        description="For an AGENT: the active session monitoring this agent on this interaction "
        "(null for the interaction's agents while the session is silent: only ever in MONITOR mode)."
    )
    def monitored_by(self, info: Info) -> "MonitoringSession | None":
        if self.purpose != Purpose.AGENT:
            return None

        def monitoring_me(sessions):
            return next(
                (
                    MonitoringSession.of(s)
                    for s in sessions
                    if s.state == State.ACTIVE and s.agent_id == self.user_pk
                ),
                None,
            )

        return then(info.context.loaders.sessions_seen(self.interaction_pk), monitoring_me)

    @strawberry.field(
        description="For an AGENT: whether the viewer could start monitoring this agent now, "
        "and if not, why."
    )
    def monitorability(self, info: Info) -> Monitorability | None:
        if self.purpose != Purpose.AGENT:
            return None
        context = info.context
        viewer = context.authenticated_viewer
        facts = _facts_now(context.loaders, self.interaction_pk)
        if facts is None:
            return self._monitorability_later(info, viewer)
        return _monitorability(viewer, facts, self.user_pk)

    async def _monitorability_later(self, info: Info, viewer) -> Monitorability:
        return _monitorability(viewer, await _facts(info, self.interaction_pk), self.user_pk)


@built_from_rows(pk="id", queue_pk="queue_id")
@strawberry.type(description="A voice call, SMS, chat, email or callback, live or past.")
class Interaction(Node):
    media_type: MediaType = strawberry.field(description="How the customer reaches the center.")
    direction: Direction = strawberry.field(description="Who started it.")
    state: InteractionState = strawberry.field(description="Waiting, connected or ended.")
    started_at: datetime = strawberry.field(description="When it arrived.")
    ended_at: datetime | None = strawberry.field(description="When it ended, if it has.")
    queue_pk: strawberry.Private[int]

    @strawberry.field(description="The queue it arrived in.")
    def queue(self, info: Info) -> Queue | None:
        return now_or_later(info.context.loaders.queue, self.queue_pk, Queue.of)

    @strawberry.field(
        description="Every participant, in the order they joined: customer, agents, monitors (monitors "
        "only where the viewer may see their session: silent monitoring stays silent to its agents)."
    )
    def participants(self, info: Info) -> list[Participant]:
        return then(info.context.loaders.participants_seen(self.pk), _participants_of)

    @strawberry.field(description="The AGENT participants, connected or not.")
    def agents(self, info: Info) -> list[Participant]:
        return now_or_later(info.context.loaders.participants, self.pk, _agents_of)

    @strawberry.field(
        description="The session monitoring this interaction now, if any (null for its agents "
        "while the session is silent: only ever in MONITOR mode)."
    )
    def active_monitoring(self, info: Info) -> "MonitoringSession | None":
        return then(info.context.loaders.sessions_seen(self.pk), _active_session_of)

    @strawberry.field(
        description="Every monitoring session this interaction had, oldest first (for its agents, "
        "only those that coached, barged or took over: silent monitoring stays silent)."
    )
    def monitoring_sessions(self, info: Info) -> list["MonitoringSession"]:
        return then(
            info.context.loaders.sessions_seen(self.pk),
            lambda rows: [MonitoringSession.of(s) for s in rows],
        )


# Converters of loaded rows, defined once rather than as a lambda per call (the hot lists).
def _participants_of(participants) -> list[Participant]:
    return [Participant.of(p) for p in participants]


def _agents_of(participants) -> list[Participant]:
    return [Participant.of(p) for p in participants if p.purpose == Purpose.AGENT]


def _interactions_of(rows) -> list[Interaction]:
    return [Interaction.of(row) for row in rows]


def _active_session_of(sessions) -> "MonitoringSession | None":
    for session in sessions:
        if session.state == State.ACTIVE:
            return MonitoringSession.of(session)
    return None


@built_from_rows(
    pk="id", interaction_pk="interaction_id", monitor_pk="monitor_id", agent_pk="agent_id"
)
@strawberry.type(description="A supervisor monitoring an agent on an interaction.")
class MonitoringSession(Node):
    state: MonitoringState = strawberry.field(description="Active or ended.")
    started_at: datetime = strawberry.field(description="When monitoring started.")
    ended_at: datetime | None = strawberry.field(description="When it ended, if it has.")
    end_reason: MonitoringEndReason | None = strawberry.field(description="Why it ended.")
    mode: MonitoringMode = strawberry.field(description="How the supervisor takes part now.")
    interaction_pk: strawberry.Private[int]
    monitor_pk: strawberry.Private[int]
    agent_pk: strawberry.Private[int]

    @strawberry.field(
        description="Every mode the session has been in, oldest first, the starting mode included."
    )
    def mode_history(self, info: Info) -> list["MonitoringModeChange"]:
        return now_or_later(
            info.context.loaders.mode_changes,
            self.pk,
            lambda rows: [MonitoringModeChange(mode=r.mode, at=r.at) for r in rows],
        )

    @strawberry.field(description="The monitored interaction.")
    def interaction(self, info: Info) -> Interaction:
        return now_or_later(info.context.loaders.interaction, self.interaction_pk, Interaction.of)

    @strawberry.field(description="The supervisor who monitors.")
    def monitor(self, info: Info) -> User:
        return now_or_later(info.context.loaders.user, self.monitor_pk, User.of)

    @strawberry.field(description="The agent being monitored.")
    def agent(self, info: Info) -> User:
        return now_or_later(info.context.loaders.user, self.agent_pk, User.of)


@strawberry.type(description="One step of a session's audit trail.")
class MonitoringModeChange:
    mode: MonitoringMode = strawberry.field(description="The mode from then on.")
    at: datetime = strawberry.field(description="When the session entered that mode.")


@strawberry.type(description="Relay pagination: where this page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item: pass it as `after`."
    )


@strawberry.type(description="One queue in a page of queues.")
class QueueEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this queue.")
    node: Queue = strawberry.field(description="The queue.")


@strawberry.type(description="A page of queues, by name.")
class QueueConnection:
    edges: list[QueueEdge] = strawberry.field(description="The queues of this page, with cursors.")
    nodes: list[Queue] = strawberry.field(description="The queues of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    count_statement: strawberry.Private[sa.Select]

    @strawberry.field(description="How many queues in all (counted only when asked for).")
    async def total_count(self, info: Info) -> int:
        return (await info.context.loaders.scalars(self.count_statement))[0]


@strawberry.type(description="One interaction in a page of interactions.")
class InteractionEdge:
    cursor: str = strawberry.field(
        description="Pass as `after` to continue after this interaction."
    )
    node: Interaction = strawberry.field(description="The interaction.")


@strawberry.type(description="A page of interactions, newest first.")
class InteractionConnection:
    edges: list[InteractionEdge] = strawberry.field(description="This page, with cursors.")
    nodes: list[Interaction] = strawberry.field(description="The interactions of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    count_statement: strawberry.Private[sa.Select]

    @strawberry.field(
        description="How many interactions match in all (counted only when asked for)."
    )
    async def total_count(self, info: Info) -> int:
        return (await info.context.loaders.scalars(self.count_statement))[0]


@strawberry.type(description="One session in a page of sessions.")
class MonitoringSessionEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this session.")
    node: MonitoringSession = strawberry.field(description="The session.")


@strawberry.type(description="A page of monitoring sessions, newest first.")
class MonitoringSessionConnection:
    edges: list[MonitoringSessionEdge] = strawberry.field(description="This page, with cursors.")
    nodes: list[MonitoringSession] = strawberry.field(description="The sessions of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    count_statement: strawberry.Private[sa.Select]

    @strawberry.field(description="How many sessions match in all (counted only when asked for).")
    async def total_count(self, info: Info) -> int:
        return (await info.context.loaders.scalars(self.count_statement))[0]


@strawberry.type(description="An On Queue agent and what they are handling.")
class QueueAgent:
    agent: User = strawberry.field(description="The agent.")

    @strawberry.field(description="The agent's in-progress interactions, in any queue.")
    def interactions(self, info: Info) -> list[Interaction]:
        return now_or_later(
            info.context.loaders.agent_interactions, self.agent.pk, _interactions_of
        )


@strawberry.type(
    description="Queue activity: what Performance > Queue activity shows for one queue, live."
)
class QueueActivity:
    queue: Queue = strawberry.field(description="The queue.")
    as_of: datetime = strawberry.field(description="When these figures were read.")
    waiting: list[Interaction] = strawberry.field(
        description="Interactions in the queue that no agent has taken yet, oldest first."
    )
    interacting: list[Interaction] = strawberry.field(
        description="The Interacting section: in-progress interactions with at least one agent, "
        "oldest first."
    )
    on_queue_agents: list[QueueAgent] = strawberry.field(
        description="The On Queue agents list: members whose presence is ON_QUEUE."
    )

    @strawberry.field(description="How many interactions wait.")
    def waiting_count(self) -> int:
        return len(self.waiting)

    @strawberry.field(description="How many interactions have an agent.")
    def interacting_count(self) -> int:
        return len(self.interacting)

    @strawberry.field(description="How many members are On Queue.")
    def on_queue_agent_count(self) -> int:
        return len(self.on_queue_agents)


@strawberry.type(description="One row of the viewer's own interaction panel.")
class PanelEntry:
    interaction: Interaction = strawberry.field(description="The interaction.")
    monitoring: bool = strawberry.field(
        description="True where the viewer is monitoring this interaction: the binocular icon."
    )
    session: MonitoringSession | None = strawberry.field(
        description="The viewer's monitoring session, where monitoring is true."
    )


@strawberry.type(
    description="A change of one queue's activity. The first update carries the whole view in "
    "`snapshot`; each later one carries what changed since the previous update."
)
class QueueActivityUpdate:
    cursor: str = strawberry.field(
        description="Opaque, increasing: the point of the event log this view reflects."
    )
    snapshot: QueueActivity | None = strawberry.field(
        description="The whole view: in the first update, and whenever the server starts the "
        "client over (deltas are then empty)."
    )
    changed: list[Interaction] = strawberry.field(
        description="Interactions that entered the view or changed, as they are now: place them "
        "by `state` (WAITING or CONNECTED), oldest first by `startedAt`."
    )
    removed: list[strawberry.ID] = strawberry.field(
        description="Ids of interactions that left the view (they ended)."
    )
    agents_changed: list[QueueAgent] = strawberry.field(
        description="On Queue agents who joined the list, or whose interactions changed, as they "
        "are now: the list is by name."
    )
    agents_removed: list[strawberry.ID] = strawberry.field(
        description="User ids of agents who left the On Queue list."
    )
    waiting_count: int = strawberry.field(description="How many interactions wait now.")
    interacting_count: int = strawberry.field(
        description="How many interactions have an agent now."
    )
    on_queue_agent_count: int = strawberry.field(description="How many members are On Queue now.")
