"""SQLModel tables."""

from sqlmodel import SQLModel

# Deterministic constraint names, the same on SQLite and PostgreSQL, so that migrations
# can name what they change. Set before the tables below are declared.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

from app.models.directory import Division, Queue, QueueMember, User
from app.models.events import EventLogEntry, EventRetention
from app.models.interaction import Interaction, Participant
from app.models.monitoring import MonitoringModeChange, MonitoringSession

metadata = SQLModel.metadata

__all__ = [
    "Division",
    "EventLogEntry",
    "EventRetention",
    "Interaction",
    "MonitoringModeChange",
    "MonitoringSession",
    "Participant",
    "Queue",
    "QueueMember",
    "User",
    "metadata",
]
