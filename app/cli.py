"""The `binocular` command."""

import asyncio
import secrets
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
import typer
from rich.console import Console

from app.auth import issue_token
from app.config import Settings
from app.db import Database, migrate
from app.directory.load import DirectoryFileError, load_directory, parse_directory
from app.models import User
from app.ops.logs import configure_logging

cli = typer.Typer(
    help="Binocular: live monitoring of contact-center interactions.",
    no_args_is_help=True,
    add_completion=False,
)
directory_cli = typer.Typer(
    help="The directory of divisions, users and queues.", no_args_is_help=True
)
cli.add_typer(directory_cli, name="directory")
err = Console(stderr=True, soft_wrap=True)

DEMO_DIRECTORY = Path(__file__).parent / "demo" / "directory.json"
DEMO_DATABASE = "sqlite:///./binocular-demo.db"


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@cli.command("migrate")
def migrate_command() -> None:
    """Apply pending database migrations (Alembic upgrade to head)."""
    migrate(Settings().database_url)


@directory_cli.command("load")
def directory_load(file: Path) -> None:
    """Upsert divisions, users, queues and members from a JSON or YAML file."""
    settings = Settings()
    try:
        directory = parse_directory(file)
    except DirectoryFileError as error:
        _fail(f"{file}: {error}; nothing was written")
    migrate(settings.database_url)
    changed = asyncio.run(_load(settings, directory))
    summary = ", ".join(f"{count} {table}" for table, count in changed.items())
    err.print(f"loaded {file}: changed {summary}")


async def _load(settings: Settings, directory) -> dict[str, int]:
    db = Database(settings.database_url)
    try:
        return await load_directory(db, directory)
    finally:
        await db.dispose()


@cli.command()
def token(
    user_key: str,
    ttl: int = typer.Option(3600, "--ttl", min=1, help="Lifetime in seconds."),
) -> None:
    """Print a signed bearer token for USER_KEY."""
    settings = Settings()
    if not settings.jwt_secret:
        _fail("BINOCULAR_JWT_SECRET is not set")
    if not asyncio.run(_user_exists(settings, user_key)):
        _fail(f"no user {user_key!r} in the directory")
    print(issue_token(settings.jwt_secret, user_key, ttl))


async def _user_exists(settings: Settings, key: str) -> bool:
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            found = await session.exec(sa.select(User.id).where(User.key == key))
            return found.first() is not None
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        _fail("the database is not migrated: run `binocular migrate`")
    finally:
        await db.dispose()


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Do not migrate at start."),
) -> None:
    """Run the API: GraphQL over HTTP and WebSocket at /graphql."""
    settings = Settings()
    if not settings.jwt_secret:
        _fail("BINOCULAR_JWT_SECRET is not set: the server cannot check tokens")
    if not no_migrate:
        migrate(settings.database_url)
    _run(settings, host, port)


def _run(settings: Settings, host: str, port: int) -> None:
    from app.server import run

    configure_logging(settings.log_level)
    run(settings, host, port)


@cli.command("build-ide")
def build_ide() -> None:
    """Fetch GraphiQL from the npm registry so that the server serves it without a CDN."""
    from app import ide

    try:
        ide.build()
    except (OSError, subprocess.CalledProcessError) as error:
        _fail(f"could not build GraphiQL's assets (is npm installed?): {error}")
    err.print(f"GraphiQL assets ready in {ide.ASSETS}")


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL), identical to schema/schema.graphql."""
    from app.graphql.schema import sdl

    sys.stdout.write(sdl())


@cli.command()
def demo(
    port: int = typer.Option(8000, help="Port to listen on."),
    database: str = typer.Option(DEMO_DATABASE, help="Database URL for the demo."),
) -> None:
    """Run a demo with no setting at all: a SQLite file, sample directory, the server."""
    settings = Settings(database_url=database, jwt_secret=secrets.token_urlsafe(32))
    migrate(settings.database_url)
    directory = parse_directory(DEMO_DIRECTORY)
    asyncio.run(_load(settings, directory))
    out = Console()
    out.print(f"[bold]Binocular demo[/bold] on {settings.database_url}")
    out.print(
        f"GraphiQL: http://127.0.0.1:{port}/graphql  (add the header "
        '{"Authorization": "Bearer TOKEN"})'
    )
    for user in directory.users:
        roles = ", ".join(role.value for role in user.roles)
        out.print(f"  {user.key:<10} {user.name:<18} {user.division:<7} {roles}")
        print(f"    {issue_token(settings.jwt_secret, user.key, 12 * 3600)}")
    _run(settings, "127.0.0.1", port)


def main() -> None:
    cli()
