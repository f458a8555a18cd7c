"""startMonitoring and stopMonitoring.

The limits (one ACTIVE session per interaction, one session ever per SMS) are unique partial
indexes: concurrent starts all try to insert and the database lets one through. A start also
compare-and-sets the interaction's version, so that an end or a disconnect that committed
after the facts were read sends it round again instead of leaving an ACTIVE session behind.
"""

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.events.log import record_event
from app.models import MonitoringSession, Participant, User
from app.models.columns import utcnow
from app.models.enums import (
    MonitoringEndReason,
    MonitoringEventKind,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
)
from app.monitoring.changes import bump_version, end_active_sessions
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.facts import load_facts
from app.monitoring.rules import AlreadyMine, check_stop, decide_start

logger = logging.getLogger("binocular.monitoring")

# Each round re-reads the facts after losing a race; a loser normally settles in the second.
_ROUNDS = 8


class _Changed(Exception):
    """The interaction changed between reading the facts and writing the session."""


async def start_monitoring(
    db: Database, viewer: User, interaction_id: int | None, agent_user_id: int | None
) -> MonitoringSession:
    """Start monitoring, or return the viewer's own active session; MonitoringError else."""
    if interaction_id is None:
        raise MonitoringError(Code.NOT_FOUND, "This interaction does not exist.")
    lost_on: str | None = None
    for _ in range(_ROUNDS):
        try:
            async with db.transaction() as session:
                return await _try_start(session, viewer, interaction_id, agent_user_id)
        except IntegrityError as error:
            lost_on = str(error.orig)
            logger.info(
                "a start on interaction %s lost at a unique index; re-reading", interaction_id
            )
        except _Changed:
            continue
    # Still losing after every round: answer with the limit the database held.
    if lost_on and "sms_once" in lost_on:
        raise MonitoringError(Code.MONITORED_ONCE, "This SMS interaction was already monitored.")
    raise MonitoringError(Code.ALREADY_MONITORED, "Someone else is monitoring this interaction.")


async def _try_start(session, viewer: User, interaction_id: int, agent_user_id: int | None):
    facts = await load_facts(session, interaction_id)
    if facts is None:
        raise MonitoringError(Code.NOT_FOUND, "This interaction does not exist.")
    verdict = decide_start(viewer, facts, agent_user_id)
    if isinstance(verdict, AlreadyMine):
        return verdict.session
    now = utcnow()
    monitor = Participant(
        interaction_id=interaction_id,
        purpose=ParticipantPurpose.MONITOR,
        state=ParticipantState.CONNECTED,
        user_id=viewer.id,
        name=viewer.name,
        connected_at=now,
    )
    session.add(monitor)
    await session.flush()
    monitoring = MonitoringSession(
        interaction_id=interaction_id,
        media_type=facts.interaction.media_type,
        monitor_id=viewer.id,
        agent_id=verdict.agent.user_id,
        monitor_participant_id=monitor.id,
        state=MonitoringState.ACTIVE,
        started_at=now,
    )
    session.add(monitoring)
    await session.flush()  # the unique partial indexes decide here
    if not await bump_version(session, interaction_id, expected=facts.interaction.version):
        raise _Changed
    await record_event(
        session, MonitoringEventKind.STARTED, monitoring, facts.interaction.queue_id, now
    )
    return monitoring


async def stop_monitoring(db: Database, viewer: User, session_id: int | None) -> MonitoringSession:
    """End the session (STOPPED); an ended session comes back as it is."""
    async with db.transaction() as session:
        monitoring = (
            (
                await session.exec(
                    sa.select(MonitoringSession).where(MonitoringSession.id == session_id)
                )
            )
            .scalars()
            .first()
            if session_id is not None
            else None
        )
        facts = monitoring and await load_facts(session, monitoring.interaction_id)
        if monitoring is None or facts is None:
            raise MonitoringError(Code.NOT_FOUND, "This monitoring session does not exist.")
        agent = await session.get(User, monitoring.agent_id)
        check_stop(viewer, facts, monitoring, agent.division_id)
        if monitoring.state == MonitoringState.ENDED:
            return monitoring
        # Lock the interaction first, as every writer does, then end the session if still active.
        await bump_version(session, monitoring.interaction_id)
        ended = await end_active_sessions(
            session,
            facts.interaction,
            MonitoringSession.id == monitoring.id,
            MonitoringEndReason.STOPPED,
            utcnow(),
        )
        if ended:
            return ended[0]
        return await session.get(MonitoringSession, monitoring.id, populate_existing=True)
