"""startMonitoring and stopMonitoring.

A start decides from facts read in one snapshot (`Database.read`), so that every answer is
one that a single moment justifies. A start that may go ahead then writes in a transaction of
its own. The limits (one ACTIVE session per interaction, one session ever per SMS) are unique
partial indexes: concurrent starts all try to insert and the database lets one through. The
write also compare-and-sets the interaction's version, which every change of the interaction's
participants or sessions bumps in the same transaction, so that it commits only if nothing
changed since the snapshot. A loser goes round again with a new snapshot.

(The read and the write are two transactions: the read is a read-only snapshot like every
query's, and the compare-and-set tells the write whether what was read still holds.)

A stop decides under the interaction's lock, which every other writer of the interaction's
participants and sessions holds when it commits.
"""

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.events.log import record
from app.models import User
from app.models.columns import utcnow
from app.models.enums import (
    EventKind,
    MonitoringEndReason,
    MonitoringMode,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
)
from app.monitoring.changes import (
    PARTICIPANTS,
    SESSIONS,
    USERS,
    add_mode_change,
    bump_version,
    end_active_sessions,
    lock_interaction,
    session_event,
)
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.facts import AgentFact, InteractionFacts, load_facts
from app.monitoring.rules import AlreadyMine, check_stop, decide_start

logger = logging.getLogger("binocular.monitoring")

# Each round reads a new snapshot after losing a race; a loser normally settles in the second.
_ROUNDS = 8


class _Changed(Exception):
    """The interaction changed between the snapshot and the write."""


async def start_monitoring(
    db: Database,
    viewer: User,
    interaction_id: int | None,
    agent_user_id: int | None,
    mode: MonitoringMode = MonitoringMode.MONITOR,
) -> sa.Row:
    """Start monitoring in `mode`, or return the viewer's own active session (in whatever
    mode it is); MonitoringError else."""
    for _ in range(_ROUNDS):
        facts = await _facts_at_one_moment(db, interaction_id)
        verdict = decide_start(viewer, facts, agent_user_id, mode)
        if isinstance(verdict, AlreadyMine):
            return verdict.session
        try:
            async with db.transaction() as session:
                return await _write_start(session, viewer, facts, verdict.agent, mode)
        except IntegrityError:
            logger.info("start on interaction %s lost at a unique index: again", interaction_id)
        except _Changed:
            logger.info("interaction %s changed after a start's snapshot: again", interaction_id)
    # Only a storm of changes to one interaction gets here: no answer rather than one that
    # no moment justifies.
    raise RuntimeError(f"a start on interaction {interaction_id} lost {_ROUNDS} rounds in a row")


async def _facts_at_one_moment(db: Database, interaction_id: int | None) -> InteractionFacts:
    facts = None
    if interaction_id is not None:
        async with db.read() as session:
            facts = await load_facts(session, interaction_id)
    if facts is None:
        raise MonitoringError(Code.NOT_FOUND, "This interaction does not exist.")
    return facts


_ADD_MONITOR = sa.insert(PARTICIPANTS).returning(PARTICIPANTS.c.id)
_ADD_SESSION = sa.insert(SESSIONS).returning(SESSIONS)


async def _write_start(
    session, viewer: User, facts: InteractionFacts, agent: AgentFact, mode: MonitoringMode
) -> sa.Row:
    interaction = facts.interaction
    now = utcnow()
    monitor_id = (
        await session.exec(
            _ADD_MONITOR,
            params={
                "interaction_id": interaction.id,
                "purpose": ParticipantPurpose.MONITOR,
                "state": ParticipantState.CONNECTED,
                "user_id": viewer.id,
                "name": viewer.name,
                "connected_at": now,
            },
        )
    ).scalar_one()
    monitoring = (  # the unique partial indexes decide here
        await session.exec(
            _ADD_SESSION,
            params={
                "interaction_id": interaction.id,
                "media_type": interaction.media_type,
                "monitor_id": viewer.id,
                "agent_id": agent.user_id,
                "monitor_participant_id": monitor_id,
                "state": MonitoringState.ACTIVE,
                "started_at": now,
                "mode": mode,
                # Coaching or barging tells the agent from the start.
                "disclosed_at": now if mode != MonitoringMode.MONITOR else None,
            },
        )
    ).one()
    if not await bump_version(session, interaction.id, expected=interaction.version):
        raise _Changed
    await add_mode_change(session, monitoring.id, mode, now)
    record(session, session_event(EventKind.MONITORING_STARTED, monitoring, interaction.queue_id))
    return monitoring


# A session with the division of its agent: what a stop decides on besides the facts.
_SESSION_AND_AGENT_DIVISION = (
    sa.select(SESSIONS, USERS.c.division_id.label("agent_division_id"))
    .join(USERS, USERS.c.id == SESSIONS.c.agent_id)
    .where(SESSIONS.c.id == sa.bindparam("session_id"))
)
_INTERACTION_OF_SESSION = sa.select(SESSIONS.c.interaction_id).where(
    SESSIONS.c.id == sa.bindparam("session_id")
)


async def stop_monitoring(db: Database, viewer: User, session_id: int | None) -> sa.Row:
    """End the session (STOPPED); an ended session comes back as it is."""
    async with db.transaction() as session:
        # The session's interaction never changes: read it before the lock.
        interaction_id = None
        if session_id is not None:
            found = await session.exec(_INTERACTION_OF_SESSION, params={"session_id": session_id})
            interaction_id = found.scalar()
        if interaction_id is None:
            raise MonitoringError(Code.NOT_FOUND, "This monitoring session does not exist.")
        # Lock first, as every writer does; what is read next holds until commit.
        await lock_interaction(session, interaction_id)
        monitoring = (
            await session.exec(_SESSION_AND_AGENT_DIVISION, params={"session_id": session_id})
        ).one()
        facts = await load_facts(session, interaction_id)
        check_stop(viewer, facts, monitoring, monitoring.agent_division_id)
        if monitoring.state == MonitoringState.ENDED:
            return monitoring
        await bump_version(session, interaction_id)
        (ended,) = await end_active_sessions(
            session,
            facts.interaction,
            SESSIONS.c.id == monitoring.id,
            MonitoringEndReason.STOPPED,
            utcnow(),
        )
        return ended
