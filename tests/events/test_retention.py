"""Retention: `binocular prune` and the rolling window delete old events and ended
interactions in small batches, and never leave a hole in the log."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from app.config import Settings
from app.events.retention import prune
from app.models import EventLogEntry, Interaction, MonitoringSession, Participant
from app.server import create_app
from tests.conftest import JWT_SECRET
from tests.events.test_change_feed import INTERACTIONS, created_and_connected
from tests.servers import ws_client
from tests.test_cli import binocular


async def count(db, model, *conditions) -> int:
    async with db.read() as session:
        query = sa.select(sa.func.count()).select_from(model).where(*conditions)
        return (await session.exec(query)).scalar_one()


async def age(db, seconds: float) -> None:
    """Make everything so far look `seconds` older."""
    shift = timedelta(seconds=seconds)
    async with db.transaction() as session:
        for event in (await session.exec(sa.select(EventLogEntry))).scalars():
            event.occurred_at -= shift
        for interaction in (await session.exec(sa.select(Interaction))).scalars():
            interaction.started_at -= shift
            if interaction.ended_at is not None:
                interaction.ended_at -= shift


async def test_prune_deletes_old_events_and_old_ended_interactions_only(api, db):
    ended = await api.create()
    await api.connect(ended, "bob")
    session = (await api.start("ann", ended))["session"]["id"]
    await api.stop("ann", session)
    await api.end(ended)
    live = await api.create()
    await api.connect(live, "dina")  # old, but still going: kept
    await age(db, 3600)
    old_events = await count(db, EventLogEntry)
    recent = await api.create()
    await api.set_presence("bob", "BUSY")

    pruned = await prune(db, datetime.now(UTC) - timedelta(minutes=30), batch=2)

    assert pruned.events == old_events == 8  # the test directory's load and 7, in batches of 2
    assert pruned.interactions == 1
    assert await count(db, Interaction) == 2  # the live one and the recent one
    assert await count(db, Participant) == 3  # their customers, and dina
    assert await count(db, MonitoringSession) == 0
    kinds = await _kinds(db)
    assert kinds == ["INTERACTION_CREATED", "PRESENCE_CHANGED"]
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Interaction { state } } }", {"id": recent}
    )
    assert data["node"] == {"state": "WAITING"}
    assert (await prune(db, datetime.now(UTC) - timedelta(minutes=30))).events == 0


async def _kinds(db) -> list[str]:
    async with db.read() as session:
        rows = await session.exec(sa.select(EventLogEntry.kind).order_by(EventLogEntry.position))
        return [kind.value for kind in rows.scalars()]


async def test_the_log_is_pruned_only_from_its_oldest_end(api, db):
    """An old event behind a newer one stays: what is kept is every event after a position,
    so that a cursor is either resumable in full or refused."""
    await api.create()
    await age(db, 3600)
    await api.create()
    await api.create()
    async with db.transaction() as session:  # stamped long ago, committed last
        late = (
            (await session.exec(sa.select(EventLogEntry).order_by(EventLogEntry.position.desc())))
            .scalars()
            .first()
        )
        late.occurred_at -= timedelta(hours=2)
    pruned = await prune(db, datetime.now(UTC) - timedelta(minutes=30))
    assert pruned.events == 2  # the test directory's load, and the first create
    assert await _kinds(db) == ["INTERACTION_CREATED", "INTERACTION_CREATED"]


async def test_the_rolling_window_setting_prunes_in_the_background(database_url, db, api):
    await api.create()
    await age(db, 3 * 86400)
    await api.create()
    settings = Settings(
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        retention_days=2,
        retention_check_seconds=0.2,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        for _ in range(50):
            if await count(db, EventLogEntry) == 1:
                break
            await asyncio.sleep(0.1)
    assert await _kinds(db) == ["INTERACTION_CREATED"]


def test_binocular_prune_command(database_url, db, tmp_path):
    env = {"BINOCULAR_DATABASE_URL": database_url}
    done = binocular("prune", "--before", "2000-01-01", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "pruned 0 events and 0 ended interactions older than 2000-01-01T00:00:00+00:00" in (
        done.stderr
    )
    for arguments, message in (
        ([], "give either --before DATE or --days N"),
        (["--before", "yesterday"], "is not an ISO date or time"),
        (["--before", "2000-01-01", "--days", "3"], "give either"),
    ):
        refused = binocular("prune", *arguments, cwd=tmp_path, env=env)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr


async def test_a_cursor_is_expired_also_when_everything_was_pruned(server, live_api, db):

    _, feed = await created_and_connected(server, live_api)
    await prune(db, datetime.now(UTC) + timedelta(seconds=1))
    assert await count(db, EventLogEntry) == 0
    async with ws_client(server, live_api.token("ann")) as session:
        request = GraphQLRequest(INTERACTIONS, variable_values={"after": feed.events[0]["cursor"]})
        with pytest.raises(TransportQueryError) as raised:
            async for _ in session.subscribe(request):
                pass
    assert raised.value.errors[0]["extensions"]["code"] == "CURSOR_EXPIRED"
