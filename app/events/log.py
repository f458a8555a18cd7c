"""Appending to the event log, inside the transaction of the change it records.

The cursor follows commit order. Positions come from a one-row counter, incremented with an
UPDATE whose row lock is held until the transaction commits: a second appender waits on that
lock and takes the next position only after the first has committed. So when a reader sees
position N, every position below N is already committed (or was never handed out), and
reading `position > last seen` can never skip an event that commits later. (An identity
column would not do this: a transaction that took 7 may commit after one that took 8.)
On SQLite, BEGIN IMMEDIATE serializes writers anyway.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import EventCounter, MonitoringEvent, MonitoringSession
from app.models.enums import MonitoringEventKind

NOTIFY_CHANNEL = "binocular_events"
# On a session that appended events, what it appended (kind, end reason): once the
# transaction has committed, Database.transaction hands the list to its listeners.
RECORDED = "binocular_events_recorded"


async def record_event(
    session: AsyncSession,
    kind: MonitoringEventKind,
    monitoring: MonitoringSession,
    queue_id: int,
    occurred_at: datetime,
) -> int:
    """Append one event; call it last in the transaction, to hold the counter lock briefly."""
    position = (
        await session.exec(
            sa.update(EventCounter)
            .where(EventCounter.id == 1)
            .values(position=EventCounter.position + 1)
            .returning(EventCounter.position)
        )
    ).scalar_one()
    session.add(
        MonitoringEvent(
            position=position,
            kind=kind,
            occurred_at=occurred_at,
            session_id=monitoring.id,
            interaction_id=monitoring.interaction_id,
            queue_id=queue_id,
            monitor_id=monitoring.monitor_id,
        )
    )
    if session.bind.dialect.name == "postgresql":
        # Delivered to listeners only when (and if) this transaction commits.
        await session.exec(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(position))))
    session.info.setdefault(RECORDED, []).append((kind, monitoring.end_reason))
    return position
