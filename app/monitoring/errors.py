"""Business errors: what a rule refused, in words a supervisor understands."""

from dataclasses import dataclass
from enum import Enum


class MonitoringErrorCode(str, Enum):
    NOT_FOUND = "NOT_FOUND"
    INTERACTION_ENDED = "INTERACTION_ENDED"
    NO_AGENT = "NO_AGENT"
    AGENT_REQUIRED = "AGENT_REQUIRED"
    AGENT_NOT_ON_INTERACTION = "AGENT_NOT_ON_INTERACTION"
    ALREADY_MONITORED = "ALREADY_MONITORED"
    MONITORED_ONCE = "MONITORED_ONCE"
    DIVISION_MISMATCH = "DIVISION_MISMATCH"
    NOT_PERMITTED = "NOT_PERMITTED"
    MEDIA_NOT_MONITORABLE = "MEDIA_NOT_MONITORABLE"
    SELF_MONITORING = "SELF_MONITORING"
    NOT_SESSION_OWNER = "NOT_SESSION_OWNER"
    MODE_NOT_AVAILABLE = "MODE_NOT_AVAILABLE"
    MODE_NOT_PERMITTED = "MODE_NOT_PERMITTED"
    SESSION_ENDED = "SESSION_ENDED"


@dataclass
class MonitoringError(Exception):
    code: MonitoringErrorCode
    message: str
    field: tuple[str, ...] | None = None
    current_monitor_id: int | None = None

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


@dataclass
class IntegrationError(Exception):
    """An integration call that names nothing, or that the interaction's state refuses."""

    message: str
    field: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return self.message
