"""The monitoring rules, checked in the contract's order: starting (in a mode), changing
mode, taking over, stopping.

Pure functions of the facts: the mutations and `Participant.monitorability` both call them
(`monitoring_options` runs `decide_start` itself for every mode), so the two can never
disagree.
"""

import functools
from typing import NamedTuple

from app.models import MonitoringSession, User
from app.models.directory import role_set
from app.models.enums import (
    MONITORABLE_MEDIA,
    MONITORING_ROLES,
    InteractionState,
    MediaType,
    MonitoringMode,
    MonitoringState,
    Role,
)
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.facts import AgentFact, InteractionFacts
from app.monitoring.permissions import MODE_PERMISSION, Permission, permissions_of
from app.visibility import Policy, SessionFacts

# An agentId that names no user at all (another type's id): it can match no agent.
NOT_A_USER = -1

_MEDIA_NAMES = {
    MediaType.VOICE: "Voice",
    MediaType.SMS: "SMS",
    MediaType.CHAT: "Chat",
    MediaType.EMAIL: "Email",
    MediaType.CALLBACK: "Callback",
}

# The modes each monitorable media type offers, and the media a supervisor can take over.
MODES_BY_MEDIA = {
    MediaType.VOICE: (MonitoringMode.MONITOR, MonitoringMode.COACH, MonitoringMode.BARGE),
    MediaType.SMS: (MonitoringMode.MONITOR,),
    MediaType.CHAT: (MonitoringMode.MONITOR, MonitoringMode.BARGE),
}
TAKE_OVER_MEDIA = frozenset({MediaType.CHAT, MediaType.SMS})

_WHAT_PERMISSION_ALLOWS = {
    Permission.MONITOR: "monitor interactions silently",
    Permission.COACH: "coach agents",
    Permission.BARGE: "barge into interactions",
    Permission.TAKE_OVER: "take interactions over",
}
_WHAT_MODE_IS = {
    MonitoringMode.MONITOR: "monitored",
    MonitoringMode.COACH: "coached",
    MonitoringMode.BARGE: "barged into",
}


# Named tuples, immutable as frozen dataclasses and built in a fraction of their time:
# monitorability decides for every agent of a queue's activity.
class Allowed(NamedTuple):
    """A new session may start, monitoring this agent."""

    agent: AgentFact


class AlreadyMine(NamedTuple):
    """The viewer already monitors the interaction: rule 9 returns that session."""

    session: MonitoringSession


def decide_start(
    viewer: User,
    facts: InteractionFacts,
    agent_user_id: int | None,
    mode: MonitoringMode = MonitoringMode.MONITOR,
) -> Allowed | AlreadyMine:
    """Raise the first rule that fails as a MonitoringError, in the contract's order."""
    if not Policy.of(viewer).interaction.check(facts):
        raise MonitoringError(Code.NOT_FOUND, "This interaction does not exist.")
    if not role_set(viewer) & MONITORING_ROLES:
        raise MonitoringError(
            Code.NOT_PERMITTED, "Only supervisors and admins can monitor interactions."
        )
    _require_permission(viewer, MODE_PERMISSION[mode])  # 2a
    interaction = facts.interaction
    if interaction.state == InteractionState.ENDED:
        raise MonitoringError(Code.INTERACTION_ENDED, "This interaction has ended.")
    if interaction.media_type not in MONITORABLE_MEDIA:
        raise MonitoringError(
            Code.MEDIA_NOT_MONITORABLE,
            f"{_MEDIA_NAMES[interaction.media_type]} interactions cannot be monitored live.",
        )
    _require_mode_available(interaction.media_type, mode)  # 4a
    connected = facts.connected_agents
    if not connected:
        raise MonitoringError(Code.NO_AGENT, "No agent has joined this interaction yet.")
    agent = _choose_agent(connected, agent_user_id)
    # Connected now, or earlier: one who took part may never learn of its monitoring (silent
    # monitoring), which rules 10 and 11 would tell.
    viewer_id = viewer.id
    for taking_part in facts.agents:
        if taking_part.user_id == viewer_id:
            raise MonitoringError(
                Code.SELF_MONITORING, "You cannot monitor an interaction you are taking part in."
            )
    if agent.division_id != viewer.division_id:
        raise MonitoringError(
            Code.DIVISION_MISMATCH,
            f"{agent.name} is in another division: you can monitor only agents of your own.",
            field=("input", "agentId") if agent_user_id is not None else None,
        )
    active = facts.active_session
    if active is not None and active.monitor_id == viewer_id:
        return AlreadyMine(active)
    if active is not None:
        monitor = facts.active_monitor
        raise MonitoringError(
            Code.ALREADY_MONITORED,
            f"{monitor.name} is already monitoring this interaction.",
            current_monitor_id=monitor.id,
        )
    if interaction.media_type == MediaType.SMS and facts.ever_monitored:
        raise MonitoringError(
            Code.MONITORED_ONCE,
            "This SMS interaction was monitored before: an SMS can be monitored only once.",
        )
    return Allowed(agent)


def _choose_agent(connected: list[AgentFact], agent_user_id: int | None) -> AgentFact:
    if agent_user_id is not None:
        for agent in connected:
            if agent.user_id == agent_user_id:
                return agent
        raise MonitoringError(
            Code.AGENT_NOT_ON_INTERACTION,
            "That agent is not connected to this interaction.",
            field=("input", "agentId"),
        )
    if len(connected) > 1:
        names = ", ".join(agent.name for agent in connected)
        raise MonitoringError(
            Code.AGENT_REQUIRED,
            f"Several agents are connected ({names}): choose the one to monitor.",
            field=("input", "agentId"),
        )
    return connected[0]


def _require_permission(viewer: User, permission: Permission) -> None:
    if permission not in permissions_of(viewer):
        raise MonitoringError(
            Code.MODE_NOT_PERMITTED,
            f"You are not permitted to {_WHAT_PERMISSION_ALLOWS[permission]}.",
        )


def _require_mode_available(media: MediaType, mode: MonitoringMode) -> None:
    if mode not in MODES_BY_MEDIA[media]:
        raise MonitoringError(
            Code.MODE_NOT_AVAILABLE,
            f"{_MEDIA_NAMES[media]} interactions cannot be {_WHAT_MODE_IS[mode]}.",
        )


def _require_visible(viewer: User, facts: InteractionFacts, session: MonitoringSession) -> None:
    policy = Policy.of(viewer)
    scope = SessionFacts(facts.agents, disclosed=session.disclosed_at is not None)
    if not (policy.interaction.check(facts) and policy.session.check(scope)):
        raise MonitoringError(Code.NOT_FOUND, "This monitoring session does not exist.")


def _require_own_active(viewer: User, facts: InteractionFacts, session: MonitoringSession) -> None:
    """The first three checks of changing mode and taking over."""
    _require_visible(viewer, facts, session)
    if session.monitor_id != viewer.id:
        raise MonitoringError(
            Code.NOT_SESSION_OWNER, "This monitoring session belongs to another supervisor."
        )
    if session.state == MonitoringState.ENDED:
        raise MonitoringError(Code.SESSION_ENDED, "This monitoring session has ended.")


def check_change(
    viewer: User, facts: InteractionFacts, session: MonitoringSession, mode: MonitoringMode
) -> None:
    """Whether the viewer may switch the session to `mode` (its current one included)."""
    _require_own_active(viewer, facts, session)
    _require_permission(viewer, MODE_PERMISSION[mode])
    _require_mode_available(facts.interaction.media_type, mode)


def check_take_over(viewer: User, facts: InteractionFacts, session: MonitoringSession) -> None:
    """Whether the viewer may take the interaction over from the session's agent."""
    _require_own_active(viewer, facts, session)
    _require_permission(viewer, Permission.TAKE_OVER)
    if facts.interaction.media_type not in TAKE_OVER_MEDIA:
        raise MonitoringError(
            Code.MODE_NOT_AVAILABLE,
            f"{_MEDIA_NAMES[facts.interaction.media_type]} interactions cannot be taken over: "
            "only chat and SMS can.",
        )


def check_stop(
    viewer: User, facts: InteractionFacts, session: MonitoringSession, agent_division_id: int
) -> None:
    """Who may stop a session: its monitor, or an ADMIN of the monitored agent's division."""
    _require_visible(viewer, facts, session)
    if session.monitor_id == viewer.id:
        return
    if Role.ADMIN in role_set(viewer) and agent_division_id == viewer.division_id:
        return
    raise MonitoringError(
        Code.NOT_SESSION_OWNER, "This monitoring session belongs to another supervisor."
    )


class Options(NamedTuple):
    """What the viewer could do about one agent of an interaction now (monitorability). A
    named tuple: the shared answers that allow are looked up by it, for every agent."""

    # Why startMonitoring (in MONITOR mode, its default) would refuse; None where it would not.
    refusal: MonitoringError | None
    # The modes startMonitoring would accept, or changeMonitoringMode for the viewer's own
    # session; empty where it would refuse.
    modes: tuple[MonitoringMode, ...]
    # Whether takeOverInteraction would succeed on the viewer's session on this agent.
    can_take_over: bool


def monitoring_options(viewer: User, facts: InteractionFacts, agent_user_id: int) -> Options:
    """The answers of the mutations, from the same rules: decide_start for each mode (for the
    viewer's own session it checks what check_change does), and check_take_over."""
    # The take over is its own rule: its monitor may still take over when a start would be
    # refused (the platform connected them as an agent too, say).
    active = facts.active_session
    can_take_over = False
    if active is not None and active.monitor_id == viewer.id and active.agent_id == agent_user_id:
        try:
            check_take_over(viewer, facts, active)
            can_take_over = True
        except MonitoringError:
            pass
    try:
        decide_start(viewer, facts, agent_user_id)
    except MonitoringError as refusal:
        # Without its traceback, which refers to the frame that refers to it: a cycle that
        # left every refusal to the garbage collector.
        return Options(refusal=refusal.with_traceback(None), modes=(), can_take_over=can_take_over)
    return _allowed(permissions_of(viewer), facts.interaction.media_type, can_take_over)


# decide_start in another mode than MONITOR checks the same rules but two: the mode's
# permission (2a) and its availability for the medium (4a). Deciding only those is the same
# answer, at a fifth of the cost (monitorability is asked for every agent of a queue's
# activity); and it is the same for every agent with the same permissions and medium.
@functools.lru_cache(maxsize=256)
def _allowed(granted: frozenset[Permission], media: MediaType, can_take_over: bool) -> Options:
    available = MODES_BY_MEDIA[media]
    modes = tuple(
        mode for mode in MonitoringMode if MODE_PERMISSION[mode] in granted and mode in available
    )
    return Options(refusal=None, modes=modes, can_take_over=can_take_over)
