"""The visibility policy: for one viewer, whether and how each kind of object may be seen.

The contract's Visibility section, written once. Each rule is a `Rule`: a condition built
from a few atoms, each atom given in its two forms side by side, its SQL (for lists and
counts, which the database filters) and its check on facts already in memory (for rows the
loaders hold, the rules of startMonitoring, and events). Combining rules combines both
forms, so the two can never say different things; tests/visibility checks that they agree
on real rows, and checks every answer of generated queries against an oracle of its own.

- Divisions: the viewer's own; every division for ADMIN and INTEGRATION (and any division
  as the division of a user or queue the viewer may see).
- A queue in its own right: one of the viewer's division. As a reference from a visible
  interaction, a queue shows itself but not its members.
- An interaction: its queue, or any of its agents (connected now or earlier), is in the
  viewer's division.
- A monitoring session (with its MONITOR participant and its events) on a visible
  interaction: visible to SUPERVISOR, ADMIN and INTEGRATION viewers who are not and never
  were AGENT participants of it. To the interaction's agents (whatever their roles) only
  once it is disclosed: from its first COACH or BARGE, or its take over; silent monitoring
  stays silent. INTEGRATION sees all of it.
- Users: in the viewer's division, on an interaction the viewer may see (as a MONITOR only
  where the viewer may see its monitoring), or members of a queue the viewer sees in its own
  right.
"""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from app.models import Interaction, MonitoringSession, Participant, Queue, QueueMember, User
from app.models.enums import ALL_SEEING_ROLES, ParticipantPurpose, Role
from app.records import remembered_per_record

# Who may ever be told of monitoring; INTEGRATION bridges the media, so it sees all of it.
MONITORING_AWARE_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.INTEGRATION})


class AgentRef(Protocol):
    """An AGENT participant, connected now or earlier."""

    user_id: int
    division_id: int


class InteractionScope(Protocol):
    """What visibility needs to know of an interaction, in memory."""

    queue_division_id: int
    agents: Iterable[AgentRef]


class SessionScope(Protocol):
    """What visibility needs to know of a monitoring session, in memory."""

    # The agents of its interaction, connected now or earlier.
    agents: Iterable[AgentRef]
    # Whether it has been disclosed to them (coached, barged or taken over).
    disclosed: bool


@dataclass(frozen=True)
class SessionFacts:
    """A SessionScope from an interaction's agents and one of its sessions' disclosure."""

    agents: Iterable[AgentRef]
    disclosed: bool


@dataclass
class Rule:
    """A condition on one kind of object, in both forms: `sql` (a condition on the model's
    columns, correlated where it needs to be) and `check` (on facts in memory).

    The SQL is built when first asked for: building SQLAlchemy expressions costs far more
    than a check, and delivering an event to thousands of subscribers only checks."""

    build_sql: Callable[[], ColumnElement[bool]]
    check: Callable[[Any], bool]

    @cached_property
    def sql(self) -> ColumnElement[bool]:
        return self.build_sql()

    def __or__(self, other: "Rule") -> "Rule":
        return Rule(lambda: sa.or_(self.sql, other.sql), lambda f: self.check(f) or other.check(f))

    def __and__(self, other: "Rule") -> "Rule":
        return Rule(
            lambda: sa.and_(self.sql, other.sql), lambda f: self.check(f) and other.check(f)
        )

    def __invert__(self) -> "Rule":
        return Rule(lambda: sa.not_(self.sql), lambda f: not self.check(f))


ALWAYS = Rule(sa.true, lambda _facts: True)
NEVER = Rule(sa.false, lambda _facts: False)


# Aliases, so that a rule used inside a statement over these very tables (the user rule
# runs the interaction rule in a subquery over participants) correlates only on Interaction.
_Agent = aliased(Participant, name="visibility_agent")
_AgentUser = aliased(User, name="visibility_agent_user")


def _agents_of_interaction() -> sa.Select:
    """The AGENT participants of the interaction of the enclosing statement."""
    return (
        sa.select(_Agent.id)
        .where(_Agent.interaction_id == Interaction.id, _Agent.purpose == ParticipantPurpose.AGENT)
        .correlate(Interaction)
    )


class Policy:
    """Visibility for one viewer: a users row (`id`, `division_id`, `roles`)."""

    def __init__(self, viewer) -> None:
        self.viewer_id: int | None = viewer.id
        self.division_id: int = viewer.division_id
        self.roles = frozenset(Role(role) for role in viewer.roles)
        self.sees_everything = bool(self.roles & ALL_SEEING_ROLES)

    @staticmethod
    @remembered_per_record
    def of(viewer) -> "Policy":
        """The viewer's policy, shared by every decision about a viewer with the same id,
        division and roles (all a policy reads of its row): the monitoring rules decide for
        every agent of a queue's activity, and building a policy and its rules each time was
        a tenth of it."""
        return _shared_policy(viewer.id, viewer.division_id, tuple(viewer.roles))

    @classmethod
    def of_class(cls, viewer) -> "Policy":
        """Visibility for any viewer of this one's division and roles who takes part in
        nothing (was never an agent anywhere): what viewers who share answers have in common."""
        policy = cls(viewer)
        policy.viewer_id = None
        return policy

    def division(self, division_id: int) -> bool:
        """A division looked up in its own right (`node`)."""
        return self.sees_everything or division_id == self.division_id

    @cached_property
    def queue(self) -> Rule:
        """A queue in its own right; facts: a queue row."""
        if self.sees_everything:
            return ALWAYS
        own = self.division_id
        return Rule(lambda: Queue.division_id == own, lambda queue: queue.division_id == own)

    @cached_property
    def interaction(self) -> Rule:
        """An interaction; facts: an InteractionScope."""
        if self.sees_everything:
            return ALWAYS
        own = self.division_id
        in_a_queue_of_mine = Rule(
            lambda: Interaction.queue_id.in_(sa.select(Queue.id).where(Queue.division_id == own)),
            lambda scope: scope.queue_division_id == own,
        )
        taken_by_one_of_mine = Rule(
            lambda: (
                _agents_of_interaction()
                .join(_AgentUser, _AgentUser.id == _Agent.user_id)
                .where(_AgentUser.division_id == own)
                .exists()
            ),
            lambda scope: any(agent.division_id == own for agent in scope.agents),
        )
        return in_a_queue_of_mine | taken_by_one_of_mine

    @cached_property
    def session(self) -> Rule:
        """A monitoring session of a visible interaction (and its MONITOR participant and
        events); facts: a SessionScope; SQL: on MonitoringSession, correlated on its
        Interaction. Silent monitoring stays silent to the interaction's agents."""
        if Role.INTEGRATION in self.roles:
            return ALWAYS
        viewer = self.viewer_id
        took_part = Rule(
            lambda: _agents_of_interaction().where(_Agent.user_id == viewer).exists(),
            lambda scope: any(agent.user_id == viewer for agent in scope.agents),
        )
        disclosed = Rule(
            lambda: MonitoringSession.disclosed_at.is_not(None), lambda scope: scope.disclosed
        )
        if self.roles & MONITORING_AWARE_ROLES:
            return ~took_part | disclosed
        return took_part & disclosed

    def sees_monitoring(self, agents: Iterable[AgentRef]) -> bool | None:
        """Whether the viewer sees every session of an interaction with these agents (True),
        none of them (False), or only those disclosed (None). Disclosing a session only ever
        makes it visible to more viewers, so the two extremes decide it."""
        silent = self.session.check(SessionFacts(agents, disclosed=False))
        if silent:
            return True
        return None if self.session.check(SessionFacts(agents, disclosed=True)) else False

    @cached_property
    def user(self) -> ColumnElement[bool]:
        """SQL condition on User: a user looked up in their own right (`node`). Users
        reached from a visible object (a participant's user, a session's monitor) are
        visible with it."""
        if self.sees_everything:
            return sa.true()
        on_a_visible_interaction = (
            sa.select(Participant.id)
            .join(Interaction, Interaction.id == Participant.interaction_id)
            .where(
                Participant.user_id == User.id,
                self.interaction.sql,
                sa.or_(
                    Participant.purpose != ParticipantPurpose.MONITOR,
                    sa.select(MonitoringSession.id)
                    .where(
                        MonitoringSession.monitor_participant_id == Participant.id,
                        self.session.sql,
                    )
                    .exists(),
                ),
            )
            .exists()
        )
        member_of_a_visible_queue = (
            sa.select(QueueMember.user_id)
            .join(Queue, Queue.id == QueueMember.queue_id)
            .where(QueueMember.user_id == User.id, self.queue.sql)
            .exists()
        )
        return sa.or_(
            User.division_id == self.division_id,
            on_a_visible_interaction,
            member_of_a_visible_queue,
        )

    def interaction_event(self, event, about_session: bool) -> bool:
        """An event about an interaction (an InteractionScope), or about one of its sessions
        (also a SessionScope, disclosed as when it happened). (A presence event is visible
        where its user is: `user`.)"""
        return self.interaction.check(event) and (not about_session or self.session.check(event))


@functools.lru_cache(maxsize=1024)
def _shared_policy(viewer_id: int | None, division_id: int, roles: tuple) -> Policy:
    return Policy(SimpleNamespace(id=viewer_id, division_id=division_id, roles=roles))
