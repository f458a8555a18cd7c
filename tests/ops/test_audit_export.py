"""`binocular audit export`, run as the operator runs it (the console script, a subprocess),
on both databases: the records are the API's (`monitoringSessions`), oldest first, in CSV and
in JSON; --since and --until bound them; bad input is refused cleanly; and the read streams,
partition by partition, in memory that does not grow with the number of sessions."""

import csv
import io
import json
import os
import subprocess
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.models import (
    Interaction,
    MonitoringModeChange,
    MonitoringSession,
    Participant,
    Queue,
    User,
)
from app.ops.audit import FIELDS, Format, export, parse_time
from tests.test_cli import BINOCULAR, binocular

AUDIT = """{ monitoringSessions(first: 100) { nodes {
  id state startedAt endedAt endReason modeHistory { mode at }
  interaction { id mediaType queue { key } }
  monitor { key } agent { key } } } }"""


def run(url: str, *args: str, cwd):
    return binocular("audit", "export", *args, cwd=cwd, env={"BINOCULAR_DATABASE_URL": url})


def time_of(text: str | None) -> datetime | None:
    if not text:
        return None
    assert text.endswith("Z"), f"{text!r} is not in UTC"
    return datetime.fromisoformat(text)


def api_record(node: dict, external_ids: dict[str, str]) -> dict:
    """A session of the API as the export gives it, times parsed (the API has no external
    id: the integration's own, as it created the interaction)."""
    return {
        "session": node["id"],
        "interaction": node["interaction"]["id"],
        "externalId": external_ids[node["interaction"]["id"]],
        "mediaType": node["interaction"]["mediaType"],
        "queue": node["interaction"]["queue"]["key"],
        "supervisor": node["monitor"]["key"],
        "agent": node["agent"]["key"],
        "modes": [(m["mode"], datetime.fromisoformat(m["at"])) for m in node["modeHistory"]],
        "startedAt": datetime.fromisoformat(node["startedAt"]),
        "endedAt": datetime.fromisoformat(node["endedAt"]) if node["endedAt"] else None,
        "endReason": node["endReason"],
        "state": node["state"],
    }


def csv_records(text: str) -> list[dict]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and tuple(rows[0]) == FIELDS, rows[:1]
    records = []
    for row in rows[1:]:
        record = dict(zip(FIELDS, row, strict=True))
        modes = [entry.split("@", 1) for entry in record["modes"].split(";")]
        record["modes"] = [(mode, time_of(at)) for mode, at in modes]
        record["startedAt"] = time_of(record["startedAt"])
        record["endedAt"] = time_of(record["endedAt"])
        record["endReason"] = record["endReason"] or None
        records.append(record)
    return records


def json_records(text: str) -> list[dict]:
    document = json.loads(text)
    # As written: `[`, one object per line, `]`.
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == len(document) + 2
    assert all(line.endswith(",") for line in lines[1:-2])
    records = []
    for record in document:
        assert list(record) == list(FIELDS)
        record["modes"] = [(m["mode"], time_of(m["at"])) for m in record["modes"]]
        record["startedAt"] = time_of(record["startedAt"])
        record["endedAt"] = time_of(record["endedAt"])
        records.append(record)
    return records


async def floor(api) -> list[dict]:
    """Four sessions, one after the other: coached then barged then stopped; taken over (a
    chat); started in COACH, ended with its interaction; and one still active. Returns them
    as the API gives them, oldest first."""
    external = {}

    async def create(external_id: str, **kwargs) -> str:
        external[interaction := await api.create(external_id=external_id, **kwargs)] = external_id
        return interaction

    coached = await create('call,with "quotes"\nand a newline')
    await api.connect(coached, "bob")
    session = (await api.start("ann", coached))["session"]["id"]
    assert (await api.change_mode("ann", session, "COACH"))["errors"] == []
    assert (await api.change_mode("ann", session, "BARGE"))["errors"] == []
    assert (await api.stop("ann", session))["errors"] == []

    chat = await create("chat", media="CHAT", queue="support")
    await api.connect(chat, "eli")
    session = (await api.start("root", chat))["session"]["id"]
    assert (await api.take_over("root", session))["errors"] == []

    ended = await create("ended-call")
    await api.connect(ended, "dina")
    assert (await api.start("carl", ended, mode="COACH"))["errors"] == []
    assert (await api.end(ended))["errors"] == []

    active = await create("active-call")
    await api.connect(active, "bob")
    assert (await api.start("carl", active))["errors"] == []

    nodes = (await api.data(AUDIT, user="pbx"))["monitoringSessions"]["nodes"]
    return [api_record(node, external) for node in reversed(nodes)]


async def test_csv_holds_every_session_as_the_api_gives_it(api, database_url, tmp_path):
    sessions = await floor(api)
    # What the floor was meant to hold, so that the comparison below compares something.
    assert [s["endReason"] for s in sessions] == [
        "STOPPED",
        "TAKEN_OVER",
        "INTERACTION_ENDED",
        None,
    ]
    assert [[mode for mode, _ in s["modes"]] for s in sessions] == [
        ["MONITOR", "COACH", "BARGE"],
        ["MONITOR"],
        ["COACH"],
        ["MONITOR"],
    ]
    assert sessions[3]["state"] == "ACTIVE" and sessions[3]["endedAt"] is None
    assert sessions[1]["mediaType"] == "CHAT" and sessions[1]["queue"] == "support"

    result = run(database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert csv_records(result.stdout) == sessions
    assert "exported 4 monitoring sessions" in result.stderr
    # The modes column as documented.
    first = list(csv.reader(io.StringIO(result.stdout)))[1]
    assert first[FIELDS.index("modes")].count(";") == 2
    assert first[FIELDS.index("modes")].startswith("MONITOR@20")


async def test_json_holds_the_same_records(api, database_url, tmp_path):
    sessions = await floor(api)

    result = run(database_url, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json_records(result.stdout) == sessions
    active = json.loads(result.stdout)[3]
    assert active["endedAt"] is None and active["endReason"] is None
    assert active["modes"][0].keys() == {"mode", "at"}


async def test_since_is_inclusive_and_until_exclusive(api, database_url, tmp_path):
    sessions = await floor(api)
    ids = [s["session"] for s in sessions]
    second, fourth = sessions[1]["startedAt"], sessions[3]["startedAt"]

    def exported(*args: str, format: str = "json") -> list[str]:
        result = run(database_url, "--format", format, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        if format == "csv":
            return [record["session"] for record in csv_records(result.stdout)]
        return [record["session"] for record in json.loads(result.stdout)]

    # At the second session's start exactly, naive (UTC): it is in.
    assert exported("--since", second.replace(tzinfo=None).isoformat()) == ids[1:]
    # At the fourth's exactly, in another offset: it is out.
    east = (fourth + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"
    assert exported("--until", east, format="csv") == ids[:3]
    # Both, one with Z.
    since = second.replace(tzinfo=None).isoformat() + "Z"
    assert exported("--since", since, "--until", fourth.isoformat()) == ids[1:3]
    # A date: its midnight, UTC.
    assert exported("--since", sessions[0]["startedAt"].date().isoformat()) == ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T12:00", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.5Z", datetime(2026, 1, 31, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-01-31T12:00+02:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31 12:00:00-05:00", datetime(2026, 1, 31, 17, tzinfo=UTC)),
    ],
)
def test_times_are_iso_and_utc_unless_they_say_otherwise(text, expected):
    parsed = parse_time(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "yesterday"],
        ["--since", "2026-13-01"],
        ["--until", "31/01/2026"],
        ["--since", ""],
        ["--since", "2026-02-01", "--until", "2026-01-01"],
        ["--format", "xml"],
    ],
    ids=["word", "no-such-month", "not-iso", "empty", "until-before-since", "format"],
)
def test_bad_input_is_refused_cleanly(args, tmp_path):
    url = f"sqlite:///{tmp_path / 'never-opened.db'}"
    result = run(url, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert args[-2] in result.stderr, result.stderr  # it names the option
    assert not (tmp_path / "never-opened.db").exists(), "refused before opening the database"


async def test_an_empty_export_is_a_header_or_an_empty_array(db, database_url, tmp_path):
    result = run(database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ",".join(FIELDS) + "\n"

    result = run(database_url, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_database_not_migrated_is_said_so(empty_url, tmp_path):
    result = run(empty_url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "binocular migrate" in result.stderr and "Traceback" not in result.stderr


# --- streaming ------------------------------------------------------------------------------

BASE = 1_000_000  # explicit ids far above what the sequences hand out in these tests


async def seed(db, start: int, count: int) -> None:
    """`count` ended VOICE sessions (ann on bob, billing), each with two mode changes, with
    ids from BASE + start: bulk inserts, as the benchmark seeds its data. They share one
    MONITOR participant (the export does not read it): deleting thousands of participants
    after the test would check each against every session (no index on the reference)."""
    async with db.read() as session:
        users = dict((await session.exec(sa.select(User.key, User.id))).all())
        queue = (await session.exec(sa.select(Queue.id).where(Queue.key == "billing"))).scalar()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    interactions, participants, sessions, changes = [], [], [], []
    for n in range(start, start + count):
        pk, started = BASE + n, at + timedelta(seconds=n)
        ended = started + timedelta(seconds=60)
        interactions.append(
            {
                "id": pk,
                "external_id": f"seeded-{n}",
                "media_type": "VOICE",
                "direction": "INBOUND",
                "state": "ENDED",
                "queue_id": queue,
                "started_at": started,
                "ended_at": ended,
                "version": 0,
            }
        )
        if n == 0:
            participants.append(
                {
                    "id": BASE,
                    "interaction_id": pk,
                    "purpose": "MONITOR",
                    "state": "DISCONNECTED",
                    "user_id": users["ann"],
                    "name": "Ann Lee",
                    "connected_at": started,
                    "disconnected_at": ended,
                }
            )
        sessions.append(
            {
                "id": pk,
                "interaction_id": pk,
                "media_type": "VOICE",
                "monitor_id": users["ann"],
                "agent_id": users["bob"],
                "monitor_participant_id": BASE,
                "state": "ENDED",
                "started_at": started,
                "ended_at": ended,
                "end_reason": "STOPPED",
                "mode": "COACH",
                "disclosed_at": started + timedelta(seconds=10),
            }
        )
        changes.append({"id": 2 * pk, "session_id": pk, "mode": "MONITOR", "at": started})
        changes.append(
            {
                "id": 2 * pk + 1,
                "session_id": pk,
                "mode": "COACH",
                "at": started + timedelta(seconds=10),
            }
        )
    async with db.transaction() as session:
        for model, rows in (
            (Interaction, interactions),
            (Participant, participants),
            (MonitoringSession, sessions),
            (MonitoringModeChange, changes),
        ):
            for chunk in range(0, len(rows), 5000):
                await session.exec(sa.insert(model), params=rows[chunk : chunk + 5000])


class Sink:
    """A binary stdout that keeps only what the tests look at."""

    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []
        self.size = 0
        self.tail = b""

    def write(self, data: bytes) -> int:
        self.log.append(("write", data.count(b"\n")))
        self.size += len(data)
        self.tail = (self.tail + data)[-4096:]
        return len(data)

    def flush(self) -> None:
        self.log.append(("flush",))


async def test_the_read_streams_partition_by_partition(db, directory):
    await seed(db, 0, 2345)
    log: list = []

    def on_statement(_conn, cursor, statement, _params, _context, _many):
        if "FROM monitoring_mode_change" in statement:
            log.append(("modes",))
        elif "FROM monitoring_session" in statement:
            # A server-side cursor: asyncpg's portal, or SQLite stepping as it is read.
            log.append(("sessions", type(cursor).__name__))

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        sink = Sink(log)
        count = await export(db, sink, Format.CSV, partition=100)
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", on_statement)

    assert count == 2345
    statements = [entry for entry in log if entry[0] in ("sessions", "modes")]
    assert statements[0] == ("sessions", statements[0][1])
    assert "_ss_cursor" in statements[0][1], statements[0]
    assert statements[1:] == [("modes",)] * 24  # one for each partition of 100 (the last 45)
    # Each partition is written and flushed before the next one's modes are read.
    after_header = log[log.index(("sessions", statements[0][1])) + 3 :]
    for p in range(24):
        rows = 100 if p < 23 else 45
        assert after_header[3 * p : 3 * p + 3] == [("modes",), ("write", rows), ("flush",)]
    assert len(after_header) == 72


async def test_a_reader_that_goes_away_stops_it_quietly(db, directory, database_url, tmp_path):
    await seed(db, 0, 2345)  # far more than a pipe holds
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BINOCULAR_")}
    process = subprocess.Popen(
        [str(BINOCULAR), "audit", "export", "--format", "json"],
        cwd=tmp_path,
        env={**clean, "BINOCULAR_DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"[\n"  # as `| head -1` does
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == 1
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


async def test_memory_stays_flat_from_2000_to_20000_sessions(db, directory):
    async def peak(format: Format, traced: bool = True) -> tuple[int, int]:
        sink = Sink()
        if not traced:
            return await export(db, sink, format), 0
        tracemalloc.start()
        try:
            count = await export(db, sink, format)
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    await seed(db, 0, 2000)
    for format in Format:  # warm up: compiled statements, caches, imports
        await peak(format, traced=False)
    small = {format: await peak(format) for format in Format}
    await seed(db, 2000, 18000)
    large = {format: await peak(format) for format in Format}
    for format in Format:
        (few, few_peak), (many, many_peak) = small[format], large[format]
        assert (few, many) == (2000, 20000)
        # Holding the 18,000 more sessions would take over 10 MB (more than 500 bytes each);
        # what stays is one partition of 1,000 (3 to 6 MB here), whatever the number.
        assert many_peak < few_peak * 1.2 + 500_000, (format, few_peak, many_peak)
