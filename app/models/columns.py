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

    def result_processor(self, dialect, coltype):
        if dialect.driver == "asyncpg":
            # asyncpg gives timestamptz values as aware UTC datetimes already: nothing to
            # do, and no call per value (a large list reads thousands).
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None or value.tzinfo is UTC:  # PostgreSQL's, as asyncpg gives them
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _NamedEnum(sa.Enum):
    """sa.Enum whose values read back through one dict lookup per value (a C call), rather
    than SQLAlchemy's processor, a Python function or two per value: a 1,000-interaction
    queueActivity reads about 7,000 of them. An unknown name raises KeyError (a
    LookupError, as sa.Enum's does)."""

    cache_ok = True

    def result_processor(self, dialect, coltype):
        if super(sa.Enum, self).result_processor(dialect, coltype) is not None:
            return super().result_processor(dialect, coltype)  # the driver converts first
        return {None: None, **{member.name: member for member in self.enum_class}}.__getitem__


def enum_column(enum: type[Enum]) -> sa.Enum:
    """An enum stored as its name in a VARCHAR(24): no native type to migrate on PostgreSQL."""
    return _NamedEnum(enum, native_enum=False, create_constraint=False, length=24)


def utcnow() -> datetime:
    return datetime.now(UTC)
