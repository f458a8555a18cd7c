"""The directory: divisions, users and queues, loaded by `binocular directory load`."""

import functools

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import enum_column
from app.models.enums import Presence, Role
from app.records import remembered_per_record


class Division(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)


class User(SQLModel, table=True):
    __tablename__ = "users"  # "user" is reserved on PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    division_id: int = Field(foreign_key="division.id", index=True)
    roles: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    presence: Presence = Field(default=Presence.OFFLINE, sa_type=enum_column(Presence))
    # Monitoring permissions (MonitoringPermission names) from the directory; null: those of
    # the user's roles (app/monitoring/permissions.py).
    permissions: list[str] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))


class Queue(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    division_id: int = Field(foreign_key="division.id", index=True)


class QueueMember(SQLModel, table=True):
    __tablename__ = "queue_member"

    queue_id: int = Field(foreign_key="queue.id", primary_key=True)
    user_id: int = Field(foreign_key="users.id", primary_key=True, index=True)


@remembered_per_record
def role_set(user) -> frozenset[Role]:
    """A users row's roles (an ORM instance or a Core row)."""
    return _role_set(tuple(user.roles))


@functools.lru_cache(maxsize=64)
def _role_set(roles: tuple[str, ...]) -> frozenset[Role]:
    # Asked for by every monitoring decision: decided once per list of roles.
    return frozenset(Role(role) for role in roles)
