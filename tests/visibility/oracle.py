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
- The silent rule is per session. A session of a visible interaction is visible to a viewer
  who holds SUPERVISOR, ADMIN or INTEGRATION and is not and never was an AGENT participant of
  the interaction; to its AGENT participants (connected now or earlier, whatever their
  roles) only once the session is disclosed; INTEGRATION sees every session; nobody else
  any. A session is disclosed once it has been in COACH or BARGE mode (its mode history, the
  starting mode included) or has ended TAKEN_OVER: the oracle reads this from the mode
  history and the end reason, not from `disclosed_at` (read_floor checks that the two agree).
  Switching back to MONITOR does not make it silent again.
- A session's events (STARTED, MODE_CHANGED, ENDED) follow the same rule with the session as
  it was when the event was recorded: disclosed by then or not (test_feeds.py).
- A participant is visible with its interaction, a MONITOR one only with its session (the
  session whose monitor participant it is).
- A user is visible in the viewer's division, as the user of a visible participant or
  session, or as a member of a queue the viewer sees in its own right; every user for ADMIN
  and INTEGRATION.
- A division is visible when it is the viewer's own, or that of a visible user or queue
  (own right or reference); every division for ADMIN and INTEGRATION.

Where the contract leaves room, the reading chosen (the one that follows its intent):

- "Users ... on an interaction the viewer can see": as the user of a participant or session
  the viewer may see. A MONITOR participant hidden by the silent rule does not make its user
  visible: bob may not learn through `node` that sue, of south, is on his call; once sue
  barges into a call bob took part in, he may.
- "Users see their own division" (the Division type) against `division: Division!` of a
  visible user or queue: a division reached that way is visible, wherever it appears
  (`node` included). The lenient reading: it flags no answer the contract could allow.
- A queue is a reference only as the `queue` of the visible interaction that encloses it in
  the answer; under `node`, `queues` or `queueActivity` it needs its own right (checks.py).
- "Is or was an AGENT participant": any AGENT row of that user on the interaction, whatever
  its state, and "whatever their roles" (ADMIN included); INTEGRATION sees all of it.
- Past monitoring is monitoring: a hidden session stays hidden once ended, so a
  `Monitorability` that says MONITORED_ONCE where every session of the interaction is hidden
  from the viewer is a trace, as are ALREADY_MONITORED, a `currentMonitor` and a message
  that says "already monitoring" where the active session is hidden, and a message that
  names the monitor of a hidden session (who is not otherwise on the interaction for the
  viewer). The contract also says `monitorability` answers what `startMonitoring` would
  answer, and rules 10 and 11 would answer those codes: the silent rule is read as
  overriding what is shown. The oracle does not say what to answer instead.
- `Monitorability.modes`, where `allowed`: the modes of the media type (MONITOR for VOICE,
  SMS and CHAT, COACH for VOICE, BARGE for VOICE and CHAT) that the viewer's permissions
  grant (the directory's `permissions`, or else SUPERVISOR: MONITOR, COACH, BARGE; ADMIN:
  all four); empty where not. `canTakeOver`: `allowed`, the viewer's own active session
  monitors that agent, a CHAT or SMS, and the viewer holds TAKE_OVER.
- `PanelEntry.monitoring: true` tells of monitoring too: it needs an active session of the
  viewer's on the interaction that the viewer may see (which only a supervisor connected as
  an agent while monitoring, not on the floor, could lack).
- Counts: `totalCount` counts every match, whatever `first` and `after`; a filter on dates is
  not counted by the oracle (it would have to parse DateTime as the server does).
- Not on the floor: a supervisor who monitors an interaction and is then connected to it as
  an agent (by the integration; a former agent cannot start monitoring: SELF_MONITORING).
  Read literally, the rule hides their own silent session from them; the test does not
  decide it. A take over makes the supervisor an agent too, but discloses the session.
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
DISCLOSING_MODES = frozenset({"COACH", "BARGE"})
MODES_BY_MEDIA = {
    "VOICE": ("MONITOR", "COACH", "BARGE"),
    "CHAT": ("MONITOR", "BARGE"),
    "SMS": ("MONITOR",),
}
TAKE_OVER_MEDIA = frozenset({"CHAT", "SMS"})
PERMISSIONS = ("MONITOR", "COACH", "BARGE", "TAKE_OVER")
ROLE_PERMISSIONS = {SUPERVISOR: frozenset(PERMISSIONS[:3]), ADMIN: frozenset(PERMISSIONS)}


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
    # session id -> its modes, oldest first, the starting one included
    histories: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # MONITOR participant id -> the session it is the monitor of
    session_of_monitor: dict[int, int] = field(default_factory=dict)

    def disclosed(self, session_pk: int) -> bool:
        """Disclosed to the interaction's agents: ever in COACH or BARGE, or taken over."""
        session = self.sessions[session_pk]
        return bool(DISCLOSING_MODES & set(self.histories.get(session_pk, ()))) or (
            _enum(session.end_reason) == "TAKEN_OVER"
        )

    def disagreements(self) -> list[str]:
        """What the rows say that the oracle's reading of them contradicts: a session whose
        `disclosed_at` is not what its history says, a MONITOR participant that is the monitor
        of no session (or of several)."""
        found = [
            f"session {pk}: disclosed_at {row.disclosed_at}, modes {self.histories.get(pk)}, "
            f"ended {_enum(row.end_reason)}"
            for pk, row in self.sessions.items()
            if (row.disclosed_at is not None) != self.disclosed(pk)
        ]
        found.extend(
            f"session {pk}: mode {_enum(row.mode)}, history {self.histories.get(pk)}"
            for pk, row in self.sessions.items()
            if self.histories.get(pk, ("?",))[-1] != _enum(row.mode)
        )
        monitors = [s.monitor_participant_id for s in self.sessions.values()]
        found.extend(
            f"MONITOR participant {p.id} is the monitor of {monitors.count(p.id)} sessions"
            for p in self.participants.values()
            if is_monitor(p) and monitors.count(p.id) != 1
        )
        return found

    def permissions(self, user_pk: int) -> frozenset[str]:
        """A user's monitoring permissions: the directory's, or else their roles'."""
        user = self.users[user_pk]
        if user.permissions is not None:
            return frozenset(user.permissions)
        return frozenset().union(*(ROLE_PERMISSIONS.get(role, ()) for role in user.roles))

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
        changes = await table(connection, models.MonitoringModeChange)
    members: dict[int, set[int]] = defaultdict(set)
    for row in memberships:
        members[row.queue_id].add(row.user_id)
    participants_of: dict[int, list[sa.Row]] = defaultdict(list)
    for row in participants:
        participants_of[row.interaction_id].append(row)
    sessions_of: dict[int, list[sa.Row]] = defaultdict(list)
    for row in sessions:
        sessions_of[row.interaction_id].append(row)
    histories: dict[int, list[str]] = defaultdict(list)
    for row in sorted(changes, key=lambda change: (change.at, change.id)):
        histories[row.session_id].append(_enum(row.mode))
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
        histories={key: tuple(modes) for key, modes in histories.items()},
        session_of_monitor={row.monitor_participant_id: row.id for row in sessions},
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

    def hidden_reason(self, interaction_pk: int, disclosed: bool) -> str | None:
        """Why the viewer may not see a session of this interaction that is (or, for an
        event, was then) disclosed or not; None if they may."""
        if INTEGRATION in self.roles:
            return None  # the telephony platform bridges the media: it sees all of it
        if self.was_agent_of(interaction_pk):
            if disclosed:
                return None
            return "a viewer who is or was an AGENT of the interaction (a silent session)"
        if not self.roles & SEES_MONITORING:
            return "a viewer without SUPERVISOR, ADMIN or INTEGRATION"
        return None

    def session_hidden_reason(self, session_pk: int) -> str | None:
        """Why the viewer may not see this session of a visible interaction, or None."""
        session = self.floor.sessions[session_pk]
        return self.hidden_reason(session.interaction_id, self.floor.disclosed(session_pk))

    def sees_event(self, interaction_pk: int, disclosed_then: bool) -> bool:
        """An event about a session, recorded while it was disclosed or not."""
        return (
            interaction_pk in self.interactions
            and self.hidden_reason(interaction_pk, disclosed_then) is None
        )

    @cached_property
    def sessions(self) -> frozenset[int]:
        return frozenset(
            s.id
            for s in self.floor.sessions.values()
            if s.interaction_id in self.interactions and self.session_hidden_reason(s.id) is None
        )

    def sessions_on(self, interaction_pk: int) -> list[sa.Row]:
        """The interaction's sessions the viewer may see, oldest first."""
        return sorted(
            (s for s in self.floor.sessions_of.get(interaction_pk, ()) if s.id in self.sessions),
            key=lambda s: (s.started_at, s.id),
        )

    def hidden_on(self, interaction_pk: int) -> list[sa.Row]:
        """The sessions of a visible interaction that the viewer may not see."""
        return [
            s for s in self.floor.sessions_of.get(interaction_pk, ()) if s.id not in self.sessions
        ]

    @cached_property
    def participants(self) -> frozenset[int]:
        return frozenset(
            p.id
            for p in self.floor.participants.values()
            if p.interaction_id in self.interactions
            and (not is_monitor(p) or self.floor.session_of_monitor.get(p.id) in self.sessions)
        )

    def participants_on(self, interaction_pk: int) -> list[sa.Row]:
        """The interaction's participants the viewer may see, in the order they joined."""
        return sorted(
            (
                p
                for p in self.floor.participants_of.get(interaction_pk, ())
                if p.id in self.participants
            ),
            key=lambda p: (p.connected_at, p.id),
        )

    @cached_property
    def permissions(self) -> frozenset[str]:
        return self.floor.permissions(self.viewer.id)

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
    def own_divisions(self) -> frozenset[int]:
        """Divisions visible in their own right (`node`): the viewer's, or every one."""
        if self.all_seeing:
            return frozenset(self.floor.divisions)
        return frozenset({self.viewer.division_id})

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

    def sessions_matching(self, filter: dict | None) -> list[sa.Row]:
        """The visible sessions a filter of monitors, agents, queues, modes and states keeps
        (ids already decoded to primary keys of the right type), newest first."""
        filter = filter or {}
        return sorted(
            (
                self.floor.sessions[pk]
                for pk in self.sessions
                if _session_matches(self.floor, self.floor.sessions[pk], filter)
            ),
            key=lambda s: (s.started_at, s.id),
            reverse=True,
        )

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


def _session_matches(floor: Floor, session: sa.Row, filter: dict) -> bool:
    for key, value in (
        ("monitorIds", session.monitor_id),
        ("agentIds", session.agent_id),
        ("queueIds", floor.interactions[session.interaction_id].queue_id),
        ("states", _enum(session.state)),
    ):
        if filter.get(key) is not None and value not in filter[key]:
            return False
    modes = filter.get("modes")
    return modes is None or bool(set(modes) & set(floor.histories.get(session.id, ())))
