"""Interactions reported by the telephony platform, and who takes part in them."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import (
    Direction,
    InteractionState,
    MediaType,
    ParticipantPurpose,
    ParticipantState,
)


class Interaction(SQLModel, table=True):
    __table_args__ = (
        # Queue activity: a queue's in-progress interactions, oldest first.
        sa.Index("ix_interaction_queue_state_started", "queue_id", "state", "started_at", "id"),
        # The interactions list: newest first, keyset-paginated.
        sa.Index("ix_interaction_started", "started_at", "id"),
        # Retention: ended interactions, oldest first.
        sa.Index("ix_interaction_ended", "ended_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    media_type: MediaType = Field(sa_type=enum_column(MediaType))
    direction: Direction = Field(sa_type=enum_column(Direction))
    state: InteractionState = Field(sa_type=enum_column(InteractionState))
    queue_id: int = Field(foreign_key="queue.id")
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bumped by every change to the interaction or its monitoring: concurrent writers
    # compare-and-set it to learn whether what they read still holds.
    version: int = Field(default=0)


class Participant(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_participant_interaction", "interaction_id", "connected_at", "id"),
        sa.Index("ix_participant_user_state", "user_id", "state"),
        # An agent is connected at most once to an interaction at a time.
        sa.Index(
            "uq_participant_connected_agent",
            "interaction_id",
            "user_id",
            unique=True,
            sqlite_where=sa.text("purpose = 'AGENT' AND state = 'CONNECTED'"),
            postgresql_where=sa.text("purpose = 'AGENT' AND state = 'CONNECTED'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: int = Field(foreign_key="interaction.id")
    purpose: ParticipantPurpose = Field(sa_type=enum_column(ParticipantPurpose))
    state: ParticipantState = Field(sa_type=enum_column(ParticipantState))
    user_id: int | None = Field(default=None, foreign_key="users.id")
    name: str = Field(max_length=200)
    connected_at: datetime = Field(sa_type=UTCDateTime)
    disconnected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
