"""An oracle of the contract's visibility rules, independent of the app.

It reads the raw rows of the test database with plain SQLAlchemy Core (the app's tables, not
its policy code) and decides, from the words of ../shared/contract/README.md ("Visibility"
and "Precisions"), what one viewer may see. Nothing here imports app.monitoring or
app.graphql: a bug in the app's policy cannot hide in the oracle too.

The rules, as this module reads them:

- An interaction is visible to ADMIN and INTEGRATION, and to a viewer of the division of its
  queue or of any of its AGENT participants, connected now or earlier.
- A queue is visible in its own right in the viewer's division (every division for ADMIN and
  INTEGRATION). It is visible as a reference (id, key, name, division; no members) as the
  queue of a visible interaction.
- A viewer "sees monitoring" on an interaction when they hold SUPERVISOR, ADMIN or
  INTEGRATION and are not and never were an AGENT participant of it; INTEGRATION sees all of
  it. Monitoring is MONITOR participants, sessions, and anything that tells of them.
- A participant is visible with its interaction, a MONITOR one only to a viewer who sees
  monitoring there; a session likewise.
- A user is visible in the viewer's division, as the user of a visible participant or
  session, or as a member of a queue the viewer sees in its own right; every user for ADMIN
  and INTEGRATION.
- A division is visible when it is the viewer's own, or that of a visible user or queue
  (own right or reference); every division for ADMIN and INTEGRATION.

Where the contract leaves room, the reading chosen (the one that follows its intent):

- "Users ... on an interaction the viewer can see": as the user of a participant or session
  the viewer may see. A MONITOR participant hidden by the silent rule does not make its user
  visible: bob may not learn through `node` that sue, of south, is on his call.
- "Users see their own division" (the Division type) against `division: Division!` of a
  visible user or queue: a division reached that way is visible, wherever it appears
  (`node` included). The lenient reading: it flags no answer the contract could allow.
- A queue is a reference only as the `queue` of the visible interaction that encloses it in
  the answer; under `node`, `queues` or `queueActivity` it needs its own right (checks.py).
- "Is or was an AGENT participant": any AGENT row of that user on the interaction, whatever
  its state, and "whatever their roles" (ADMIN included); INTEGRATION sees all of it.
- Past monitoring is monitoring: a silenced viewer's `monitoringSessions` is empty, ended
  sessions included, so a `Monitorability` that says MONITORED_ONCE (which only a past
  session justifies) is a trace, as are ALREADY_MONITORED, a `currentMonitor`, and a
  message that names a monitor or says "already monitoring"/"monitored before". The
  contract also says `monitorability` answers what `startMonitoring` would answer, and rules
  10 and 11 would answer those codes: the silent rule is read as overriding what is shown.
  The oracle does not say what to answer instead.
- `PanelEntry.monitoring: true` tells of monitoring too (only the viewer's own sessions can
  set it, so it cannot be a violation unless the floor had a former agent who monitors).
- Counts: `totalCount` counts every match, whatever `first` and `after`; a filter on dates is
  not counted by the oracle (it would have to parse DateTime as the server does).
- Not on the floor: a former agent of an interaction who then monitors it. Read literally,
  the contract would hide their own session from them; the test does not decide it.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa

from app import models

ADMIN, AGENT, SUPERVISOR, INTEGRATION = "ADMIN", "AGENT", "SUPERVISOR", "INTEGRATION"
NODE_TYPES = ("Division", "User", "Queue", "Interaction", "Participant", "MonitoringSession")
ALL_SEEING = frozenset({ADMIN, INTEGRATION})
SEES_MONITORING = frozenset({SUPERVISOR, ADMIN, INTEGRATION})


@dataclass(frozen=True)
class Floor:
    """Every row that visibility depends on, keyed by primary key."""

    divisions: dict[int, sa.Row]
    users: dict[int, sa.Row]
    queues: dict[int, sa.Row]
    members: dict[int, frozenset[int]]  # queue id -> user ids
    interactions: dict[int, sa.Row]
    participants: dict[int, sa.Row]
    sessions: dict[int, sa.Row]
    participants_of: dict[int, tuple[sa.Row, ...]] = field(default_factory=dict)
    sessions_of: dict[int, tuple[sa.Row, ...]] = field(default_factory=dict)

    def rows(self, type_name: str) -> dict[int, sa.Row]:
        return {
            "Division": self.divisions,
            "User": self.users,
            "Queue": self.queues,
            "Interaction": self.interactions,
            "Participant": self.participants,
            "MonitoringSession": self.sessions,
        }[type_name]


async def read_floor(engine) -> Floor:
    """The database as it is, read with plain SQLAlchemy Core."""

    async def table(connection, model) -> list[sa.Row]:
        return list((await connection.execute(sa.select(model.__table__))).all())

    async with engine.connect() as connection:
        divisions = await table(connection, models.Division)
        users = await table(connection, models.User)
        queues = await table(connection, models.Queue)
        memberships = await table(connection, models.QueueMember)
        interactions = await table(connection, models.Interaction)
        participants = await table(connection, models.Participant)
        sessions = await table(connection, models.MonitoringSession)
    members: dict[int, set[int]] = defaultdict(set)
    for row in memberships:
        members[row.queue_id].add(row.user_id)
    participants_of: dict[int, list[sa.Row]] = defaultdict(list)
    for row in participants:
        participants_of[row.interaction_id].append(row)
    sessions_of: dict[int, list[sa.Row]] = defaultdict(list)
    for row in sessions:
        sessions_of[row.interaction_id].append(row)
    return Floor(
        divisions={row.id: row for row in divisions},
        users={row.id: row for row in users},
        queues={row.id: row for row in queues},
        members={queue: frozenset(users) for queue, users in members.items()},
        interactions={row.id: row for row in interactions},
        participants={row.id: row for row in participants},
        sessions={row.id: row for row in sessions},
        participants_of={key: tuple(rows) for key, rows in participants_of.items()},
        sessions_of={key: tuple(rows) for key, rows in sessions_of.items()},
    )


def _enum(value) -> str:
    """An enum column's name, whether the row holds the enum or its text."""
    return getattr(value, "value", value)


def is_agent(participant: sa.Row) -> bool:
    return _enum(participant.purpose) == AGENT


def is_monitor(participant: sa.Row) -> bool:
    return _enum(participant.purpose) == "MONITOR"


@dataclass
class Sight:
    """What one viewer may see of a floor. Each set is computed once, from the rows."""

    floor: Floor
    viewer: sa.Row

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(self.viewer.roles)

    @cached_property
    def all_seeing(self) -> bool:
        return bool(self.roles & ALL_SEEING)

    def _in_division(self, division_id: int) -> bool:
        return self.all_seeing or division_id == self.viewer.division_id

    # -- Interactions and what comes with them ---------------------------------------------

    @cached_property
    def interactions(self) -> frozenset[int]:
        return frozenset(pk for pk in self.floor.interactions if self._interaction_visible(pk))

    def _interaction_visible(self, pk: int) -> bool:
        if self.all_seeing:
            return True
        queue = self.floor.queues[self.floor.interactions[pk].queue_id]
        if queue.division_id == self.viewer.division_id:
            return True
        # "any of its agents (connected now or earlier)": every AGENT row, whatever its state.
        return any(
            self.floor.users[p.user_id].division_id == self.viewer.division_id
            for p in self.floor.participants_of.get(pk, ())
            if is_agent(p)
        )

    def was_agent_of(self, interaction_pk: int) -> bool:
        return any(
            is_agent(p) and p.user_id == self.viewer.id
            for p in self.floor.participants_of.get(interaction_pk, ())
        )

    def silenced_reason(self, interaction_pk: int) -> str | None:
        """Why the viewer may not see monitoring on this interaction, or None if they may."""
        if INTEGRATION in self.roles:
            return None  # the telephony platform bridges the media: it sees all of it
        if not self.roles & SEES_MONITORING:
            return "a viewer without SUPERVISOR, ADMIN or INTEGRATION"
        if self.was_agent_of(interaction_pk):
            return "a viewer who is or was an AGENT of the interaction"
        return None

    @cached_property
    def monitoring_on(self) -> frozenset[int]:
        """Visible interactions on which the viewer sees monitoring."""
        return frozenset(pk for pk in self.interactions if self.silenced_reason(pk) is None)

    @cached_property
    def participants(self) -> frozenset[int]:
        return frozenset(
            p.id
            for p in self.floor.participants.values()
            if p.interaction_id in self.interactions
            and (not is_monitor(p) or p.interaction_id in self.monitoring_on)
        )

    @cached_property
    def sessions(self) -> frozenset[int]:
        return frozenset(
            s.id for s in self.floor.sessions.values() if s.interaction_id in self.monitoring_on
        )

    # -- Queues, users, divisions ------------------------------------------------------------

    @cached_property
    def own_queues(self) -> frozenset[int]:
        """Queues visible in their own right."""
        return frozenset(
            q.id for q in self.floor.queues.values() if self._in_division(q.division_id)
        )

    @cached_property
    def referenced_queues(self) -> frozenset[int]:
        """Queues of visible interactions: visible as references."""
        return frozenset(self.floor.interactions[pk].queue_id for pk in self.interactions)

    @cached_property
    def users(self) -> frozenset[int]:
        floor = self.floor
        if self.all_seeing:
            return frozenset(floor.users)
        visible = {u.id for u in floor.users.values() if u.division_id == self.viewer.division_id}
        visible.update(
            floor.participants[pk].user_id
            for pk in self.participants
            if floor.participants[pk].user_id is not None
        )
        for pk in self.sessions:
            visible.update((floor.sessions[pk].monitor_id, floor.sessions[pk].agent_id))
        for queue in self.own_queues:
            visible.update(floor.members.get(queue, ()))
        return frozenset(visible)

    @cached_property
    def divisions(self) -> frozenset[int]:
        floor = self.floor
        if self.all_seeing:
            return frozenset(floor.divisions)
        visible = {self.viewer.division_id}
        visible.update(floor.users[pk].division_id for pk in self.users)
        visible.update(
            floor.queues[pk].division_id for pk in self.own_queues | self.referenced_queues
        )
        return frozenset(visible)

    # -- Counts --------------------------------------------------------------------------------

    def interactions_matching(self, filter: dict | None) -> int:
        """How many visible interactions a filter of queues, agents, media and states keeps
        (ids already decoded to primary keys of the right type)."""
        return sum(1 for pk in self.interactions if _matches(self.floor, pk, filter or {}))

    def queue_activity_counts(self, queue_pk: int) -> dict[str, int]:
        states = [
            _enum(i.state) for i in self.floor.interactions.values() if i.queue_id == queue_pk
        ]
        on_queue = [
            pk
            for pk in self.floor.members.get(queue_pk, ())
            if _enum(self.floor.users[pk].presence) == "ON_QUEUE"
        ]
        return {
            "waitingCount": states.count("WAITING"),
            "interactingCount": states.count("CONNECTED"),
            "onQueueAgentCount": len(on_queue),
        }


def _matches(floor: Floor, pk: int, filter: dict) -> bool:
    interaction = floor.interactions[pk]
    if filter.get("queueIds") is not None and interaction.queue_id not in filter["queueIds"]:
        return False
    if filter.get("agentIds") is not None and not any(
        is_agent(p) and p.user_id in filter["agentIds"] for p in floor.participants_of.get(pk, ())
    ):
        return False
    if (
        filter.get("mediaTypes") is not None
        and _enum(interaction.media_type) not in filter["mediaTypes"]
    ):
        return False
    return filter.get("states") is None or _enum(interaction.state) in filter["states"]
