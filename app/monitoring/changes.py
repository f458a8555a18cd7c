"""Writes shared by the rules: locking an interaction, ending sessions, version bumps.

Core statements over the tables, built once where they can be: the write path runs them for
every call of the telephony platform, and the ORM's unit of work and per-call statement
building were most of its CPU. Rows come back as plain rows.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from app.events.log import Recorded, record
from app.models import Interaction, MonitoringModeChange, MonitoringSession, Participant, User
from app.models.enums import (
    EventKind,
    MonitoringEndReason,
    MonitoringMode,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
)

INTERACTIONS = Interaction.__table__
PARTICIPANTS = Participant.__table__
SESSIONS = MonitoringSession.__table__
USERS = User.__table__
MODE_CHANGES = MonitoringModeChange.__table__

# FOR NO KEY UPDATE, the lock an UPDATE of non-key columns takes: unlike FOR UPDATE it does
# not wait for the KEY SHARE locks that concurrent inserts of participants and sessions hold
# on the row through their foreign keys. (SQLite: BEGIN IMMEDIATE holds everything.)
_LOCK = (
    sa.select(INTERACTIONS)
    .where(INTERACTIONS.c.id == sa.bindparam("interaction_id"))
    .with_for_update(key_share=True)
)
# The same, with the name of a user (None when there is no such user): one round trip.
_LOCK_WITH_USER = (
    sa.select(
        INTERACTIONS,
        sa.select(USERS.c.name)
        .where(USERS.c.id == sa.bindparam("user_id"))
        .scalar_subquery()
        .label("user_name"),
    )
    .where(INTERACTIONS.c.id == sa.bindparam("interaction_id"))
    .with_for_update(key_share=True, of=INTERACTIONS)
)
_BUMP = (
    sa.update(INTERACTIONS)
    .where(INTERACTIONS.c.id == sa.bindparam("interaction_id"))
    .values(version=INTERACTIONS.c.version + 1)
)
_BUMP_IF_UNCHANGED = _BUMP.where(INTERACTIONS.c.version == sa.bindparam("expected"))


async def lock_interaction(session: AsyncSession, interaction_id: int) -> sa.Row | None:
    """Read the interaction and hold its row until commit."""
    result = await session.exec(_LOCK, params={"interaction_id": interaction_id})
    return result.first()


async def lock_interaction_and_name(
    session: AsyncSession, interaction_id: int, user_id: int
) -> sa.Row | None:
    """lock_interaction, and the row's `user_name`: that user's name, None if no such user."""
    result = await session.exec(
        _LOCK_WITH_USER, params={"interaction_id": interaction_id, "user_id": user_id}
    )
    return result.first()


async def bump_version(
    session: AsyncSession, interaction_id: int, expected: int | None = None
) -> bool:
    """Mark the interaction changed; with `expected`, only if nobody changed it since.

    Every change of an interaction's participants or sessions bumps its version in the same
    transaction: a start's compare-and-set relies on it to know that nothing changed since
    its snapshot."""
    if expected is None:
        result = await session.exec(_BUMP, params={"interaction_id": interaction_id})
    else:
        result = await session.exec(
            _BUMP_IF_UNCHANGED, params={"interaction_id": interaction_id, "expected": expected}
        )
    return result.rowcount == 1


async def end_active_sessions(
    session: AsyncSession,
    interaction: sa.Row,
    condition: sa.ColumnElement[bool],
    reason: MonitoringEndReason,
    now: datetime,
    disconnect_monitors: bool = True,
    disclose: bool = False,
) -> list[sa.Row]:
    """End the interaction's ACTIVE sessions matching `condition` (on the sessions table),
    disconnect their MONITOR participants (unless the caller disconnects everyone anyway)
    and record MONITORING_ENDED events. With `disclose`, the end tells the agents (a take
    over): the sessions are disclosed from then on if they were not already.

    Conditional on state, so a session is ended exactly once whoever races to end it.
    """
    values = {"state": MonitoringState.ENDED, "ended_at": now, "end_reason": reason}
    if disclose:
        values["disclosed_at"] = sa.func.coalesce(
            SESSIONS.c.disclosed_at, sa.literal(now, SESSIONS.c.disclosed_at.type)
        )
    ended = (
        await session.exec(
            sa.update(SESSIONS)
            .where(
                SESSIONS.c.interaction_id == interaction.id,
                SESSIONS.c.state == MonitoringState.ACTIVE,
                condition,
            )
            .values(values)
            .returning(SESSIONS)
        )
    ).all()
    if ended and disconnect_monitors:
        await disconnect_participants(
            session, PARTICIPANTS.c.id.in_([s.monitor_participant_id for s in ended]), now
        )
    for monitoring in ended:
        record(session, session_event(EventKind.MONITORING_ENDED, monitoring, interaction.queue_id))
    return list(ended)


_ADD_MODE_CHANGE = sa.insert(MODE_CHANGES)


async def add_mode_change(
    session: AsyncSession, session_id: int, mode: MonitoringMode, at: datetime
) -> None:
    """Append to a session's audit trail: in `mode` from `at` on."""
    await session.exec(_ADD_MODE_CHANGE, params={"session_id": session_id, "mode": mode, "at": at})


def session_event(
    kind: EventKind, monitoring, queue_id: int, at: datetime | None = None
) -> Recorded:
    return Recorded(
        kind,
        at or monitoring.ended_at or monitoring.started_at,
        interaction_id=monitoring.interaction_id,
        queue_id=queue_id,
        session_id=monitoring.id,
        disclosed=monitoring.disclosed_at is not None,
        end_reason=monitoring.end_reason,
    )


async def disconnect_participants(
    session: AsyncSession, condition: sa.ColumnElement[bool], now: datetime
) -> list[int]:
    result = await session.exec(
        sa.update(PARTICIPANTS)
        .where(PARTICIPANTS.c.state == ParticipantState.CONNECTED, condition)
        .values(state=ParticipantState.DISCONNECTED, disconnected_at=now)
        .returning(PARTICIPANTS.c.id)
    )
    return list(result.scalars().all())


# The partial unique index on connected agents makes a repeat a no-op.
_JOIN_AS_AGENT = {
    dialect: insert(PARTICIPANTS)
    .on_conflict_do_nothing(
        index_elements=["interaction_id", "user_id"],
        index_where=sa.text("purpose = 'AGENT' AND state = 'CONNECTED'"),
    )
    .returning(PARTICIPANTS.c.id)
    for dialect, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


async def join_as_agent(
    session: AsyncSession, interaction_id: int, user_id: int, name: str, now: datetime
) -> bool:
    """The user joins as a connected AGENT; False where they already are one."""
    joined = await session.exec(
        _JOIN_AS_AGENT[session.bind.dialect.name],
        params={
            "interaction_id": interaction_id,
            "purpose": ParticipantPurpose.AGENT,
            "state": ParticipantState.CONNECTED,
            "user_id": user_id,
            "name": name,
            "connected_at": now,
        },
    )
    return joined.first() is not None


def agent_event(kind: EventKind, interaction, user_id: int, now: datetime) -> Recorded:
    return Recorded(kind, now, interaction.id, interaction.queue_id, user_id=user_id)
