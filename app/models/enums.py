"""The vocabulary shared by tables, rules and the API."""

from enum import Enum


class MediaType(str, Enum):
    VOICE = "VOICE"
    SMS = "SMS"
    CHAT = "CHAT"
    EMAIL = "EMAIL"
    CALLBACK = "CALLBACK"


class Direction(str, Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class InteractionState(str, Enum):
    WAITING = "WAITING"
    CONNECTED = "CONNECTED"
    ENDED = "ENDED"


class Role(str, Enum):
    AGENT = "AGENT"
    SUPERVISOR = "SUPERVISOR"
    ADMIN = "ADMIN"
    INTEGRATION = "INTEGRATION"


class Presence(str, Enum):
    ON_QUEUE = "ON_QUEUE"
    AVAILABLE = "AVAILABLE"
    BUSY = "BUSY"
    AWAY = "AWAY"
    OFFLINE = "OFFLINE"


class ParticipantPurpose(str, Enum):
    CUSTOMER = "CUSTOMER"
    AGENT = "AGENT"
    MONITOR = "MONITOR"


class ParticipantState(str, Enum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class MonitoringState(str, Enum):
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"


class MonitoringEndReason(str, Enum):
    STOPPED = "STOPPED"
    INTERACTION_ENDED = "INTERACTION_ENDED"
    AGENT_DISCONNECTED = "AGENT_DISCONNECTED"
    TAKEN_OVER = "TAKEN_OVER"


class MonitoringMode(str, Enum):
    """How a supervisor takes part in a monitored interaction."""

    MONITOR = "MONITOR"
    COACH = "COACH"
    BARGE = "BARGE"


class MonitoringPermission(str, Enum):
    """What a user may do when monitoring."""

    MONITOR = "MONITOR"
    COACH = "COACH"
    BARGE = "BARGE"
    TAKE_OVER = "TAKE_OVER"


MONITORABLE_MEDIA = frozenset({MediaType.VOICE, MediaType.SMS, MediaType.CHAT})
ALL_SEEING_ROLES = frozenset({Role.ADMIN, Role.INTEGRATION})
MONITORING_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


class MonitoringEventKind(str, Enum):
    STARTED = "STARTED"
    ENDED = "ENDED"
    MODE_CHANGED = "MODE_CHANGED"


class EventKind(str, Enum):
    """What an entry of the event log records."""

    INTERACTION_CREATED = "INTERACTION_CREATED"
    AGENT_CONNECTED = "AGENT_CONNECTED"
    AGENT_DISCONNECTED = "AGENT_DISCONNECTED"
    INTERACTION_ENDED = "INTERACTION_ENDED"
    MONITORING_STARTED = "MONITORING_STARTED"
    MONITORING_ENDED = "MONITORING_ENDED"
    MONITORING_MODE_CHANGED = "MONITORING_MODE_CHANGED"
    PRESENCE_CHANGED = "PRESENCE_CHANGED"
    # A directory load changed divisions, users, queues or members: no subscription delivers
    # it; live views start over from it (their snapshots read the directory as it is now).
    DIRECTORY_CHANGED = "DIRECTORY_CHANGED"


class InteractionEventKind(str, Enum):
    CREATED = "CREATED"
    AGENT_CONNECTED = "AGENT_CONNECTED"
    AGENT_DISCONNECTED = "AGENT_DISCONNECTED"
    ENDED = "ENDED"
    MONITORING_STARTED = "MONITORING_STARTED"
    MONITORING_ENDED = "MONITORING_ENDED"
    MONITORING_MODE_CHANGED = "MONITORING_MODE_CHANGED"


# What each feed calls the log's events.
INTERACTION_EVENTS = {
    EventKind.INTERACTION_CREATED: InteractionEventKind.CREATED,
    EventKind.AGENT_CONNECTED: InteractionEventKind.AGENT_CONNECTED,
    EventKind.AGENT_DISCONNECTED: InteractionEventKind.AGENT_DISCONNECTED,
    EventKind.INTERACTION_ENDED: InteractionEventKind.ENDED,
    EventKind.MONITORING_STARTED: InteractionEventKind.MONITORING_STARTED,
    EventKind.MONITORING_ENDED: InteractionEventKind.MONITORING_ENDED,
    EventKind.MONITORING_MODE_CHANGED: InteractionEventKind.MONITORING_MODE_CHANGED,
}
MONITORING_EVENTS = {
    EventKind.MONITORING_STARTED: MonitoringEventKind.STARTED,
    EventKind.MONITORING_ENDED: MonitoringEventKind.ENDED,
    EventKind.MONITORING_MODE_CHANGED: MonitoringEventKind.MODE_CHANGED,
}
