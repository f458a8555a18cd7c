"""changeMonitoringMode and takeOverInteraction: what a supervisor does with their own
active session.

Each decides under the interaction's lock, as a stop does (app/monitoring/sessions.py):
every writer of the interaction's participants and sessions holds it when it commits, so
the session and the facts read next are one moment, and concurrent switches, stops and take
overs of one session run one after another.
"""

import sqlalchemy as sa

from app.db import Database
from app.events.log import record
from app.models import User
from app.models.columns import utcnow
from app.models.enums import EventKind, MonitoringEndReason, MonitoringMode, ParticipantPurpose
from app.monitoring.changes import (
    INTERACTIONS,
    MODE_CHANGES,
    PARTICIPANTS,
    SESSIONS,
    add_mode_change,
    agent_event,
    bump_version,
    disconnect_participants,
    end_active_sessions,
    join_as_agent,
    lock_interaction,
    session_event,
)
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.facts import InteractionFacts, load_facts
from app.monitoring.rules import check_change, check_take_over

_INTERACTION_OF_SESSION = sa.select(SESSIONS.c.interaction_id).where(
    SESSIONS.c.id == sa.bindparam("session_id")
)
_SESSION = sa.select(SESSIONS).where(SESSIONS.c.id == sa.bindparam("session_id"))
_DISCLOSED_AT = SESSIONS.c.disclosed_at
# Coaching and barging tell the agent; going back to MONITOR does not make them forget.
_SWITCH = (
    sa.update(SESSIONS)
    .where(SESSIONS.c.id == sa.bindparam("session_id"))
    .values(
        mode=sa.bindparam("mode"),
        disclosed_at=sa.case(
            (
                sa.bindparam("discloses", type_=sa.Boolean),
                sa.func.coalesce(_DISCLOSED_AT, sa.bindparam("now", type_=_DISCLOSED_AT.type)),
            ),
            else_=_DISCLOSED_AT,
        ),
    )
    .returning(SESSIONS)
)
_HISTORY = (
    sa.select(MODE_CHANGES)
    .where(MODE_CHANGES.c.session_id == sa.bindparam("session_id"))
    .order_by(MODE_CHANGES.c.at, MODE_CHANGES.c.id)
)
_INTERACTION = sa.select(INTERACTIONS).where(INTERACTIONS.c.id == sa.bindparam("interaction_id"))


async def _own_session(session, session_id: int | None) -> tuple[sa.Row, InteractionFacts]:
    """The session and its interaction's facts, under the interaction's lock."""
    interaction_id = None
    if session_id is not None:
        found = await session.exec(_INTERACTION_OF_SESSION, params={"session_id": session_id})
        interaction_id = found.scalar()  # a session's interaction never changes
    if interaction_id is None:
        raise MonitoringError(Code.NOT_FOUND, "This monitoring session does not exist.")
    await lock_interaction(session, interaction_id)
    monitoring = (await session.exec(_SESSION, params={"session_id": session_id})).one()
    return monitoring, await load_facts(session, interaction_id)


async def change_mode(
    db: Database, viewer: User, session_id: int | None, mode: MonitoringMode
) -> tuple[sa.Row, list[sa.Row]]:
    """Switch the viewer's active session to `mode`; the current mode again changes nothing.
    Returns the session and its mode history as the call left them (a later switch may
    commit before the caller reads them again)."""
    async with db.transaction() as session:
        monitoring, facts = await _own_session(session, session_id)
        check_change(viewer, facts, monitoring, mode)
        if monitoring.mode == mode:
            return monitoring, await _history(session, monitoring.id)
        now = utcnow()
        switched = (
            await session.exec(
                _SWITCH,
                params={
                    "session_id": monitoring.id,
                    "mode": mode,
                    "discloses": mode != MonitoringMode.MONITOR,
                    "now": now,
                },
            )
        ).one()
        await add_mode_change(session, monitoring.id, mode, now)
        await bump_version(session, monitoring.interaction_id)
        record(
            session,
            session_event(
                EventKind.MONITORING_MODE_CHANGED, switched, facts.interaction.queue_id, at=now
            ),
        )
        return switched, await _history(session, monitoring.id)


async def _history(session, session_id: int) -> list[sa.Row]:
    return list((await session.exec(_HISTORY, params={"session_id": session_id})).all())


async def take_over(db: Database, viewer: User, session_id: int | None) -> tuple[sa.Row, sa.Row]:
    """The viewer, monitoring a chat or SMS, becomes its agent in place of the monitored one;
    the session ends TAKEN_OVER. Returns the interaction and the session, as they are then."""
    async with db.transaction() as session:
        monitoring, facts = await _own_session(session, session_id)
        check_take_over(viewer, facts, monitoring)
        interaction = facts.interaction
        now = utcnow()
        # In the contract's order: the agent leaves, the supervisor joins, the session ends.
        left = await disconnect_participants(
            session,
            sa.and_(
                PARTICIPANTS.c.interaction_id == interaction.id,
                PARTICIPANTS.c.user_id == monitoring.agent_id,
                PARTICIPANTS.c.purpose == ParticipantPurpose.AGENT,
            ),
            now,
        )
        if left:
            record(
                session,
                agent_event(EventKind.AGENT_DISCONNECTED, interaction, monitoring.agent_id, now),
            )
        # Already an agent of it (the platform connected them too): nothing new.
        if await join_as_agent(session, interaction.id, viewer.id, viewer.name, now):
            record(session, agent_event(EventKind.AGENT_CONNECTED, interaction, viewer.id, now))
        (ended,) = await end_active_sessions(
            session,
            interaction,
            SESSIONS.c.id == monitoring.id,
            MonitoringEndReason.TAKEN_OVER,
            now,
            disclose=True,
        )
        # Still CONNECTED: the supervisor is an agent on it now.
        await bump_version(session, interaction.id)
        row = (await session.exec(_INTERACTION, params={"interaction_id": interaction.id})).one()
        return row, ended
