"""The PostgreSQL pool: connections rest in autocommit, so that SQLAlchemy's ping at checkout
is one round trip; reads and writes still run in the transactions they need; and a
connection whose server went away is replaced at checkout, not handed to a request."""

import asyncio

import asyncpg
import sqlalchemy as sa

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
