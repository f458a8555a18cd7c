"""Read, validate and upsert a directory file. Everything is checked before anything is
written, and the upsert is one transaction: a bad file writes nothing."""

import json
from pathlib import Path

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.db import Database
from app.events.log import directory_changed, presence_changed, record
from app.models import Division, Queue, QueueMember, User
from app.models.enums import MonitoringPermission, Presence, Role


class DirectoryFileError(ValueError):
    """The file is refused; the message names the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class DivisionEntry(_Entry):
    pass


class UserEntry(_Entry):
    division: str
    roles: list[Role] = Field(default_factory=list)
    presence: Presence | None = None
    # What the user may do when monitoring; omitted: their roles' defaults.
    permissions: list[MonitoringPermission] | None = None


class QueueEntry(_Entry):
    division: str
    members: list[str] = Field(default_factory=list)


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    divisions: list[DivisionEntry] = Field(default_factory=list)
    users: list[UserEntry] = Field(default_factory=list)
    queues: list[QueueEntry] = Field(default_factory=list)


def _entry_name(data: object, location: tuple) -> str:
    """`users[1] (bob)` for an error at ('users', 1, 'roles', 0)."""
    if len(location) < 2 or not isinstance(location[1], int):
        return ".".join(str(part) for part in location) or "the file"
    section, index = location[0], location[1]
    try:
        key = data[section][index].get("key")
    except (KeyError, IndexError, TypeError, AttributeError):
        key = None
    return f"{section}[{index}]" + (f" ({key})" if key else "")


def parse_directory(path: Path) -> DirectoryFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DirectoryFileError(f"cannot read {path}: {error.strerror}") from None
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise DirectoryFileError(
            f"{path} is not valid {path.suffix[1:].upper()}: {error}"
        ) from None
    try:
        directory = DirectoryFile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = _entry_name(data, first["loc"])
        field = ".".join(str(part) for part in first["loc"][2:])
        got = f" (got {first['input']!r})" if first["type"] == "enum" else ""
        raise DirectoryFileError(
            f"{where}: {field + ': ' if field else ''}{first['msg']}{got}"
        ) from None
    _check_references(directory)
    return directory


def _check_references(directory: DirectoryFile) -> None:
    _check_unique("divisions", directory.divisions)
    _check_unique("users", directory.users)
    _check_unique("queues", directory.queues)
    divisions = {d.key for d in directory.divisions}
    users = {u.key for u in directory.users}
    for index, user in enumerate(directory.users):
        if user.division not in divisions:
            raise DirectoryFileError(
                f"users[{index}] ({user.key}): unknown division {user.division!r}"
            )
    for index, queue in enumerate(directory.queues):
        if queue.division not in divisions:
            raise DirectoryFileError(
                f"queues[{index}] ({queue.key}): unknown division {queue.division!r}"
            )
        for member in queue.members:
            if member not in users:
                raise DirectoryFileError(
                    f"queues[{index}] ({queue.key}): unknown member {member!r}"
                )


def _check_unique(section: str, entries: list[_Entry]) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.key in seen:
            raise DirectoryFileError(f"{section}[{index}] ({entry.key}): duplicate key")
        seen.add(entry.key)


async def load_directory(db: Database, directory: DirectoryFile) -> dict[str, int]:
    """Upsert what the file names; delete nothing. Returns how many rows changed per table."""
    changed = {"divisions": 0, "users": 0, "queues": 0, "queue members": 0}
    async with db.transaction() as session:
        # First, lock the users it may change: a presence event must be ordered after those
        # of concurrent setPresence calls it waited for (app/events/log.py).
        await session.exec(
            sa.select(User.id)
            .where(User.key.in_([u.key for u in directory.users]))
            .with_for_update()
        )
        divisions = await _upsert(
            session,
            Division,
            directory.divisions,
            lambda e, _: {"name": e.name},
            changed,
            "divisions",
        )
        division_ids = {key: row.id for key, row in divisions.items()}
        presence_changes: list[tuple[str, Presence]] = []

        def user_values(entry: UserEntry, existing: User | None) -> dict:
            values = {
                "name": entry.name,
                "division_id": division_ids[entry.division],
                "roles": sorted(role.value for role in entry.roles),
                "permissions": None
                if entry.permissions is None
                else sorted({p.value for p in entry.permissions}),
            }
            if entry.presence is not None:
                values["presence"] = entry.presence
                if existing is not None and existing.presence != entry.presence:
                    presence_changes.append((entry.key, entry.presence))
            elif existing is None:
                values["presence"] = Presence.OFFLINE
            return values

        users = await _upsert(session, User, directory.users, user_values, changed, "users")
        for key, presence in presence_changes:
            record(session, presence_changed(users[key].id, presence))
        queues = await _upsert(
            session,
            Queue,
            directory.queues,
            lambda e, _: {"name": e.name, "division_id": division_ids[e.division]},
            changed,
            "queues",
        )
        for entry in directory.queues:
            queue_id = queues[entry.key].id
            wanted = {users[member].id for member in entry.members}
            current = set(
                (
                    await session.exec(
                        sa.select(QueueMember.user_id).where(QueueMember.queue_id == queue_id)
                    )
                ).scalars()
            )
            if gone := current - wanted:
                await session.exec(
                    sa.delete(QueueMember).where(
                        QueueMember.queue_id == queue_id, QueueMember.user_id.in_(gone)
                    )
                )
            session.add_all(QueueMember(queue_id=queue_id, user_id=uid) for uid in wanted - current)
            changed["queue members"] += len(gone) + len(wanted - current)
        if any(changed.values()):
            record(session, directory_changed())
    return changed


async def _upsert(session, model, entries, values_of, changed: dict, label: str) -> dict:
    existing = {
        row.key: row
        for row in (
            await session.exec(sa.select(model).where(model.key.in_([e.key for e in entries])))
        ).scalars()
    }
    rows = {}
    for entry in entries:
        row = existing.get(entry.key)
        values = values_of(entry, row)
        if row is None:
            row = model(key=entry.key, **values)
            session.add(row)
            changed[label] += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            changed[label] += 1
        rows[entry.key] = row
    await session.flush()
    return rows
