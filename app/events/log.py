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
    E = MonitoringEvent.__table__
    take_position = (
        sa.update(EventCounter)
        .where(EventCounter.id == 1)
        .values(position=EventCounter.position + 1)
        .returning(EventCounter.position.label("position"))
    )
    values = {
        "kind": kind,
        "occurred_at": occurred_at,
        "session_id": monitoring.id,
        "interaction_id": monitoring.interaction_id,
        "queue_id": queue_id,
        "monitor_id": monitoring.monitor_id,
    }
    if session.bind.dialect.name == "postgresql":
        # One statement: take the position, append and notify, so that the counter's lock
        # is held for one round trip and the commit. NOTIFY reaches listeners only when
        # (and if) this transaction commits.
        taken = take_position.cte("taken")
        appended = (
            sa.insert(E)
            .from_select(
                ["position", *values],
                sa.select(
                    taken.c.position,
                    *(sa.literal(value, E.c[name].type) for name, value in values.items()),
                ),
            )
            .returning(E.c.position)
            .cte("appended")
        )
        statement = sa.select(
            appended.c.position,
            sa.func.pg_notify(NOTIFY_CHANNEL, sa.cast(appended.c.position, sa.Text)),
        )
        position = (await session.exec(statement)).first()[0]
    else:  # SQLite: no data-modifying CTE, and BEGIN IMMEDIATE serializes writers anyway
        position = (await session.exec(take_position)).scalar_one()
        await session.exec(sa.insert(E).values(position=position, **values))
    session.info.setdefault(RECORDED, []).append((kind, monitoring.end_reason))
    return position
