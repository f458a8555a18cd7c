"""The `binocular` command."""

import asyncio
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated

import httpx
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import Progress, TextColumn

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
def prune(
    before: str = typer.Option(
        None,
        "--before",
        help="ISO date or time (UTC unless it says otherwise): delete what is older.",
    ),
    days: float = typer.Option(
        None, "--days", min=0, help="Or: delete what is older than this many days."
    ),
) -> None:
    """Delete events and ended interactions older than a date, in small batches, while the
    service runs. Subscribers resuming from a deleted cursor are told so (CURSOR_EXPIRED)."""
    if (before is None) == (days is None):
        _fail("give either --before DATE or --days N")
    if days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=days)
    else:
        try:
            cutoff = datetime.fromisoformat(before)
        except ValueError:
            _fail(f"--before {before!r} is not an ISO date or time (2026-01-31, 2026-01-31T12:00)")
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=UTC)
    settings = Settings()
    pruned = asyncio.run(_prune(settings, cutoff))
    err.print(
        f"pruned {pruned.events} events and {pruned.interactions} ended interactions "
        f"older than {cutoff.isoformat()}"
    )


async def _prune(settings: Settings, cutoff: datetime):
    from app.events.retention import prune

    db = Database(settings.database_url)
    try:
        return await prune(db, cutoff)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        _fail("the database is not migrated: run `binocular migrate`")
    finally:
        await db.dispose()


audit_cli = typer.Typer(help="The monitoring audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


class AuditFormat(str, Enum):
    csv = "csv"
    json = "json"


def _audit_time(value: str | None, option: str) -> datetime | None:
    from app.ops.audit import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or time (2026-01-31, 2026-01-31T12:00, "
            "2026-01-31T12:00:00+02:00; UTC unless it says otherwise)",
            param_hint=option,
        ) from None


@audit_cli.command("export")
def audit_export(
    since: str = typer.Option(
        None, "--since", help="Sessions started at or after this ISO date or time (UTC)."
    ),
    until: str = typer.Option(
        None, "--until", help="Sessions started before this ISO date or time (UTC)."
    ),
    format: Annotated[AuditFormat, typer.Option("--format", help="csv or json.")] = (
        AuditFormat.csv
    ),
) -> None:
    """Write the monitoring sessions started in [--since, --until), oldest first, to stdout:
    session, interaction, queue, supervisor, agent, every mode with its time, start, end, end
    reason. CSV has a header row and the modes as MODE@TIME;MODE@TIME; JSON is one array,
    an object per line. Streams: memory stays flat however many sessions."""
    start, end = _audit_time(since, "--since"), _audit_time(until, "--until")
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter(f"{until!r} is not after --since {since!r}", param_hint="--until")
    settings = Settings()
    try:
        count = asyncio.run(_audit_export(settings, format.value, start, end))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let no flush at exit fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    err.print(f"exported {count} monitoring sessions")


async def _audit_export(settings: Settings, format: str, since, until) -> int:
    from app.ops.audit import Format, export

    db = Database(settings.database_url, pool_size=1)
    try:
        return await export(db, sys.stdout.buffer, Format(format), since, until)
    except BrokenPipeError:
        raise
    except (sa.exc.DBAPIError, OSError) as error:  # not migrated, not there, unreachable
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        _fail(f"cannot read the monitoring audit: {cause} (not migrated? `binocular migrate`)")
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


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL), identical to schema/schema.graphql."""
    from app.graphql.schema import sdl

    sys.stdout.write(sdl())


@cli.command()
def demo(
    port: int = typer.Option(8000, help="Port to listen on."),
    database: str = typer.Option(DEMO_DATABASE, help="Database URL for the demo."),
    rate: float = typer.Option(0.2, min=0.01, help="New interactions per second."),
) -> None:
    """Run a demo with no setting at all: a SQLite file, a sample directory, simulated
    traffic and the server, with a live status line."""
    from app.demo.run import run_demo

    settings = Settings(
        database_url=database, jwt_secret=secrets.token_urlsafe(32), log_level="WARNING"
    )
    migrate(settings.database_url)
    directory = parse_directory(DEMO_DIRECTORY)
    asyncio.run(_load(settings, directory))
    configure_logging(settings.log_level)
    out = Console()
    out.print(
        f"[bold]Binocular demo[/bold] on {settings.database_url}: open a user's GraphiQL "
        "(the token is in the address; Ctrl+C stops)"
    )
    for user in directory.users:
        roles = ", ".join(role.value for role in user.roles)
        token = issue_token(settings.jwt_secret, user.key, 12 * 3600)
        out.print(
            f"  {user.name:<12} {user.division:<6} {roles:<12} "
            f"http://127.0.0.1:{port}/graphql#token={token}",
            soft_wrap=True,
        )
    try:
        asyncio.run(run_demo(settings, port, rate, out))
    except KeyboardInterrupt:
        # Ctrl+C is how the demo stops: uvicorn has shut down gracefully, then raises the
        # SIGINT it caught again, for the default behaviour (exit 130). Here it is no error.
        out.print("Binocular demo stopped.")


@cli.command()
def simulate(
    url: str = typer.Option(..., help="The server, e.g. http://127.0.0.1:8000"),
    token: str = typer.Option(..., help="A bearer token of an INTEGRATION user."),
    rate: float = typer.Option(1.0, min=0.01, help="New interactions per second."),
    duration: float = typer.Option(60, min=1, help="Seconds of new traffic."),
) -> None:
    """Drive a running server with simulated telephony traffic, as a load test."""
    from app.demo.traffic import Traffic

    out = Console()
    traffic = Traffic(url.rstrip("/"), token, rate=rate)
    try:
        stats = asyncio.run(_simulate(traffic, duration, out))
    except (RuntimeError, httpx.HTTPError) as error:
        _fail(f"cannot simulate against {url}: {error}")
    elapsed = time.monotonic() - stats.started
    out.print(
        f"created {stats.created} interactions, ended {stats.ended}; {stats.calls} calls "
        f"({stats.calls / elapsed:.1f}/s), {stats.errors} refused or failed"
    )
    if stats.created == 0:
        raise typer.Exit(1)


async def _simulate(traffic, duration: float, out: Console):
    columns = (*Progress.get_default_columns(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=out) as progress:
        bar = progress.add_task("simulating", total=duration, status="")
        running = asyncio.create_task(traffic.run(duration))
        started = time.monotonic()
        while not running.done():
            await asyncio.sleep(0.5)
            stats = traffic.stats
            progress.update(
                bar,
                completed=min(time.monotonic() - started, duration),
                status=f"{stats.created} created, {sum(stats.states.values())} live, "
                f"{stats.errors} refused",
            )
        return await running


def main() -> None:
    cli()
