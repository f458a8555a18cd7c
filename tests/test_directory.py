"""The directory file: app/directory/load.py, and `binocular directory load FILE`.

Each test gets a database of its own (a new SQLite file, a new PostgreSQL database) that
`directory load` migrates itself, as the contract says it does.
"""

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db import Database, async_url, migrate
from app.directory.load import DirectoryFileError, load_directory, parse_directory
from app.models import Division, Queue, QueueMember, User, metadata
from app.models.enums import Presence

BINOCULAR = Path(sys.executable).parent / "binocular"

# The example of the contract.
CONTRACT_EXAMPLE = {
    "divisions": [{"key": "north", "name": "North"}],
    "users": [
        {"key": "ann", "name": "Ann Lee", "division": "north", "roles": ["SUPERVISOR"]},
        {
            "key": "bob",
            "name": "Bob Ray",
            "division": "north",
            "roles": ["AGENT"],
            "presence": "ON_QUEUE",
        },
        {"key": "pbx", "name": "Telephony", "division": "north", "roles": ["INTEGRATION"]},
    ],
    "queues": [{"key": "billing", "name": "Billing", "division": "north", "members": ["bob"]}],
}
CONTRACT_EXAMPLE_YAML = """\
divisions:
  - key: north
    name: North
users:
  - key: ann
    name: Ann Lee
    division: north
    roles: [SUPERVISOR]
  - {key: bob, name: Bob Ray, division: north, roles: [AGENT], presence: ON_QUEUE}
  - key: pbx
    name: Telephony
    division: north
    roles:
      - INTEGRATION
queues:
  - key: billing
    name: Billing
    division: north
    members: [bob]
"""
# What the contract example puts in the database.
CONTRACT_EXAMPLE_LOADED = {
    "divisions": {"north": "North"},
    "users": {
        "ann": ("Ann Lee", "north", ["SUPERVISOR"], "OFFLINE"),
        "bob": ("Bob Ray", "north", ["AGENT"], "ON_QUEUE"),
        "pbx": ("Telephony", "north", ["INTEGRATION"], "OFFLINE"),
    },
    "queues": {"billing": ("Billing", "north")},
    "members": {"billing": ["bob"]},
}


# --- databases of our own, and the command --------------------------------------------------


@pytest.fixture
def url(empty_url) -> str:
    return empty_url


def write(directory: Path, name: str, content: dict | str) -> str:
    """Write a directory file; `content` is JSON data or the file's text. Returns its name."""
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    (directory / name).write_text(text, encoding="utf-8")
    return name


def load(url: str, tmp_path: Path, file_name: str) -> subprocess.CompletedProcess:
    """`binocular directory load FILE`, run from tmp_path with FILE relative to it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BINOCULAR_")}
    return subprocess.run(
        [str(BINOCULAR), "directory", "load", file_name],
        cwd=tmp_path,
        env={**clean, "BINOCULAR_DATABASE_URL": url},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_ok(url: str, tmp_path: Path, name: str, content: dict | str) -> None:
    result = load(url, tmp_path, write(tmp_path, name, content))
    assert result.returncode == 0, f"loading {name} failed:\n{result.stderr}"


# --- reading the database back --------------------------------------------------------------


async def _all_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table of ours, by primary key."""
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in await connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


def all_rows(url: str) -> dict[str, list[tuple]]:
    return asyncio.run(_all_rows(url))


def directory_in(url: str) -> dict:
    """The directory as stored: names, division keys, sorted roles, presence, member keys."""

    async def read():
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        D, U, Q, M = (m.__table__ for m in (Division, User, Queue, QueueMember))
        try:
            async with engine.connect() as connection:
                divisions = {
                    k: n for k, n in await connection.execute(sa.select(D.c.key, D.c.name))
                }
                users = {
                    key: (name, division, sorted(roles), Presence(presence).value)
                    for key, name, division, roles, presence in await connection.execute(
                        sa.select(U.c.key, U.c.name, D.c.key, U.c.roles, U.c.presence).join(
                            D, D.c.id == U.c.division_id
                        )
                    )
                }
                queues = {
                    key: (name, division)
                    for key, name, division in await connection.execute(
                        sa.select(Q.c.key, Q.c.name, D.c.key).join(D, D.c.id == Q.c.division_id)
                    )
                }
                members: dict[str, list[str]] = {}
                for queue, user in await connection.execute(
                    sa.select(Q.c.key, U.c.key)
                    .join(M, M.c.queue_id == Q.c.id)
                    .join(U, U.c.id == M.c.user_id)
                    .order_by(Q.c.key, U.c.key)
                ):
                    members.setdefault(queue, []).append(user)
                return {
                    "divisions": divisions,
                    "users": users,
                    "queues": queues,
                    "members": members,
                }
        finally:
            await engine.dispose()

    return asyncio.run(read())


def ids_by_key(url: str) -> dict[str, dict[str, int]]:
    """{"division": {"north": 1, ...}, "users": {...}, "queue": {...}}"""

    async def read():
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                ids = {}
                for model in (Division, User, Queue):
                    table = model.__table__
                    rows = await connection.execute(sa.select(table.c.key, table.c.id))
                    ids[table.name] = {key: id_ for key, id_ in rows}
                return ids
        finally:
            await engine.dispose()

    return asyncio.run(read())


def set_presence(url: str, user_key: str, presence: Presence) -> None:
    """What the integration's setPresence does, straight in the database."""

    async def update():
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                table = User.__table__
                await connection.execute(
                    sa.update(table).where(table.c.key == user_key).values(presence=presence)
                )
        finally:
            await engine.dispose()

    asyncio.run(update())


# --- loading --------------------------------------------------------------------------------


def test_json_file_loads(url, tmp_path):
    load_ok(url, tmp_path, "directory.json", CONTRACT_EXAMPLE)
    assert directory_in(url) == CONTRACT_EXAMPLE_LOADED


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file_loads(url, tmp_path, suffix):
    assert yaml.safe_load(CONTRACT_EXAMPLE_YAML) == CONTRACT_EXAMPLE  # the same directory
    load_ok(url, tmp_path, f"directory{suffix}", CONTRACT_EXAMPLE_YAML)
    assert directory_in(url) == CONTRACT_EXAMPLE_LOADED


def test_loading_the_same_file_twice_changes_nothing(url, tmp_path):
    load_ok(url, tmp_path, "directory.json", CONTRACT_EXAMPLE)
    before = all_rows(url)

    load_ok(url, tmp_path, "directory.json", CONTRACT_EXAMPLE)

    assert all_rows(url) == before


FIRST_FILE = {
    "divisions": [
        {"key": "north", "name": "North"},
        {"key": "south", "name": "South"},
        {"key": "west", "name": "West"},
    ],
    "users": [
        {"key": "ann", "name": "Ann Lee", "division": "north", "roles": ["SUPERVISOR"]},
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
        {"key": "pbx", "name": "Telephony", "division": "north", "roles": ["INTEGRATION"]},
    ],
    "queues": [
        {"key": "billing", "name": "Billing", "division": "north", "members": ["bob", "dina"]},
        {"key": "support", "name": "Support", "division": "north", "members": ["dina"]},
    ],
}
# Renames, moves, new roles, new members; leaves out the west division, pbx and support.
SECOND_FILE = {
    "divisions": [{"key": "north", "name": "North Region"}, {"key": "south", "name": "South"}],
    "users": [
        {
            "key": "ann",
            "name": "Ann Lee-Smith",
            "division": "north",
            "roles": ["SUPERVISOR", "ADMIN"],
        },  # no presence: keeps the one she has now
        {
            "key": "bob",
            "name": "Bob Ray",
            "division": "south",
            "roles": ["AGENT", "SUPERVISOR"],
        },  # no presence: stays ON_QUEUE
        {
            "key": "dina",
            "name": "Dina Moss",
            "division": "north",
            "roles": ["AGENT"],
            "presence": "AWAY",
        },
    ],
    "queues": [
        {
            "key": "billing",
            "name": "Billing & Payments",
            "division": "south",
            "members": ["dina", "ann"],
        },
    ],
}


def test_a_second_file_updates_what_it_names_and_deletes_nothing(url, tmp_path):
    load_ok(url, tmp_path, "first.json", FIRST_FILE)
    ids_before = ids_by_key(url)
    set_presence(url, "ann", Presence.BUSY)  # changed since the first load

    load_ok(url, tmp_path, "second.json", SECOND_FILE)

    assert directory_in(url) == {
        "divisions": {"north": "North Region", "south": "South", "west": "West"},
        "users": {
            "ann": ("Ann Lee-Smith", "north", ["ADMIN", "SUPERVISOR"], "BUSY"),
            "bob": ("Bob Ray", "south", ["AGENT", "SUPERVISOR"], "ON_QUEUE"),
            "dina": ("Dina Moss", "north", ["AGENT"], "AWAY"),
            "pbx": ("Telephony", "north", ["INTEGRATION"], "OFFLINE"),
        },
        "queues": {"billing": ("Billing & Payments", "south"), "support": ("Support", "north")},
        "members": {"billing": ["ann", "dina"], "support": ["dina"]},
    }
    # Updated in place: every row keeps its id.
    assert ids_by_key(url) == ids_before


async def test_load_directory_reports_no_change_on_the_second_load(tmp_path):
    url = f"sqlite:///{tmp_path / 'in-process.db'}"
    await asyncio.to_thread(migrate, url)  # migrate runs an event loop of its own
    directory = parse_directory(tmp_path / write(tmp_path, "d.json", FIRST_FILE))
    db = Database(url)
    try:
        first = await load_directory(db, directory)
        before = await _all_rows(url)
        second = await load_directory(db, directory)
        assert await _all_rows(url) == before
    finally:
        await db.dispose()
    assert first == {"divisions": 3, "users": 4, "queues": 2, "queue members": 3}
    assert second == {"divisions": 0, "users": 0, "queues": 0, "queue members": 0}


# --- refused files --------------------------------------------------------------------------


def _refused(change) -> dict:
    """The contract example with harmless changes (ann renamed, zoe added), then `change`."""
    data = copy.deepcopy(CONTRACT_EXAMPLE)
    data["users"][0]["name"] = "Ann Changed"
    data["users"].append({"key": "zoe", "name": "Zoe New", "division": "north", "roles": ["AGENT"]})
    change(data)
    return data


def _set(path: tuple, value):
    def change(data):
        *parents, last = path
        target = data
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _delete(path: tuple):
    def change(data):
        *parents, last = path
        target = data
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _duplicate_bob(data):
    data["users"].append(
        {"key": "bob", "name": "Bobby Again", "division": "north", "roles": ["AGENT"]}
    )


MALFORMED_JSON = """\
{
  "divisions": [{"key": "north", "name": "North"}],
  "users": [
    {"key": "ann", "name": "Ann Changed", "division": "north", "roles": ["SUPERVISOR"]},
    {"key": "bob", "name": "Bob Ray", "division": "north" "roles": ["AGENT"]}
  ]
}
"""
MALFORMED_YAML = """\
divisions:
  - key: north
    name: North
users:
  - key: ann
    name: Ann: Changed
    division: north
"""

# id: (file name, content, what the message must say)
REFUSED = {
    "malformed-json": ("refused.json", MALFORMED_JSON, ["refused.json", "line 5"]),
    "malformed-yaml": ("refused.yaml", MALFORMED_YAML, ["refused.yaml", "line 6"]),
    "unknown-division": (
        "refused.json",
        _refused(_set(("users", 1, "division"), "east")),
        ["users[1] (bob)", "east"],
    ),
    "unknown-role": (
        "refused.json",
        _refused(_set(("users", 1, "roles"), ["AGENT", "JANITOR"])),
        ["users[1] (bob)", "roles"],
    ),
    "unknown-presence": (
        "refused.json",
        _refused(_set(("users", 1, "presence"), "SLEEPING")),
        ["users[1] (bob)", "presence"],
    ),
    "unknown-member": (
        "refused.json",
        _refused(_set(("queues", 0, "members"), ["bob", "zed"])),
        ["queues[0] (billing)", "zed"],
    ),
    "duplicate-key": ("refused.json", _refused(_duplicate_bob), ["users[4] (bob)", "duplicate"]),
    "missing-name": (
        "refused.json",
        _refused(_delete(("users", 1, "name"))),
        ["users[1] (bob)", "name"],
    ),
    "missing-division": (
        "refused.json",
        _refused(_delete(("queues", 0, "division"))),
        ["queues[0] (billing)", "division"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_file_names_the_entry_and_writes_nothing(url, tmp_path, case):
    name, content, expected = REFUSED[case]
    load_ok(url, tmp_path, "directory.json", CONTRACT_EXAMPLE)
    before = all_rows(url)

    result = load(url, tmp_path, write(tmp_path, name, content))

    assert result.returncode != 0, f"{case} was accepted:\n{result.stderr}"
    for words in expected:
        assert words in result.stderr, f"{words!r} not in the message:\n{result.stderr}"
    assert all_rows(url) == before, f"{case}: the refused file changed the database"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_parse_directory_refuses_naming_the_entry(tmp_path, case):
    name, content, expected = REFUSED[case]
    with pytest.raises(DirectoryFileError) as refused:
        parse_directory(tmp_path / write(tmp_path, name, content))
    for words in expected:
        assert words in str(refused.value)
