"""Writes shared by the rules: locking an interaction, ending sessions, version bumps."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.events.log import Recorded, record
from app.models import Interaction, MonitoringSession, Participant
from app.models.enums import (
    EventKind,
    MonitoringEndReason,
    MonitoringState,
    ParticipantState,
)


async def lock_interaction(session: AsyncSession, interaction_id: int) -> Interaction | None:
    """Read the interaction and hold its row until commit (SQLite: BEGIN IMMEDIATE holds all).

    FOR NO KEY UPDATE, the lock an UPDATE of non-key columns takes: unlike FOR UPDATE it
    does not wait for the KEY SHARE locks that concurrent inserts of participants and
    sessions hold on the row through their foreign keys.
    """
    result = await session.exec(
        sa.select(Interaction)
        .where(Interaction.id == interaction_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return result.scalars().first()


async def bump_version(
    session: AsyncSession, interaction_id: int, expected: int | None = None
) -> bool:
    """Mark the interaction changed; with `expected`, only if nobody changed it since.

    Every change of an interaction's participants or sessions bumps its version in the same
    transaction (the integration's calls through the ORM): a start's compare-and-set relies
    on it to know that nothing changed since its snapshot."""
    statement = (
        sa.update(Interaction)
        .where(Interaction.id == interaction_id)
        .values(version=Interaction.version + 1)
    )
    if expected is not None:
        statement = statement.where(Interaction.version == expected)
    result = await session.exec(statement)
    return result.rowcount == 1


async def end_active_sessions(
    session: AsyncSession,
    interaction: Interaction,
    condition: sa.ColumnElement[bool],
    reason: MonitoringEndReason,
    now: datetime,
) -> list[MonitoringSession]:
    """End the interaction's ACTIVE sessions matching `condition`, disconnect their MONITOR
    participants and record MONITORING_ENDED events.

    Conditional on state, so a session is ended exactly once whoever races to end it.
    """
    ended = (
        (
            await session.exec(
                sa.update(MonitoringSession)
                .where(
                    MonitoringSession.interaction_id == interaction.id,
                    MonitoringSession.state == MonitoringState.ACTIVE,
                    condition,
                )
                .values(state=MonitoringState.ENDED, ended_at=now, end_reason=reason)
                .returning(MonitoringSession)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    if ended:
        await disconnect_participants(
            session, Participant.id.in_([s.monitor_participant_id for s in ended]), now
        )
    for monitoring in ended:
        record(session, session_event(EventKind.MONITORING_ENDED, monitoring, interaction.queue_id))
    return list(ended)


def session_event(kind: EventKind, monitoring: MonitoringSession, queue_id: int) -> Recorded:
    return Recorded(
        kind,
        monitoring.ended_at or monitoring.started_at,
        interaction_id=monitoring.interaction_id,
        queue_id=queue_id,
        session_id=monitoring.id,
        end_reason=monitoring.end_reason,
    )


async def disconnect_participants(
    session: AsyncSession, condition: sa.ColumnElement[bool], now: datetime
) -> list[int]:
    result = await session.exec(
        sa.update(Participant)
        .where(Participant.state == ParticipantState.CONNECTED, condition)
        .values(state=ParticipantState.DISCONNECTED, disconnected_at=now)
        .returning(Participant.id)
    )
    return list(result.scalars().all())
