"""The startMonitoring rules, checked in the contract's order.

Pure functions of the facts: `startMonitoring` and `Participant.monitorability` both call
`decide_start`, so the two can never disagree.
"""

from dataclasses import dataclass

from app.models import MonitoringSession, User
from app.models.enums import (
    MONITORABLE_MEDIA,
    MONITORING_ROLES,
    InteractionState,
    MediaType,
    Role,
)
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.facts import AgentFact, InteractionFacts
from app.visibility import Policy

# An agentId that names no user at all (another type's id): it can match no agent.
NOT_A_USER = -1

_MEDIA_NAMES = {MediaType.EMAIL: "Email", MediaType.CALLBACK: "Callback"}


@dataclass(frozen=True)
class Allowed:
    """A new session may start, monitoring this agent."""

    agent: AgentFact


@dataclass(frozen=True)
class AlreadyMine:
    """The viewer already monitors the interaction: rule 9 returns that session."""

    session: MonitoringSession


def decide_start(
    viewer: User, facts: InteractionFacts, agent_user_id: int | None
) -> Allowed | AlreadyMine:
    """Raise the first rule that fails as a MonitoringError, in the contract's order."""
    if not Policy(viewer).interaction.check(facts):
        raise MonitoringError(Code.NOT_FOUND, "This interaction does not exist.")
    if not viewer.role_set & MONITORING_ROLES:
        raise MonitoringError(
            Code.NOT_PERMITTED, "Only supervisors and admins can monitor interactions."
        )
    interaction = facts.interaction
    if interaction.state == InteractionState.ENDED:
        raise MonitoringError(Code.INTERACTION_ENDED, "This interaction has ended.")
    if interaction.media_type not in MONITORABLE_MEDIA:
        media = _MEDIA_NAMES.get(interaction.media_type, interaction.media_type.value)
        raise MonitoringError(
            Code.MEDIA_NOT_MONITORABLE, f"{media} interactions cannot be monitored live."
        )
    connected = facts.connected_agents
    if not connected:
        raise MonitoringError(Code.NO_AGENT, "No agent has joined this interaction yet.")
    agent = _choose_agent(connected, agent_user_id)
    # Connected now, or earlier: one who took part may never learn of its monitoring (silent
    # monitoring), which rules 10 and 11 would tell.
    if any(a.user_id == viewer.id for a in facts.agents):
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
    if active is not None and active.monitor_id == viewer.id:
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


def check_stop(
    viewer: User, facts: InteractionFacts, session: MonitoringSession, agent_division_id: int
) -> None:
    """Who may stop a session: its monitor, or an ADMIN of the monitored agent's division."""
    policy = Policy(viewer)
    if not (policy.interaction.check(facts) and policy.monitoring.check(facts)):
        raise MonitoringError(Code.NOT_FOUND, "This monitoring session does not exist.")
    if session.monitor_id == viewer.id:
        return
    if Role.ADMIN in viewer.role_set and agent_division_id == viewer.division_id:
        return
    raise MonitoringError(
        Code.NOT_SESSION_OWNER, "This monitoring session belongs to another supervisor."
    )
