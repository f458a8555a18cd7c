"""The event log: every committed change, in commit order, for subscribers to follow."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import EventKind, Presence


class EventLogEntry(SQLModel, table=True):
    """One event. Its place in the log, the cursor, is (`xid`, `position`): see
    app/events/log.py. The ids are references without foreign keys: the log is history,
    pruned from its oldest end (`binocular prune`), and appending must not lock what it
    names."""

    __tablename__ = "event_log"
    __table_args__ = (
        sa.Index("ix_event_log_cursor", "xid", "position"),
        # Positions are never reused, even once pruning has emptied the log.
        {"sqlite_autoincrement": True},
    )

    # Taken at insert: increasing, with gaps (a rolled back transaction's are lost).
    position: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa_column_kwargs={"autoincrement": True},
    )
    # PostgreSQL: the appending transaction's id; SQLite (one writer at a time): 0.
    xid: int = Field(sa_type=sa.BigInteger)
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
    # MONITORING_*: whether the session had been disclosed to the interaction's agents by
    # then (coached, barged or taken over): the silent rule decides its delivery on it.
    disclosed: bool | None = None


class EventRetention(SQLModel, table=True):
    """One row: the cursor of the last event pruned ((0, 0) before any); resuming from a
    cursor before it is refused."""

    __tablename__ = "event_retention"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    xid: int = Field(sa_type=sa.BigInteger)
    position: int = Field(sa_type=sa.BigInteger)
