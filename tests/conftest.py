"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL: a throwaway database per run on BINOCULAR_TEST_POSTGRES_URL (default: this
machine's server on 127.0.0.1:5432). Outside CI an unreachable server skips those tests;
in CI (CI set) it fails them.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.auth import issue_token
from app.config import Settings
from app.db import Database, migrate
from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import encode_id
from app.models import Division, EventRetention, Queue, User, metadata
from app.server import create_app
from tests.servers import ServeProcess
from tests.support import Api

POSTGRES_ADMIN_URL = os.environ.get(
    "BINOCULAR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
JWT_SECRET = "test-secret-not-for-production-0123456789"
BACKENDS = ["sqlite", "postgresql"]

DIRECTORY = {
    "divisions": [{"key": "north", "name": "North"}, {"key": "south", "name": "South"}],
    "users": [
        {"key": "ann", "name": "Ann Lee", "division": "north", "roles": ["SUPERVISOR"]},
        {"key": "carl", "name": "Carl Diaz", "division": "north", "roles": ["SUPERVISOR"]},
        {
            "key": "bob",
            "name": "Bob Ray",
            "division": "north",
            "roles": ["AGENT"],
            "presence": "ON_QUEUE",
        },
        {
            "key": "dina",
            "name": "Dina Moss",
            "division": "north",
            "roles": ["AGENT"],
            "presence": "ON_QUEUE",
        },
        {"key": "eli", "name": "Eli Park", "division": "north", "roles": ["AGENT"]},
        {"key": "sue", "name": "Sue Hart", "division": "south", "roles": ["SUPERVISOR"]},
        {
            "key": "tom",
            "name": "Tom Wu",
            "division": "south",
            "roles": ["AGENT"],
            "presence": "ON_QUEUE",
        },
        {"key": "root", "name": "Rita Admin", "division": "north", "roles": ["ADMIN"]},
        {"key": "sam", "name": "Sam Admin", "division": "south", "roles": ["ADMIN"]},
        {"key": "pbx", "name": "Telephony", "division": "north", "roles": ["INTEGRATION"]},
    ],
    "queues": [
        {"key": "billing", "name": "Billing", "division": "north", "members": ["bob", "dina"]},
        {"key": "support", "name": "Support", "division": "north", "members": ["eli"]},
        {"key": "sales", "name": "Sales", "division": "south", "members": ["tom"]},
    ],
}


def _postgres_available() -> str | None:
    async def probe():
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(error).__name__}: {error}"
    return None


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """A migrated throwaway PostgreSQL database for this run (dropped at the end)."""
    problem = _postgres_available()
    if problem:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"binocular_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    """A database with nothing in it, not even migrations: a new SQLite file, or a new
    PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgresql_url")  # reachable, or skipped/failed as everywhere
    name = f"binocular_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'binocular.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
async def app(database_url):
    application = create_app(
        Settings(database_url=database_url, jwt_secret=JWT_SECRET, event_poll_seconds=0.5)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def db(app) -> AsyncIterator[Database]:
    """The app's database, emptied after each test (but for what retention pruned last)."""
    database: Database = app.state.db
    yield database
    async with database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            if table.name != EventRetention.__tablename__:
                await session.exec(sa.delete(table))


@pytest.fixture
async def directory(db) -> dict[str, str]:
    """The test directory, loaded; maps each key to its global id ("user:ann" style keys)."""
    await load_directory(db, DirectoryFile.model_validate(DIRECTORY))
    ids = {}
    async with db.read() as session:
        for model, prefix in ((m, m.__name__) for m in _directory_models()):
            for row in (await session.exec(sa.select(model))).scalars():
                ids[row.key] = encode_id(prefix, row.id)
    return ids


def _directory_models():
    return (Division, Queue, User)


@pytest.fixture
async def api(app, directory) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://binocular") as client:
        yield Api(client, directory, lambda key: issue_token(JWT_SECRET, key, 3600), app)


@pytest.fixture
def backend(database_url) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_dir(repo_root) -> Path:
    """../shared, the contract and its tools: beside the clone in CI and for developers, not
    for a user. Missing, its tests are skipped locally and fail in CI."""
    shared = repo_root.parent / "shared"
    if not shared.is_dir():
        message = f"{shared} is not there: the contract lives beside the clone"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return shared


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    """A real `binocular serve` process on the test database."""
    process = ServeProcess(database_url, JWT_SECRET, tmp_path_factory.mktemp("serve") / "log")
    yield process
    process.stop()


def live_api_for(server: ServeProcess, directory: dict[str, str]) -> Api:
    client = httpx.AsyncClient(base_url=server.url, timeout=60)
    return Api(client, directory, lambda key: issue_token(JWT_SECRET, key, 3600))


@pytest.fixture
async def live_api(server, directory):
    """The test directory's GraphQL API over real HTTP to a real `binocular serve`."""
    api = live_api_for(server, directory)
    yield api
    await api.client.aclose()


@pytest.fixture
async def supervisors(db, directory) -> list[str]:
    """Fifty more north supervisors, for races."""
    keys = [f"sup{i:02d}" for i in range(50)]
    await load_directory(
        db,
        DirectoryFile.model_validate(
            {
                "divisions": [{"key": "north", "name": "North"}],
                "users": [
                    {
                        "key": k,
                        "name": f"Supervisor {k}",
                        "division": "north",
                        "roles": ["SUPERVISOR"],
                    }
                    for k in keys
                ],
            }
        ),
    )
    async with db.read() as session:
        for row in (await session.exec(sa.select(User).where(User.key.in_(keys)))).scalars():
            directory[row.key] = encode_id("User", row.id)
    return keys
