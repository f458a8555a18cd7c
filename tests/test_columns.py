"""app/models/columns.py on both backends: enums and UTC times read back as the rules expect
them, through the short paths (one dict lookup per enum value, none per time on asyncpg).
The short paths lean on SQLAlchemy's result processors: these tests keep that seam."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.models import Division, Interaction, Queue, User
from app.models.columns import UTCDateTime, enum_column
from app.models.enums import InteractionState, MediaType, Presence


async def test_enums_and_times_read_back(db):
    started = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    async with db.transaction() as session:
        session.add(Division(id=1, key="north", name="North"))
        session.add(Queue(id=1, key="billing", name="Billing", division_id=1))
        await session.flush()
        session.add(
            Interaction(
                external_id="x",
                media_type=MediaType.SMS,
                direction="INBOUND",
                state=InteractionState.WAITING,
                queue_id=1,
                started_at=started,
            )
        )
    Table = Interaction.__table__
    async with db.snapshot() as connection:
        row = (await connection.execute(sa.select(Table))).one()
    assert (row.media_type, row.state) == (MediaType.SMS, InteractionState.WAITING)
    assert row.media_type is MediaType.SMS and row.ended_at is None
    assert row.started_at == started and row.started_at.tzinfo is UTC


async def test_a_name_that_is_no_member_is_refused(db):
    async with db.transaction() as session:
        session.add(Division(id=1, key="north", name="North"))
        await session.flush()
        session.add(User(key="ann", name="Ann", division_id=1, roles=[]))
    async with db.transaction() as session:
        await session.exec(sa.text("UPDATE users SET presence = 'ASLEEP'"))
    async with db.snapshot() as connection:
        result = await connection.execute(sa.select(User.__table__.c.presence))
        with pytest.raises(LookupError):
            result.all()


@pytest.mark.parametrize("url", ["postgresql+asyncpg://", "sqlite+aiosqlite://"])
def test_the_processors_in_use(url):
    dialect = sa.create_mock_engine(url, executor=None).dialect
    names = enum_column(Presence).dialect_impl(dialect).result_processor(dialect, None)
    assert names("ON_QUEUE") is Presence.ON_QUEUE and names(None) is None
    times = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    if dialect.driver == "asyncpg":
        assert times is None  # asyncpg's timestamptz values are aware UTC datetimes already
    else:  # SQLite keeps naive UTC text
        assert times("2026-01-02 03:04:00") == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
