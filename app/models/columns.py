"""Column types that behave the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes: timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Binocular stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None or value.tzinfo is UTC:  # PostgreSQL's, as asyncpg gives them
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum: type[Enum]) -> sa.Enum:
    """An enum stored as its name in a VARCHAR(24): no native type to migrate on PostgreSQL."""
    return sa.Enum(enum, native_enum=False, create_constraint=False, length=24)


def utcnow() -> datetime:
    return datetime.now(UTC)
