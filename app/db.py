"""The database: one async engine for SQLite (embedded default) or PostgreSQL, and Alembic."""

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from alembic import command
from app.events.log import RECORDED, append_recorded
from app.records import first_record

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """`sqlite:///x.db` -> `sqlite+aiosqlite:///x.db`, `postgresql://...` -> asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for write transactions.

    pysqlite's own transaction handling is switched off so that a write transaction takes
    SQLite's write lock at BEGIN: a deferred one that read first could not upgrade later
    (SQLITE_BUSY_SNAPSHOT) once another writer has committed.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # A deferred BEGIN: in WAL mode, the transaction reads one snapshot from its first read.
    # None for a single statement (Database.statement): it is one moment by itself.
    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection):
        options = connection.get_execution_options()
        if options.get("binocular_single", False):
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("binocular_write") else "BEGIN")


def _configure_postgresql(engine: AsyncEngine) -> None:
    """timestamptz values travel as text, read by `datetime.fromisoformat` (one C call), not
    in asyncpg's binary form: its decoder built each value from a timedelta, about 0.6 us,
    four times the text's (a 1,000-interaction queueActivity reads about 3,000). The
    connection's TimeZone is UTC, so each value reads back as an aware UTC datetime, as
    asyncpg's own did (tests/test_db.py holds both)."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.run_async(
            lambda connection: connection.set_type_codec(
                "timestamptz",
                schema="pg_catalog",
                encoder=datetime.isoformat,
                decoder=datetime.fromisoformat,
                format="text",
            )
        )


# PostgreSQL: a read-only transaction in which every statement sees the moment of the first.
_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


class Database:
    """Engine and sessions. `read()` and `snapshot()` for queries, `transaction()` for changes.

    Every read sees one moment from its first statement to its end, on both backends, so that
    a decision read in several statements is one that a single state of the database justifies.
    """

    def __init__(self, url: str, pool_size: int = 25) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        options: dict = {}
        writes: dict = {"binocular_write": True}
        if not self.sqlite:
            options = {
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "pool_pre_ping": True,
                # Pooled connections rest in autocommit, so that the ping at checkout is one
                # round trip: SQLAlchemy wraps the ping of any other connection in a BEGIN
                # and a ROLLBACK (three round trips, two checkouts a request). Reads and
                # writes set their own isolation level.
                "isolation_level": "AUTOCOMMIT",
                # What the timestamptz codec below reads: ISO text, in UTC.
                "connect_args": {"server_settings": {"TimeZone": "UTC", "DateStyle": "ISO"}},
            }
            writes["isolation_level"] = "READ COMMITTED"
        # JSON columns (users' roles and permissions) read with orjson: json.loads was a
        # few microseconds a value, two a user.
        self.engine = create_async_engine(async_url(url), json_deserializer=orjson.loads, **options)
        if self.sqlite:
            _configure_sqlite(self.engine)
        else:
            _configure_postgresql(self.engine)
        writer = self.engine.execution_options(**writes)
        self._snapshots = self.engine if self.sqlite else self.engine.execution_options(**_SNAPSHOT)
        self._reads = async_sessionmaker(
            self._snapshots, class_=AsyncSession, expire_on_commit=False
        )
        self._writes = async_sessionmaker(writer, class_=AsyncSession, expire_on_commit=False)
        single = self.engine.execution_options(isolation_level="AUTOCOMMIT", binocular_single=True)
        self._single_engine = single
        self._single = async_sessionmaker(single, class_=AsyncSession, expire_on_commit=False)
        self._statements = functools.lru_cache(maxsize=256)(lambda build, *key: build(self, *key))
        # Called with what was recorded (app.events.log.Recorded), after a transaction that
        # appended events has committed.
        self.on_events_committed: list[Callable[[list], None]] = []

    def one_of(self, column) -> sa.ColumnElement[bool]:
        """`column IN :keys`, the values given when the statement runs (`{"keys": [...]}`);
        on PostgreSQL `column = ANY(:keys)`: one parameter whatever the number of values, so
        that the statement is compiled and prepared once, not once per length of the list
        (SQLAlchemy expands IN into a parameter per value, which cost a tenth of a
        1,000-interaction queueActivity)."""
        if self.sqlite:
            return column.in_(sa.bindparam("keys", expanding=True))
        return column == sa.any_(sa.bindparam("keys", type_=_array_of(column.type)))

    def statement(self, build: Callable[..., sa.Executable], *key) -> sa.Executable:
        """`build(self, *key)`, built once (for the last 256 keys): a statement that runs
        with bound parameters is built and given its cache key once, not per read (that
        cost about 140 us of CPU, as much as running a one-row read)."""
        return self._statements(build, *key)

    def read(self) -> AsyncSession:
        """A session for reads (read-only on PostgreSQL): one snapshot, from its first
        statement until it closes."""
        return self._reads()

    def single_read(self) -> AsyncSession:
        """A session for one read statement, which is one moment by itself: no transaction,
        so no BEGIN and COMMIT round trips (it was a third of the cost of authenticating a
        request). Each further statement would see a moment of its own."""
        return self._single()

    async def first_row(self, statement, parameters: dict):
        """The first row of one read statement, which is one moment by itself (as
        `single_read`), as a record (app/records.py): no session and no ORM instance
        (authenticating a request this way takes about 40% less CPU than through a session)."""
        async with self._single_engine.connect() as connection:
            return first_record(await connection.execute(statement, parameters))

    def snapshot(self) -> AsyncConnection:
        """A connection (await it, or enter it) whose reads, until it is closed, all see the
        moment of the first."""
        return self._snapshots.connect()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without an exception."""
        async with self._writes() as session:
            async with session.begin():
                yield session
                await append_recorded(session)
            if recorded := session.info.pop(RECORDED, None):
                for listener in self.on_events_committed:
                    listener(recorded)

    async def dispose(self) -> None:
        await self.engine.dispose()


@functools.lru_cache(maxsize=64)
def _array_of(item_type: sa.types.TypeEngine) -> postgresql.ARRAY:
    # One per column type (they are few and live as long as the process): an ARRAY type
    # refers to itself through its comparator, and one a statement was garbage to collect.
    return postgresql.ARRAY(item_type)


def _migrations_dir() -> Path:
    package = Path(__file__).resolve().parent
    installed = package / "_alembic"
    return installed if installed.is_dir() else package.parent / "alembic"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Alembic upgrade. Runs its own event loop: call it outside a running one."""
    command.upgrade(alembic_config(url), revision)
