"""Monitoring sessions: who monitors which agent on which interaction."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import MediaType, MonitoringEndReason, MonitoringMode, MonitoringState


class MonitoringSession(SQLModel, table=True):
    __tablename__ = "monitoring_session"
    __table_args__ = (
        sa.Index("ix_monitoring_session_interaction", "interaction_id", "started_at", "id"),
        sa.Index("ix_monitoring_session_monitor_state", "monitor_id", "state"),
        # The audit trail (monitoringSessions, `binocular audit export`): by start, then id.
        sa.Index("ix_monitoring_session_started", "started_at", "id"),
        # The limits, held by the database under any concurrency:
        # at most one ACTIVE session per interaction ...
        sa.Index(
            "uq_monitoring_session_active",
            "interaction_id",
            unique=True,
            sqlite_where=sa.text("state = 'ACTIVE'"),
            postgresql_where=sa.text("state = 'ACTIVE'"),
        ),
        # ... and at most one session ever on an SMS interaction.
        sa.Index(
            "uq_monitoring_session_sms_once",
            "interaction_id",
            unique=True,
            sqlite_where=sa.text("media_type = 'SMS'"),
            postgresql_where=sa.text("media_type = 'SMS'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id")
    # The interaction's media type, copied so that the SMS index can name it.
    media_type: MediaType = Field(sa_type=enum_column(MediaType))
    monitor_id: int = Field(foreign_key="users.id")
    agent_id: int = Field(foreign_key="users.id")
    monitor_participant_id: int = Field(foreign_key="participant.id")
    state: MonitoringState = Field(sa_type=enum_column(MonitoringState))
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: MonitoringEndReason | None = Field(
        default=None, sa_type=enum_column(MonitoringEndReason)
    )
    mode: MonitoringMode = Field(
        default=MonitoringMode.MONITOR,
        sa_type=enum_column(MonitoringMode),
        sa_column_kwargs={"server_default": MonitoringMode.MONITOR.value},
    )
    # When the interaction's agents learnt of the session: its first COACH or BARGE, or its
    # take over. Null while it has only ever been silent (the visibility policy's silent rule).
    disclosed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MonitoringModeChange(SQLModel, table=True):
    """A session's audit trail: every mode it has been in, the starting one included."""

    __tablename__ = "monitoring_mode_change"
    __table_args__ = (sa.Index("ix_monitoring_mode_change_session", "session_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="monitoring_session.id")
    mode: MonitoringMode = Field(sa_type=enum_column(MonitoringMode))
    at: datetime = Field(sa_type=UTCDateTime)
