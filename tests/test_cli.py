"""The `binocular` command, run as a real subprocess (the console script next to python)."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db import Database, alembic_config, async_url, migrate
from app.directory.load import DirectoryFile, load_directory
from app.graphql.schema import sdl
from app.models import metadata

BINOCULAR = Path(sys.executable).parent / "binocular"
SECRET = "cli-test-secret-0123456789abcdef0123456789"
DIRECTORY = {
    "divisions": [{"key": "north", "name": "North"}],
    "users": [{"key": "ann", "name": "Ann Lee", "division": "north", "roles": ["SUPERVISOR"]}],
    "queues": [],
}


def binocular(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run `binocular ARGS` with only the BINOCULAR_* variables given in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BINOCULAR_")}
    return subprocess.run(
        [str(BINOCULAR), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- databases of our own -------------------------------------------------------------------


@pytest.fixture
def directory_url(empty_url) -> str:
    """A migrated database holding the user `ann`."""
    migrate(empty_url)

    async def load():
        db = Database(empty_url)
        try:
            await load_directory(db, DirectoryFile.model_validate(DIRECTORY))
        finally:
            await db.dispose()

    asyncio.run(load())
    return empty_url


def _tables_and_version(url: str) -> tuple[set[str], list[str]]:
    async def read():
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
                versions = []
                if "alembic_version" in tables:
                    rows = await connection.execute(
                        sa.text("SELECT version_num FROM alembic_version")
                    )
                    versions = [row[0] for row in rows]
                return set(tables), versions
        finally:
            await engine.dispose()

    return asyncio.run(read())


# --- help -----------------------------------------------------------------------------------


def test_help_lists_every_command(tmp_path):
    result = binocular("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.strip("│| ").split(" ", 1)[0] for line in result.stdout.splitlines()}
    missing = {"migrate", "directory", "token", "serve", "export-schema", "demo", "prune", "audit"}
    missing -= listed
    assert not missing, f"`binocular --help` does not list {sorted(missing)}:\n{result.stdout}"


# --- migrate --------------------------------------------------------------------------------


def test_migrate_brings_a_fresh_database_to_head(empty_url, tmp_path):
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()

    result = binocular("migrate", cwd=tmp_path, env={"BINOCULAR_DATABASE_URL": empty_url})
    assert result.returncode == 0, result.stderr
    assert _tables_and_version(empty_url) == (set(metadata.tables) | {"alembic_version"}, [head])

    again = binocular("migrate", cwd=tmp_path, env={"BINOCULAR_DATABASE_URL": empty_url})
    assert again.returncode == 0, again.stderr
    assert _tables_and_version(empty_url) == (set(metadata.tables) | {"alembic_version"}, [head])


# --- token ----------------------------------------------------------------------------------


def test_token_prints_one_line_holding_a_jwt_for_the_user(directory_url, tmp_path):
    before = time.time()
    result = binocular(
        "token",
        "ann",
        "--ttl",
        "60",
        cwd=tmp_path,
        env={"BINOCULAR_DATABASE_URL": directory_url, "BINOCULAR_JWT_SECRET": SECRET},
    )
    after = time.time()
    assert result.returncode == 0, result.stderr

    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"expected the token alone on one line, got {result.stdout!r}"
    assert result.stdout == lines[0] + "\n"
    token = lines[0]
    assert token == token.strip() and token.count(".") == 2

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    assert claims["sub"] == "ann"
    assert int(before) - 1 + 60 <= claims["exp"] <= after + 60 + 1
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "-other", algorithms=["HS256"])


def test_token_for_an_unknown_user_fails(directory_url, tmp_path):
    result = binocular(
        "token",
        "nobody",
        "--ttl",
        "60",
        cwd=tmp_path,
        env={"BINOCULAR_DATABASE_URL": directory_url, "BINOCULAR_JWT_SECRET": SECRET},
    )
    assert result.returncode != 0
    assert result.stdout == "", "no token may be printed for an unknown user"
    assert "nobody" in result.stderr


def test_token_without_jwt_secret_fails(directory_url, tmp_path):
    result = binocular(
        "token", "ann", "--ttl", "60", cwd=tmp_path, env={"BINOCULAR_DATABASE_URL": directory_url}
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert "BINOCULAR_JWT_SECRET" in result.stderr


# --- export-schema --------------------------------------------------------------------------


def test_export_schema_prints_the_committed_schema_file(repo_root, tmp_path):
    result = binocular("export-schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    committed = (repo_root / "schema" / "schema.graphql").read_text(encoding="utf-8")
    assert result.stdout == committed, (
        "`binocular export-schema` differs from schema/schema.graphql: "
        "run `binocular export-schema > schema/schema.graphql`"
    )


def test_export_schema_prints_the_schema_of_the_code(tmp_path):
    result = binocular("export-schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == sdl()


# --- serve ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
def test_serve_refuses_to_start_without_jwt_secret(tmp_path, secret):
    env = {"BINOCULAR_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    if secret is not None:
        env["BINOCULAR_JWT_SECRET"] = secret
    try:
        result = binocular(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
            cwd=tmp_path,
            env=env,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`binocular serve` started (still running after 30 s) without a JWT secret")
    assert result.returncode != 0
    assert "BINOCULAR_JWT_SECRET" in result.stderr
