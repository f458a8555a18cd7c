"""`binocular audit export` on 10,000, 100,000 and 1,000,000 monitoring sessions: the
export process's max RSS at each size (it must stay flat: the read streams) and its rate.

The data grows in one fresh database, written straight into its tables after `binocular
migrate`: a directory (500 agents, 50 supervisors, 20 queues), then for each session its
interaction, its MONITOR participant, the session and its mode changes (the starting mode,
then up to two switches, as the media type allows: 1.8 per session). One session in 100 is
still active; the others ended, for every end reason. SQLite: a new file in a temporary
directory (executemany, one transaction per 50,000 sessions). PostgreSQL (`--postgres`):
the database `binocular_bench_audit` (or BENCH_POSTGRES_URL), created afresh, filled with
COPY, dropped at the end.

At each size, `binocular audit export --format csv > /dev/null`, then `--format json`, each
a process of its own whose max RSS is its own: os.wait4 in a small launcher interpreter
(getrusage(RUSAGE_CHILDREN) would give the largest of all the children so far, and a child
of this process would start from this process's high-water mark). The rate is sessions
over the wall time of the whole process, its start included (and without it: less the time
of a run with no session in its window, `--until 2000-01-01`, which also gives the RSS
floor, the interpreter and its imports). The first size's exports are read back and
checked: every session once, oldest first, in both formats.

    python bench/audit_export.py [--sizes 10000,100000,1000000] [--postgres] [--no-sqlite]
                                 [--quick]
"""

import argparse
import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common

POSTGRES = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/binocular_bench_audit"
)
AGENTS, SUPERVISORS, QUEUES = 500, 50, 20
CHUNK = 50_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Media type, and the modes a session goes through on it (the first is its starting mode).
MEDIA = [("VOICE", ("MONITOR", "COACH", "BARGE"))] * 6 + [("CHAT", ("MONITOR", "BARGE"))] * 3
MEDIA += [("SMS", ("MONITOR",))]
END_REASONS = {
    "VOICE": ("STOPPED", "INTERACTION_ENDED", "AGENT_DISCONNECTED"),
    "CHAT": ("STOPPED", "INTERACTION_ENDED", "TAKEN_OVER"),
    "SMS": ("STOPPED", "TAKEN_OVER", "INTERACTION_ENDED"),
}
TABLES = {
    "interaction": (
        "id",
        "external_id",
        "media_type",
        "direction",
        "state",
        "queue_id",
        "started_at",
        "ended_at",
        "version",
    ),
    "participant": (
        "id",
        "interaction_id",
        "purpose",
        "state",
        "user_id",
        "name",
        "connected_at",
        "disconnected_at",
    ),
    "monitoring_session": (
        "id",
        "interaction_id",
        "media_type",
        "monitor_id",
        "agent_id",
        "monitor_participant_id",
        "state",
        "started_at",
        "ended_at",
        "end_reason",
        "mode",
        "disclosed_at",
    ),
    "monitoring_mode_change": ("id", "session_id", "mode", "at"),
}


# --- the data ---------------------------------------------------------------------------------


def directory() -> dict[str, list[tuple]]:
    users = [
        (n + 1, f"agent{n:04d}", f"Agent {n:04d}", 1, '["AGENT"]', "ON_QUEUE")
        for n in range(AGENTS)
    ]
    users += [
        (AGENTS + n + 1, f"sup{n:03d}", f"Supervisor {n:03d}", 1, '["SUPERVISOR"]', "OFFLINE")
        for n in range(SUPERVISORS)
    ]
    return {
        "division": [(1, "north", "North")],
        "users": users,
        "queue": [(q + 1, f"queue{q:02d}", f"Queue {q:02d}", 1) for q in range(QUEUES)],
    }


DIRECTORY_COLUMNS = {
    "division": ("id", "key", "name"),
    "users": ("id", "key", "name", "division_id", "roles", "presence"),
    "queue": ("id", "key", "name", "division_id"),
}


class Sessions:
    """Sessions 1, 2, ... in order of start (20 s apart), generated in chunks; each call of
    `rows` continues where the last one stopped."""

    def __init__(self) -> None:
        self.sessions = 0
        self.changes = 0

    def rows(self, count: int) -> dict[str, list[tuple]]:
        tables: dict[str, list[tuple]] = {name: [] for name in TABLES}
        interaction, participant = tables["interaction"], tables["participant"]
        session, change = tables["monitoring_session"], tables["monitoring_mode_change"]
        for n in range(self.sessions + 1, self.sessions + count + 1):
            media, modes = MEDIA[n % len(MEDIA)]
            modes = modes[: 1 + n % 3]  # the starting mode, then 0, 1 or 2 switches
            started = T0 + timedelta(seconds=20 * n, microseconds=n % 997)
            arrived = started - timedelta(seconds=15)
            active = n % 100 == 0
            ended = None if active else started + timedelta(seconds=60 + n % 600)
            reason = None if active else END_REASONS[media][n % 3]
            monitor = AGENTS + 1 + n % SUPERVISORS
            agent = 1 + n % AGENTS
            interaction.append(
                (
                    n,
                    f"bench-audit-{n}",
                    media,
                    "INBOUND",
                    "CONNECTED" if active else "ENDED",
                    1 + n % QUEUES,
                    arrived,
                    None if active or reason == "TAKEN_OVER" else ended,
                    0,
                )
            )
            participant.append(
                (
                    n,
                    n,
                    "MONITOR",
                    "CONNECTED" if active else "DISCONNECTED",
                    monitor,
                    f"Supervisor {monitor - AGENTS - 1:03d}",
                    started,
                    ended,
                )
            )
            at = started
            for i, mode in enumerate(modes):
                if i:
                    at = at + timedelta(seconds=5 + n % 20)
                self.changes += 1
                change.append((self.changes, n, mode, at))
            disclosed = next(
                (c[3] for c in change[-len(modes) :] if c[2] != "MONITOR"),
                ended if reason == "TAKEN_OVER" else None,
            )
            session.append(
                (
                    n,
                    n,
                    media,
                    monitor,
                    agent,
                    n,
                    "ACTIVE" if active else "ENDED",
                    started,
                    ended,
                    reason,
                    modes[-1],
                    disclosed,
                )
            )
        self.sessions += count
        return tables


def _sqlite_value(value):
    # As app.models.columns.UTCDateTime stores it on SQLite: naive UTC text.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class SqliteData:
    def __init__(self, path: Path) -> None:
        import sqlite3

        self.url = f"sqlite:///{path}"
        common_migrate(self.url)
        self.connection = sqlite3.connect(path, isolation_level=None)
        # Seeding only: no journal (a third faster than WAL), the indexes of a million rows in
        # memory while they grow (default: 2 MB). `finish` puts WAL back for the exports.
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("PRAGMA journal_mode=OFF")
        self.connection.execute("PRAGMA cache_size=-1000000")
        self._write(directory(), DIRECTORY_COLUMNS)

    def _write(self, tables: dict[str, list[tuple]], columns: dict) -> None:
        self.connection.execute("BEGIN")
        for table, rows in tables.items():
            converted = ([_sqlite_value(v) for v in row] for row in rows)
            self.connection.executemany(_insert(table, columns[table]), converted)
        self.connection.execute("COMMIT")

    def finish(self) -> None:
        self.connection.execute("ANALYZE")
        self.connection.execute("PRAGMA journal_mode=WAL")

    def add(self, tables: dict[str, list[tuple]]) -> None:
        self.connection.execute("PRAGMA journal_mode=OFF")
        self._write(tables, TABLES)

    def close(self) -> None:
        self.connection.close()


class PostgresData:
    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(_recreate(url))
        common_migrate(url)
        self.connection = self.loop.run_until_complete(_connect(url))
        self.add(directory(), DIRECTORY_COLUMNS)

    def add(self, tables: dict[str, list[tuple]], columns: dict = TABLES) -> None:
        async def copy():
            async with self.connection.transaction():
                for table, rows in tables.items():
                    await self.connection.copy_records_to_table(
                        table, records=rows, columns=columns[table]
                    )

        self.loop.run_until_complete(copy())

    def finish(self) -> None:
        self.loop.run_until_complete(self.connection.execute("ANALYZE"))

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.run_until_complete(_drop(self.url))
        self.loop.close()


def common_migrate(url: str) -> None:
    subprocess.run(
        [common.BINOCULAR, "migrate"],
        env={**os.environ, "BINOCULAR_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )


async def _connect(url: str):
    import asyncpg

    return await asyncpg.connect(url)


def _admin_url(url: str) -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database, parsed.set(database="postgres").render_as_string(hide_password=False)


async def _recreate(url: str) -> None:
    import asyncpg

    name, admin = _admin_url(url)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop(url: str) -> None:
    import asyncpg

    name, admin = _admin_url(url)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


# --- the measure ------------------------------------------------------------------------------


# Started by a small interpreter of its own, which reports the child's rusage: a child forked
# straight from this process (vfork, then exec) keeps this process's high-water RSS as its
# own ru_maxrss, and this one holds the data it generates (up to 170 MB).
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.monotonic()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    json.dump({"seconds": time.monotonic() - started, "status": os.waitstatus_to_exitcode(status),
               "max_rss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, report)
"""


def export(url: str, format: str, *args: str, stdout=subprocess.DEVNULL) -> dict:
    """One `binocular audit export` process: its wall time, max RSS and what it said."""
    with tempfile.TemporaryFile() as stderr, tempfile.NamedTemporaryFile() as report:
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, common.BINOCULAR, "audit", "export"]
            + ["--format", format, *args],
            env={**os.environ, "BINOCULAR_DATABASE_URL": url},
            stdout=stdout,
            stderr=stderr,
            check=True,
        )
        measured = json.loads(Path(report.name).read_text())
        stderr.seek(0)
        said = stderr.read().decode(errors="replace").strip()
    if measured["status"] != 0:
        raise RuntimeError(f"audit export --format {format} exited {measured['status']}: {said}")
    return {
        "seconds": round(measured["seconds"], 2),
        "max_rss_mb": round(measured["max_rss_kb"] / 1024, 1),  # kilobytes on Linux
        "cpu_seconds": round(measured["cpu"], 2),
        "said": said,
    }


def check(url: str, sessions: int) -> None:
    """The exports of the first size, read back: every session once, oldest first."""
    with tempfile.TemporaryFile() as out:
        export(url, "csv", stdout=out)
        out.seek(0)
        rows = list(csv.reader(io.TextIOWrapper(out, encoding="utf-8", newline="")))
    starts = [row[8] for row in rows[1:]]
    assert len(starts) == sessions and len({row[0] for row in rows[1:]}) == sessions, len(starts)
    assert starts == sorted(starts), "not oldest first"
    with tempfile.TemporaryFile() as out:
        export(url, "json", stdout=out)
        out.seek(0)
        records = json.load(out)
    assert [r["startedAt"] for r in records] == starts
    changes = sum(len(r["modes"]) for r in records)
    assert 1.5 * sessions < changes < 2.5 * sessions, changes


def measure(name: str, data, sizes: list[int]) -> dict:
    generator = Sessions()
    floor = {f: export(data.url, f, "--until", "2000-01-01") for f in ("csv", "json")}
    runs = []
    for size in sizes:
        started = time.monotonic()
        while generator.sessions < size:
            data.add(generator.rows(min(CHUNK, size - generator.sessions)))
        data.finish()
        seeded = time.monotonic() - started
        if not runs:
            check(data.url, size)
        run = {
            "sessions": size,
            "mode_changes": generator.changes,
            "seed_seconds": round(seeded, 1),
        }
        for format in ("csv", "json"):
            result = export(data.url, format)
            if f"exported {size} " not in result["said"]:
                raise RuntimeError(f"expected {size} sessions: {result['said']}")
            result["sessions_per_s"] = round(size / result["seconds"])
            # Without the process's start (the interpreter, its imports, the connection).
            beyond = result["seconds"] - floor[format]["seconds"]
            result["sessions_per_s_after_start"] = round(size / beyond) if beyond > 0 else None
            run[format] = result
        runs.append(run)
        print(
            f"  {name} {size:>9,} sessions: max RSS csv {run['csv']['max_rss_mb']} MB, json "
            f"{run['json']['max_rss_mb']} MB; csv {run['csv']['sessions_per_s']:,}/s, json "
            f"{run['json']['sessions_per_s']:,}/s (seeded in {seeded:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return {"floor": floor, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="session counts")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 sessions")
    arguments = parser.parse_args()
    sizes = [1000, 5000] if arguments.quick else [int(s) for s in arguments.sizes.split(",")]
    if sizes != sorted(sizes):
        raise SystemExit("--sizes must grow: the data grows from one size to the next")
    backgrounds = common.background_load()
    results = {}
    if not arguments.no_sqlite:
        with tempfile.TemporaryDirectory() as directory_path:
            data = SqliteData(Path(directory_path) / "audit.db")
            try:
                results["sqlite"] = measure("sqlite", data, sizes)
            finally:
                data.close()
    if arguments.postgres or arguments.no_sqlite:
        data = PostgresData(POSTGRES)
        try:
            results["postgresql"] = measure("postgresql", data, sizes)
        finally:
            data.close()
    for backend, result in results.items():
        runs = result["runs"]
        rss = ", ".join(
            f"{r['sessions']:,}: {r['csv']['max_rss_mb']}/{r['json']['max_rss_mb']} MB"
            for r in runs
        )
        last = runs[-1]
        common.record(
            f"audit_export_{backend}",
            f"max RSS csv/json (floor {result['floor']['csv']['max_rss_mb']}/"
            f"{result['floor']['json']['max_rss_mb']} MB) {rss}; at {last['sessions']:,}: "
            f"csv {last['csv']['sessions_per_s']:,} sessions/s, json "
            f"{last['json']['sessions_per_s']:,}/s",
            {
                **result,
                "quick": arguments.quick,
                "machine_busy_before": backgrounds,
                **common.machine(),
            },
        )


if __name__ == "__main__":
    main()
