"""The model's enums, exposed to GraphQL with descriptions for GraphiQL."""

from enum import Enum

import strawberry

from app.models import enums
from app.monitoring.errors import MonitoringErrorCode


def _expose(enum: type[Enum], description: str, values: dict[str, str]) -> type[Enum]:
    strawberry.enum(enum, description=description)
    for value in enum.__strawberry_definition__.values:
        value.description = values[value.name]
    return enum


MediaType = _expose(
    enums.MediaType,
    "How the customer reaches the contact center.",
    {
        "VOICE": "A phone call.",
        "SMS": "A text message conversation.",
        "CHAT": "A web chat.",
        "EMAIL": "An email.",
        "CALLBACK": "A call back the customer asked for.",
    },
)
Direction = _expose(
    enums.Direction,
    "Who started the interaction.",
    {
        "INBOUND": "The customer contacted the center.",
        "OUTBOUND": "The center contacted the customer.",
    },
)
InteractionState = _expose(
    enums.InteractionState,
    "Where an interaction is in its life.",
    {
        "WAITING": "In the queue, no agent connected yet.",
        "CONNECTED": "At least one agent is connected.",
        "ENDED": "Over. Nothing can be monitored any more.",
    },
)
Role = _expose(
    enums.Role,
    "What a user may do.",
    {
        "AGENT": "Takes interactions.",
        "SUPERVISOR": "Watches queues and monitors agents of their division.",
        "ADMIN": "Sees every division; monitors agents of their own division.",
        "INTEGRATION": "The telephony platform: reports interactions and presence.",
    },
)
Presence = _expose(
    enums.Presence,
    "A user's presence.",
    {
        "ON_QUEUE": "Ready to take interactions from their queues.",
        "AVAILABLE": "Available, not taking queue interactions.",
        "BUSY": "Busy.",
        "AWAY": "Away.",
        "OFFLINE": "Signed out.",
    },
)
ParticipantPurpose = _expose(
    enums.ParticipantPurpose,
    "Why a participant is on an interaction.",
    {
        "CUSTOMER": "The customer.",
        "AGENT": "An agent handling the interaction.",
        "MONITOR": "A supervisor monitoring an agent: the binocular icon.",
    },
)
ParticipantState = _expose(
    enums.ParticipantState,
    "Whether a participant is still on the interaction.",
    {"CONNECTED": "On the interaction now.", "DISCONNECTED": "Has left the interaction."},
)
MonitoringState = _expose(
    enums.MonitoringState,
    "Whether a monitoring session is going on.",
    {"ACTIVE": "The supervisor is monitoring now.", "ENDED": "The session is over."},
)
MonitoringEndReason = _expose(
    enums.MonitoringEndReason,
    "Why a monitoring session ended.",
    {
        "STOPPED": "The monitoring user stopped it.",
        "INTERACTION_ENDED": "The interaction ended.",
        "AGENT_DISCONNECTED": "The monitored agent left the interaction.",
        "TAKEN_OVER": "The supervisor took the interaction over and is now its agent.",
    },
)
MonitoringMode = _expose(
    enums.MonitoringMode,
    "How a supervisor takes part in a monitored interaction.",
    {
        "MONITOR": "Listen or read in silence: neither the agent nor the customer is told.",
        "COACH": "Voice only: speak to the agent alone; the customer does not hear the supervisor.",
        "BARGE": "Voice or chat: join the conversation; the agent and the customer hear or read "
        "the supervisor.",
    },
)
MonitoringPermission = _expose(
    enums.MonitoringPermission,
    "What a user may do when monitoring.",
    {
        "MONITOR": "Start monitoring silently.",
        "COACH": "Coach an agent.",
        "BARGE": "Barge into a conversation.",
        "TAKE_OVER": "Take a messaging interaction over from its agent.",
    },
)
MonitoringErrorCodeEnum = _expose(
    MonitoringErrorCode,
    "Why a monitoring mutation refused.",
    {
        "NOT_FOUND": "No such interaction, agent or session visible to the viewer.",
        "INTERACTION_ENDED": "The interaction has ended.",
        "NO_AGENT": "No agent is connected to the interaction yet.",
        "AGENT_REQUIRED": "Several agents are connected: say which one to monitor.",
        "AGENT_NOT_ON_INTERACTION": "The named agent is not connected to the interaction.",
        "ALREADY_MONITORED": "Someone else is monitoring the interaction right now.",
        "MONITORED_ONCE": "An SMS interaction can be monitored only once, and it already was.",
        "DIVISION_MISMATCH": "The agent is in another division than the viewer.",
        "NOT_PERMITTED": "The viewer may not monitor at all: neither SUPERVISOR nor ADMIN.",
        "MEDIA_NOT_MONITORABLE": "This media type cannot be live monitored.",
        "SELF_MONITORING": "A user cannot monitor an interaction they take part in.",
        "NOT_SESSION_OWNER": "The session belongs to another user.",
        "MODE_NOT_AVAILABLE": "The mode (or take over) is not available for this interaction's "
        "media type.",
        "MODE_NOT_PERMITTED": "The viewer lacks the monitoring permission this needs.",
        "SESSION_ENDED": "The session has ended.",
    },
)
MonitoringEventKind = _expose(
    enums.MonitoringEventKind,
    "What happened to a monitoring session.",
    {
        "STARTED": "A supervisor started monitoring.",
        "ENDED": "The session ended.",
        "MODE_CHANGED": "An active session changed mode.",
    },
)
InteractionEventKind = _expose(
    enums.InteractionEventKind,
    "What happened to an interaction.",
    {
        "CREATED": "It arrived in a queue (createInteraction).",
        "AGENT_CONNECTED": "An agent joined it.",
        "AGENT_DISCONNECTED": "An agent left it.",
        "ENDED": "It is over.",
        "MONITORING_STARTED": "A supervisor started monitoring it "
        "(shown only to viewers who may see monitoring).",
        "MONITORING_ENDED": "A monitoring session on it ended "
        "(shown only to viewers who may see monitoring).",
        "MONITORING_MODE_CHANGED": "A monitoring session on it changed mode "
        "(shown only to viewers who may see monitoring).",
    },
)
