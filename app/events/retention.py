"""Retention: deleting the oldest events and the interactions that ended long ago.

Both go in small batches, each its own short transaction, so that writers wait at most for
one batch. The log is pruned from its oldest end only, so that what is kept is always every
event after some position: a subscriber resuming from a cursor before it learns so
(CursorExpired), never skips silently.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.db import Database
from app.models import (
    EventLogEntry,
    EventRetention,
    Interaction,
    MonitoringModeChange,
    MonitoringSession,
    Participant,
)
from app.models.columns import utcnow

logger = logging.getLogger("binocular.retention")

BATCH = 1000


@dataclass
class Pruned:
    events: int = 0
    interactions: int = 0


async def prune(db: Database, before: datetime, batch: int = BATCH) -> Pruned:
    """Delete the events recorded before `before`, then the interactions (with their
    participants and sessions) that ended before it and before every event still kept."""
    pruned = Pruned()
    while (deleted := await _prune_events(db, before, batch)) > 0:
        pruned.events += deleted
    async with db.read() as session:
        oldest_kept = (
            await session.exec(
                sa.select(EventLogEntry.occurred_at)
                .order_by(EventLogEntry.xid, EventLogEntry.position)
                .limit(1)
            )
        ).scalar()
    # An interaction's events all happened by its end: one that ended before the oldest
    # event kept has none left in the log.
    horizon = min(before, oldest_kept) if oldest_kept is not None else before
    while (deleted := await _prune_interactions(db, horizon, batch)) > 0:
        pruned.interactions += deleted
    return pruned


async def _prune_events(db: Database, before: datetime, batch: int) -> int:
    """One batch of the log's oldest end: the events up to the first one at or after
    `before`; the last one's cursor is kept, so that resuming from before it is refused."""
    E, R = EventLogEntry, EventRetention
    async with db.transaction() as session:
        oldest = (
            await session.exec(
                sa.select(E.xid, E.position, E.occurred_at).order_by(E.xid, E.position).limit(batch)
            )
        ).all()
        old = 0
        while old < len(oldest) and oldest[old].occurred_at < before:
            old += 1
        if old:
            last = oldest[old - 1]
            await session.exec(
                sa.delete(E).where(
                    sa.tuple_(E.xid, E.position) <= sa.tuple_(last.xid, last.position)
                )
            )
            await session.exec(
                sa.update(R).where(R.id == 1).values(xid=last.xid, position=last.position)
            )
        return old


async def _prune_interactions(db: Database, before: datetime, batch: int) -> int:
    I, P, S, C = Interaction, Participant, MonitoringSession, MonitoringModeChange
    async with db.transaction() as session:
        ids = list(
            (
                await session.exec(
                    sa.select(I.id).where(I.ended_at < before).order_by(I.ended_at).limit(batch)
                )
            ).scalars()
        )
        if ids:
            of_those = sa.select(S.id).where(S.interaction_id.in_(ids))
            await session.exec(sa.delete(C).where(C.session_id.in_(of_those)))
            await session.exec(sa.delete(S).where(S.interaction_id.in_(ids)))
            await session.exec(sa.delete(P).where(P.interaction_id.in_(ids)))
            await session.exec(sa.delete(I).where(I.id.in_(ids)))
        return len(ids)


async def keep_window(db: Database, window: timedelta, every_seconds: float) -> None:
    """Prune what is older than `window`, now and then every `every_seconds`, until
    cancelled."""
    while True:
        try:
            pruned = await prune(db, utcnow() - window)
            if pruned.events or pruned.interactions:
                logger.info(
                    "pruned %s events and %s interactions older than %s",
                    pruned.events,
                    pruned.interactions,
                    window,
                )
        except Exception:  # a database hiccup must not stop retention: retry next time
            logger.exception("pruning failed; retrying later")
        await asyncio.sleep(every_seconds)
