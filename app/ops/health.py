"""Liveness and readiness."""

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from app.db import Database, alembic_config


class Readiness:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())

    async def problems(self) -> list[str]:
        """What keeps the process from serving: empty when ready."""
        try:
            async with self._db.read() as session:
                versions = set(
                    (await session.exec(sa.text("SELECT version_num FROM alembic_version")))
                    .scalars()
                    .all()
                )
        except Exception:  # noqa: BLE001 - whatever the failure, the database is not usable
            return ["database unreachable or not migrated"]
        if versions != self._heads:
            return [
                f"migrations not at head (database {sorted(versions)}, code {sorted(self._heads)})"
            ]
        return []
