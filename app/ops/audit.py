"""The monitoring audit for an operator: `binocular audit export`.

One record per monitoring session, oldest first (by start, then id: an export of a later
window appends to an earlier one): the session, its interaction (global id, external id,
media type), the queue, the supervisor and the agent (their keys), every mode the session
was in with the time it entered it (oldest first), its start, end, end reason and state.
The ids are the API's opaque global ids; times are ISO 8601 UTC with microseconds
(`2026-12-01T15:27:37.123456Z`).

- CSV: a header row, then one row per session. The modes are one column,
  `MODE@TIME` entries separated by `;` (`MONITOR@2026-12-01T15:27:37.123456Z;COACH@...`);
  an active session's endedAt and endReason are empty.
- JSON: one array, written as it goes: `[`, one object per line (the lines separated by
  commas), `]`. The modes are a list of `{"mode", "at"}`; an active session's endedAt and
  endReason are null.

The read streams: one statement reads the sessions through a server-side cursor (asyncpg's
portal, SQLite's stepping cursor) in partitions of `PARTITION` sessions; for each partition
one more statement reads their mode changes, and the partition is written and flushed before
the next is read. Memory holds one partition, whatever the number of sessions. The whole
export is one read-only transaction (REPEATABLE READ on PostgreSQL, one WAL snapshot on
SQLite), so sessions and their modes are those of one moment, however long it runs.
"""

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import BinaryIO

import orjson
import sqlalchemy as sa

from app.db import Database
from app.graphql.ids import encode_id
from app.models import Interaction, MonitoringModeChange, MonitoringSession, Queue, User

PARTITION = 1000

FIELDS = (
    "session",
    "interaction",
    "externalId",
    "mediaType",
    "queue",
    "supervisor",
    "agent",
    "modes",
    "startedAt",
    "endedAt",
    "endReason",
    "state",
)


class Format(str, Enum):
    CSV = "csv"
    JSON = "json"


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date and time; without an offset, UTC. ValueError else."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_S = MonitoringSession.__table__
_I = Interaction.__table__
_Q = Queue.__table__
_C = MonitoringModeChange.__table__
_MONITOR = User.__table__.alias("monitor")
_AGENT = User.__table__.alias("agent")


def _name(column) -> sa.ColumnElement:
    """An enum column as the text it stores: no Enum object to build and turn back."""
    return sa.type_coerce(column, sa.String)


class _IsoTime(sa.types.TypeDecorator):
    """A UTCDateTime column read as the export writes it, `2026-12-01T15:27:37.123456Z`:
    one conversion per value, where the model's type and a formatting would be two."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is not None:  # PostgreSQL: timestamptz; SQLite: naive UTC already
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds") + "Z"


def _iso(column) -> sa.ColumnElement:
    return sa.type_coerce(column, _IsoTime())


def sessions_statement(since: datetime | None = None, until: datetime | None = None):
    """The sessions started in [since, until), oldest first, with what each record names."""
    statement = (
        sa.select(
            _S.c.id,
            _S.c.interaction_id,
            _I.c.external_id,
            _name(_I.c.media_type).label("media_type"),
            _Q.c.key.label("queue"),
            _MONITOR.c.key.label("supervisor"),
            _AGENT.c.key.label("agent"),
            _iso(_S.c.started_at).label("started_at"),
            _iso(_S.c.ended_at).label("ended_at"),
            _name(_S.c.end_reason).label("end_reason"),
            _name(_S.c.state).label("state"),
        )
        .select_from(_S)
        .join(_I, _I.c.id == _S.c.interaction_id)
        .join(_Q, _Q.c.id == _I.c.queue_id)
        .join(_MONITOR, _MONITOR.c.id == _S.c.monitor_id)
        .join(_AGENT, _AGENT.c.id == _S.c.agent_id)
        .order_by(_S.c.started_at, _S.c.id)
    )
    if since is not None:
        statement = statement.where(_S.c.started_at >= since)
    if until is not None:
        statement = statement.where(_S.c.started_at < until)
    return statement


# The mode changes of one partition's sessions, each session's oldest first.
MODES_STATEMENT = (
    sa.select(_C.c.session_id, _name(_C.c.mode).label("mode"), _iso(_C.c.at).label("at"))
    .where(_C.c.session_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_C.c.session_id, _C.c.at, _C.c.id)
)


def _records(rows: Sequence[sa.Row], modes: dict[int, list]):
    """Each session's values in FIELDS' order; `modes` as (mode, at) pairs."""
    for (
        pk,
        interaction,
        external_id,
        media_type,
        queue,
        supervisor,
        agent,
        started_at,
        ended_at,
        end_reason,
        state,
    ) in rows:
        yield (
            encode_id("MonitoringSession", pk),
            encode_id("Interaction", interaction),
            external_id,
            media_type,
            queue,
            supervisor,
            agent,
            modes.get(pk, ()),
            started_at,
            ended_at,
            end_reason,
            state,
        )


def _csv_row(values: tuple) -> tuple:
    """A record as a CSV row: the modes in one column, blanks for what is not there yet."""
    names, (modes, started_at, ended_at, end_reason, state) = values[:7], values[7:]
    return (
        *names,
        ";".join(f"{mode}@{at}" for mode, at in modes),
        started_at,
        ended_at or "",
        end_reason or "",
        state,
    )


class _Csv:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")

    def _flush(self) -> None:
        self._out.write(self._text.getvalue().encode())
        self._out.flush()
        self._text.seek(0)
        self._text.truncate()

    def begin(self) -> None:
        self._csv.writerow(FIELDS)
        self._flush()

    def write(self, rows: Sequence[sa.Row], modes: dict[int, list]) -> None:
        self._csv.writerows(_csv_row(values) for values in _records(rows, modes))
        self._flush()

    def end(self) -> None:
        pass


class _Json:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._separator = b"\n"
        self._bytes = io.BytesIO()

    def begin(self) -> None:
        self._out.write(b"[")
        self._out.flush()

    def write(self, rows: Sequence[sa.Row], modes: dict[int, list]) -> None:
        # Each object into one buffer as soon as it is encoded: orjson gives every one 4 KB
        # (a partition's list of them would be 4 MB for 0.4 MB of text).
        buffer = self._bytes
        for values in _records(rows, modes):
            record = dict(zip(FIELDS, values, strict=True))
            record["modes"] = [{"mode": mode, "at": at} for mode, at in record["modes"]]
            buffer.write(self._separator)
            buffer.write(orjson.dumps(record))
            self._separator = b",\n"
        self._out.write(buffer.getvalue())
        self._out.flush()
        buffer.seek(0)
        buffer.truncate()

    def end(self) -> None:
        self._out.write(b"\n]\n")
        self._out.flush()


async def export(
    db: Database,
    out: BinaryIO,
    format: Format = Format.CSV,
    since: datetime | None = None,
    until: datetime | None = None,
    partition: int = PARTITION,
) -> int:
    """Write the records of the sessions started in [since, until) to `out`; returns how
    many. Nothing is written if the first statement fails (a database not migrated)."""
    writer = _Csv(out) if format == Format.CSV else _Json(out)
    count = 0
    async with db.snapshot() as connection:
        result = await connection.stream(
            sessions_statement(since, until), execution_options={"yield_per": partition}
        )
        writer.begin()
        async for rows in result.partitions():
            changes = await connection.execute(MODES_STATEMENT, {"ids": [row.id for row in rows]})
            modes: dict[int, list] = defaultdict(list)
            for session_id, mode, at in changes:
                modes[session_id].append((mode, at))
            writer.write(rows, modes)
            count += len(rows)
        writer.end()
    return count
