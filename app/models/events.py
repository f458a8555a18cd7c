"""The event log: every committed change, in commit order, for subscribers to follow."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import EventKind, Presence


class EventLogEntry(SQLModel, table=True):
    """One event. The ids are references without foreign keys: the log is history, pruned
    from its oldest end (`binocular prune`), and appending must not lock what it names."""

    __tablename__ = "event_log"

    # The cursor. Taken from EventCounter under its row lock, held until commit, so that
    # positions become visible in increasing order and without gaps (see app/events/log.py).
    position: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    kind: EventKind = Field(sa_type=enum_column(EventKind))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    # The interaction and its queue (interaction and monitoring events).
    interaction_id: int | None = None
    queue_id: int | None = None
    # MONITORING_*: the session.
    session_id: int | None = None
    # AGENT_*: the agent; PRESENCE_CHANGED: the user.
    user_id: int | None = None
    # PRESENCE_CHANGED: the presence set.
    presence: Presence | None = Field(default=None, sa_type=enum_column(Presence))


class EventCounter(SQLModel, table=True):
    """One row: the last position handed out."""

    __tablename__ = "event_counter"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    position: int = Field(sa_type=sa.BigInteger)
