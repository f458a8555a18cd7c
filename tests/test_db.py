"""PostgreSQL connections: they rest in autocommit in the pool, so that SQLAlchemy's ping at
checkout is one round trip; reads and writes still run in the transactions they need; a
connection whose server went away is replaced at checkout, not handed to a request; and
times read back as aware UTC datetimes through the text codec."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.db import Database

_ONE = sa.select(sa.literal(1).label("one"))
_SETTINGS = sa.text(
    "SELECT current_setting('transaction_isolation') AS isolation,"
    " current_setting('transaction_read_only') AS read_only, now() AS began"
)


async def _driver(connection) -> asyncpg.Connection:
    return (await connection.get_raw_connection()).driver_connection


async def test_the_ping_at_checkout_is_one_statement_outside_any_transaction(postgresql_url):
    db = Database(postgresql_url, pool_size=1)
    try:
        async with db.snapshot() as connection:
            await connection.execute(_ONE)
            driver = await _driver(connection)
        sent = []
        driver.add_query_logger(lambda logged: sent.append(logged.query.strip()))
        async with db.snapshot() as connection:  # the same pooled connection, pinged first
            await connection.execute(_ONE)
            assert await _driver(connection) is driver
        # SQLAlchemy wraps the ping of a connection outside autocommit in BEGIN and ROLLBACK.
        assert sent[0] == ";"
        assert sent[1] == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
        assert "BEGIN;" not in sent
    finally:
        await db.dispose()


async def test_reads_and_writes_keep_their_transactions(postgresql_url):
    db = Database(postgresql_url, pool_size=1)
    try:
        async with db.snapshot() as connection:
            first = (await connection.execute(_SETTINGS)).one()
            await asyncio.sleep(0.01)
            second = (await connection.execute(_SETTINGS)).one()
        assert (first.isolation, first.read_only) == ("repeatable read", "on")
        assert second.began == first.began  # one transaction: now() is its start

        async with db.transaction() as session:
            first = (await session.exec(_SETTINGS)).one()
            await asyncio.sleep(0.01)
            second = (await session.exec(_SETTINGS)).one()
        assert (first.isolation, first.read_only) == ("read committed", "off")
        assert second.began == first.began

        # A single read is autocommit: each statement a moment (and a transaction) of its own.
        async with db.single_read() as session:
            first = (await session.exec(_SETTINGS)).one()
            await asyncio.sleep(0.01)
            second = (await session.exec(_SETTINGS)).one()
        assert second.began > first.began
    finally:
        await db.dispose()


async def test_a_connection_whose_server_went_away_is_replaced_at_checkout(postgresql_url):
    db = Database(postgresql_url, pool_size=1)
    pid = sa.text("SELECT pg_backend_pid() AS pid")
    try:
        for read in ("snapshot", "first_row", "transaction"):
            before = (await db.first_row(pid, {})).pid
            admin = await asyncpg.connect(postgresql_url)
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", before)
            finally:
                await admin.close()
            if read == "snapshot":
                async with db.snapshot() as connection:
                    after = (await connection.execute(pid)).one().pid
            elif read == "first_row":
                after = (await db.first_row(pid, {})).pid
            else:
                async with db.transaction() as session:
                    after = (await session.exec(pid)).one().pid
            assert after != before, read
    finally:
        await db.dispose()


_EDGES = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2026, 12, 2, 17, 46, 37, tzinfo=UTC),  # no fraction: PostgreSQL prints none
    datetime(2026, 12, 2, 17, 46, 37, 741080, tzinfo=UTC),  # five digits printed
    datetime(2026, 12, 2, 17, 46, 37, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=45))),
]


async def test_times_read_back_as_utc_whatever_the_servers_time_zone_and_date_style(
    postgresql_url,
):
    """timestamptz travels as text (app/db.py): the connection sets the TimeZone and the
    DateStyle that `datetime.fromisoformat` reads, over what the server or database says."""
    name = f"binocular_times_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(postgresql_url).set(database="postgres", drivername="postgresql")
    admin = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Pacific/Chatham'")
        await admin.execute(f"ALTER DATABASE \"{name}\" SET DateStyle = 'SQL, DMY'")
        url = make_url(postgresql_url).set(database=name).render_as_string(hide_password=False)
        db = Database(url, pool_size=1)
        try:
            async with db.transaction() as session:
                await session.exec(sa.text("CREATE TABLE times (n int, at timestamptz)"))
                for n, at in enumerate(_EDGES):
                    await session.exec(
                        sa.text("INSERT INTO times VALUES (:n, :at)"), params={"n": n, "at": at}
                    )
            async with db.snapshot() as connection:
                read = (await connection.execute(sa.text("SELECT at FROM times ORDER BY n"))).all()
                now = (await connection.execute(sa.text("SELECT now() AS at"))).one().at
            assert [row.at for row in read] == _EDGES
            assert all(row.at.tzinfo is UTC for row in read) and now.tzinfo is UTC
        finally:
            await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
