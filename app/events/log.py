"""Appending to the event log, inside the transaction of the change it records.

A write records its events as it goes (`record`); `append_recorded` writes them all in one
statement just before the transaction commits (Database.transaction calls it), so that the
counter below is locked for that statement and the commit only.

The cursor follows commit order. Positions come from a one-row counter, incremented with an
UPDATE whose row lock is held until the transaction commits: a second appender waits on that
lock and takes the next positions only after the first has committed. So when a reader sees
position N, every position below N is already committed, and reading `position > last seen`
can never skip an event that commits later. (An identity column would not do this: a
transaction that took 7 may commit after one that took 8.) Positions have no gaps: a
transaction that rolls back gives its increment back. On SQLite, BEGIN IMMEDIATE serializes
writers anyway.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import EventCounter, EventLogEntry
from app.models.columns import utcnow
from app.models.enums import EventKind, MonitoringEndReason, Presence

NOTIFY_CHANNEL = "binocular_events"
# On a session that recorded events: those not yet appended, then, once appended, those the
# transaction will commit (Database.transaction hands them to its listeners after commit).
_PENDING = "binocular_events_pending"
RECORDED = "binocular_events_recorded"


@dataclass(frozen=True)
class Recorded:
    """One event of the transaction, as it will be appended."""

    kind: EventKind
    occurred_at: datetime
    interaction_id: int | None = None
    queue_id: int | None = None
    session_id: int | None = None
    user_id: int | None = None
    presence: Presence | None = None
    # Not stored (the session row has it): for the metrics of ended sessions.
    end_reason: MonitoringEndReason | None = None


def presence_changed(user_id: int, presence: Presence) -> Recorded:
    return Recorded(EventKind.PRESENCE_CHANGED, utcnow(), user_id=user_id, presence=presence)


def record(session: AsyncSession, event: Recorded) -> None:
    """Record an event of this transaction; it is appended when the transaction commits."""
    session.info.setdefault(_PENDING, []).append(event)


_COLUMNS = ("kind", "occurred_at", "interaction_id", "queue_id", "session_id", "user_id")

# PostgreSQL: one statement takes the positions, appends and notifies (NOTIFY reaches
# listeners only when, and if, the transaction commits). Arrays, so that the statement is
# the same text, prepared once per connection, however many events a transaction appends.
_APPEND_POSTGRESQL = sa.text(
    """
    WITH taken AS (
        UPDATE event_counter SET position = position + cardinality(CAST(:kind AS varchar[]))
        WHERE id = 1 RETURNING position - cardinality(CAST(:kind AS varchar[])) AS before
    ), appended AS (
        INSERT INTO event_log
            (position, kind, occurred_at, interaction_id, queue_id, session_id, user_id,
             presence)
        SELECT taken.before + e.n, e.kind, e.occurred_at, e.interaction_id, e.queue_id,
               e.session_id, e.user_id, e.presence
        FROM taken, unnest(
            CAST(:kind AS varchar[]), CAST(:occurred_at AS timestamptz[]),
            CAST(:interaction_id AS integer[]), CAST(:queue_id AS integer[]),
            CAST(:session_id AS integer[]), CAST(:user_id AS integer[]),
            CAST(:presence AS varchar[])
        ) WITH ORDINALITY AS e(kind, occurred_at, interaction_id, queue_id, session_id,
                               user_id, presence, n)
        RETURNING position
    )
    SELECT max(position), pg_notify(:channel, CAST(max(position) AS text)) FROM appended
    """
)


async def append_recorded(session: AsyncSession) -> int | None:
    """Append what the transaction recorded; call it last, just before commit. Returns the
    last position taken, if any."""
    pending: list[Recorded] = session.info.pop(_PENDING, None)
    if not pending:
        return None
    if session.bind.dialect.name == "postgresql":
        columns = {name: [getattr(e, name) for e in pending] for name in _COLUMNS}
        columns["kind"] = [kind.value for kind in columns["kind"]]
        columns["presence"] = [e.presence.value if e.presence else None for e in pending]
        appended = await session.exec(
            _APPEND_POSTGRESQL, params={**columns, "channel": NOTIFY_CHANNEL}
        )
        last = appended.first()[0]
    else:  # SQLite: no data-modifying CTE, and BEGIN IMMEDIATE serializes writers anyway
        last = (
            await session.exec(
                sa.update(EventCounter)
                .where(EventCounter.id == 1)
                .values(position=EventCounter.position + len(pending))
                .returning(EventCounter.position)
            )
        ).scalar_one()
        first = last - len(pending) + 1
        await session.exec(
            sa.insert(EventLogEntry),
            params=[
                {
                    "position": first + n,
                    **{name: getattr(e, name) for name in _COLUMNS},
                    "presence": e.presence,
                }
                for n, e in enumerate(pending)
            ],
        )
    session.info.setdefault(RECORDED, []).extend(pending)
    return last
