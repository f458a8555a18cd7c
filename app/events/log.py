"""Appending to the event log, inside the transaction of the change it records.

A write records its events as it goes (`record`); `append_recorded` writes them all in one
statement just before the transaction commits (Database.transaction calls it).

The cursor follows commit order without a lock that writers queue on. An event's place in
the log is (`xid`, `position`): on PostgreSQL the id of the transaction that appended it
(`pg_current_xact_id()`) and an increasing position from a sequence. Readers take only the
events of transactions below the visibility horizon, `pg_snapshot_xmin(pg_current_snapshot())`:
every transaction with a smaller id has committed or rolled back, so no event can appear
later below a cursor a reader has passed (app/events/broker.py). Transaction ids order
writes as the rows they lock do: a transaction gets its id at its first write, and every
writer locks what its events are about first (the interaction, the user), so of two writers
of one interaction the one that waited has the larger id. (One counter row, incremented
under a lock held to commit, gave commit order too, but made every writer of the service
wait for every other: at 200 writes a second, most of them were waiting on it.)

On SQLite, BEGIN IMMEDIATE runs one write transaction at a time: xid is 0 and positions are
in commit order.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import EventLogEntry
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
    # MONITORING_*: whether the session had been disclosed to the interaction's agents.
    disclosed: bool | None = None
    # Not stored (the session row has it): for the metrics of ended sessions.
    end_reason: MonitoringEndReason | None = None


def presence_changed(user_id: int, presence: Presence) -> Recorded:
    return Recorded(EventKind.PRESENCE_CHANGED, utcnow(), user_id=user_id, presence=presence)


def directory_changed() -> Recorded:
    return Recorded(EventKind.DIRECTORY_CHANGED, utcnow())


def record(session: AsyncSession, event: Recorded) -> None:
    """Record an event of this transaction; it is appended when the transaction commits."""
    session.info.setdefault(_PENDING, []).append(event)


_COLUMNS = (
    "kind",
    "occurred_at",
    "interaction_id",
    "queue_id",
    "session_id",
    "user_id",
    "disclosed",
)

# PostgreSQL: one statement appends and notifies (NOTIFY reaches listeners only when, and if,
# the transaction commits). Arrays, so that the statement is the same text, prepared once
# per connection, however many events a transaction appends.
_APPEND_POSTGRESQL = sa.text(
    """
    WITH appended AS (
        INSERT INTO event_log
            (xid, kind, occurred_at, interaction_id, queue_id, session_id, user_id, disclosed,
             presence)
        SELECT CAST(CAST(pg_current_xact_id() AS text) AS bigint), e.kind, e.occurred_at,
               e.interaction_id, e.queue_id, e.session_id, e.user_id, e.disclosed, e.presence
        FROM unnest(
            CAST(:kind AS varchar[]), CAST(:occurred_at AS timestamptz[]),
            CAST(:interaction_id AS integer[]), CAST(:queue_id AS integer[]),
            CAST(:session_id AS integer[]), CAST(:user_id AS integer[]),
            CAST(:disclosed AS boolean[]), CAST(:presence AS varchar[])
        ) WITH ORDINALITY AS e(kind, occurred_at, interaction_id, queue_id, session_id,
                               user_id, disclosed, presence, n)
        ORDER BY e.n
        RETURNING xid, position
    )
    SELECT max(xid), max(position), pg_notify(:channel, '') FROM appended
    """
)


async def append_recorded(session: AsyncSession) -> tuple[int, int] | None:
    """Append what the transaction recorded; call it last, just before commit. Returns the
    cursor of the last event appended, if any."""
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
        xid, last, _ = appended.first()
    else:  # SQLite: one writer at a time, so positions are taken in commit order
        xid = 0
        for event in pending:
            inserted = await session.exec(
                sa.insert(EventLogEntry).values(
                    xid=0,
                    presence=event.presence,
                    **{name: getattr(event, name) for name in _COLUMNS},
                )
            )
            last = inserted.inserted_primary_key[0]
    session.info.setdefault(RECORDED, []).extend(pending)
    return xid, last
