"""The monitoring event log: what subscribers receive, in commit order."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import MonitoringEventKind


class MonitoringEvent(SQLModel, table=True):
    __tablename__ = "monitoring_event"

    # The cursor. Taken from EventCounter under its row lock, held until commit, so that
    # positions become visible in increasing order (see app/events/log.py).
    position: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    kind: MonitoringEventKind = Field(sa_type=enum_column(MonitoringEventKind))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    session_id: int = Field(foreign_key="monitoring_session.id", index=True)
    interaction_id: int = Field(foreign_key="interaction.id")
    queue_id: int = Field(foreign_key="queue.id")
    monitor_id: int = Field(foreign_key="users.id")


class EventCounter(SQLModel, table=True):
    """One row: the last position handed out."""

    __tablename__ = "event_counter"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    position: int = Field(sa_type=sa.BigInteger)
