"""What the telephony platform reports: interactions arriving, agents joining and leaving,
interactions ending, presence. Each call is one transaction; a refused call writes nothing.

A call about an interaction locks it first and decides under the lock, which every writer of
the interaction's participants and sessions holds when it commits: what it reads next is one
moment. Creating an interaction and setting a presence each decide on one read."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from app.events.log import Recorded, presence_changed, record
from app.models import Queue
from app.models.columns import utcnow
from app.models.enums import (
    Direction,
    EventKind,
    InteractionState,
    MediaType,
    MonitoringEndReason,
    ParticipantPurpose,
    ParticipantState,
    Presence,
)
from app.monitoring.changes import (
    INTERACTIONS,
    PARTICIPANTS,
    SESSIONS,
    USERS,
    agent_event,
    disconnect_participants,
    end_active_sessions,
    join_as_agent,
    lock_interaction,
    lock_interaction_and_name,
)
from app.monitoring.errors import IntegrationError

QUEUES = Queue.__table__

INTERACTION_FIELD = ("input", "interactionId")
AGENT_FIELD = ("input", "agentId")
MAX_TEXT = 200


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name


_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _both(build):
    """A statement built once per dialect (the upserts differ in SQLAlchemy's API only)."""
    return {dialect: build(insert) for dialect, insert in _INSERT.items()}


def _param(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(name, type_=column.type)


_I, _P = INTERACTIONS.c, PARTICIPANTS.c
_NEW_COLUMNS = ("external_id", "media_type", "direction", "state", "queue_id", "started_at")

# A new interaction, only in an existing queue, and only once per externalId: the queue's
# existence and the upsert in one statement.
_CREATE = _both(
    lambda insert: (
        insert(INTERACTIONS)
        .from_select(
            [*_NEW_COLUMNS, "version"],
            sa.select(*(_param(name, _I[name]) for name in _NEW_COLUMNS), sa.literal(0)).where(
                QUEUES.c.id == sa.bindparam("queue_id_exists")
            ),
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(INTERACTIONS)
    )
)
_BY_EXTERNAL_ID = sa.select(INTERACTIONS).where(_I.external_id == sa.bindparam("external_id"))
_QUEUE_EXISTS = sa.select(QUEUES.c.id).where(QUEUES.c.id == sa.bindparam("queue_id"))
_ADD_PARTICIPANT = sa.insert(PARTICIPANTS)
_CONNECTED = (
    sa.update(INTERACTIONS)
    .where(_I.id == sa.bindparam("interaction_id"))
    .values(state=InteractionState.CONNECTED, version=_I.version + 1)
    .returning(INTERACTIONS)
)
_AGENTS_LEFT = (
    sa.select(_P.id)
    .where(
        _P.interaction_id == _I.id,
        _P.purpose == ParticipantPurpose.AGENT,
        _P.state == ParticipantState.CONNECTED,
    )
    .exists()
)
# After an agent left: WAITING again when no agent is left.
_AGENT_LEFT = (
    sa.update(INTERACTIONS)
    .where(_I.id == sa.bindparam("interaction_id"))
    .values(
        state=sa.case((_AGENTS_LEFT, _I.state), else_=sa.literal(InteractionState.WAITING.value)),
        version=_I.version + 1,
    )
    .returning(INTERACTIONS)
)
_ENDED = (
    sa.update(INTERACTIONS)
    .where(_I.id == sa.bindparam("interaction_id"))
    .values(state=InteractionState.ENDED, ended_at=sa.bindparam("now"), version=_I.version + 1)
    .returning(INTERACTIONS)
)
_SET_PRESENCE = (
    sa.update(USERS)
    .where(USERS.c.id == sa.bindparam("user_id"), USERS.c.presence != sa.bindparam("presence"))
    .values(presence=sa.bindparam("presence"))
    .returning(USERS)
)
_USER = sa.select(USERS).where(USERS.c.id == sa.bindparam("user_id"))


def _require_text(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise IntegrationError(f"{field} must not be empty.", ("input", field))
    if len(value) > MAX_TEXT:
        raise IntegrationError(f"{field} is longer than {MAX_TEXT} characters.", ("input", field))
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; refused on SQLite too, for one behaviour.
        raise IntegrationError(f"{field} must not contain NUL characters.", ("input", field))
    return value


async def create_interaction(
    session: AsyncSession,
    external_id: str,
    media_type: MediaType,
    direction: Direction,
    queue_id: int | None,
    customer_name: str,
) -> sa.Row:
    """A new WAITING interaction with its CUSTOMER; the same externalId returns the first."""
    external_id = _require_text(external_id, "externalId")
    customer_name = _require_text(customer_name, "customerName")
    if queue_id is None:
        raise IntegrationError("No queue has this id.", ("input", "queueId"))
    now = utcnow()
    created = (
        await session.exec(
            _CREATE[_dialect(session)],
            params={
                "external_id": external_id,
                "media_type": media_type,
                "direction": direction,
                "state": InteractionState.WAITING,
                "queue_id": queue_id,
                "queue_id_exists": queue_id,
                "started_at": now,
            },
        )
    ).first()
    if created is None:  # no such queue, or an externalId seen before
        if (await session.exec(_QUEUE_EXISTS, params={"queue_id": queue_id})).first() is None:
            raise IntegrationError("No queue has this id.", ("input", "queueId"))
        return (await session.exec(_BY_EXTERNAL_ID, params={"external_id": external_id})).one()
    await session.exec(
        _ADD_PARTICIPANT,
        params={
            "interaction_id": created.id,
            "purpose": ParticipantPurpose.CUSTOMER,
            "state": ParticipantState.CONNECTED,
            "name": customer_name,
            "connected_at": now,
        },
    )
    record(session, Recorded(EventKind.INTERACTION_CREATED, now, created.id, queue_id))
    return created


async def _open_interaction(
    session: AsyncSession, interaction_id: int | None, user_id: int | None
) -> sa.Row:
    """The interaction, locked, with the name of the agent (`user_name`)."""
    interaction = None
    if interaction_id is not None:
        interaction = await lock_interaction_and_name(session, interaction_id, user_id or -1)
    if interaction is None:
        raise IntegrationError("No interaction has this id.", INTERACTION_FIELD)
    if interaction.state == InteractionState.ENDED:
        raise IntegrationError("This interaction has ended.", INTERACTION_FIELD)
    if interaction.user_name is None:
        raise IntegrationError("No user has this id.", AGENT_FIELD)
    return interaction


async def connect_agent(
    session: AsyncSession, interaction_id: int | None, user_id: int | None
) -> sa.Row:
    """The user joins as a connected AGENT; the interaction is CONNECTED. Idempotent."""
    interaction = await _open_interaction(session, interaction_id, user_id)
    now = utcnow()
    if not await join_as_agent(session, interaction.id, user_id, interaction.user_name, now):
        return interaction
    record(session, agent_event(EventKind.AGENT_CONNECTED, interaction, user_id, now))
    return (await session.exec(_CONNECTED, params={"interaction_id": interaction.id})).one()


async def disconnect_agent(
    session: AsyncSession, interaction_id: int | None, user_id: int | None
) -> sa.Row:
    """The agent leaves; their monitoring session ends; no agent left means WAITING again."""
    interaction = await _open_interaction(session, interaction_id, user_id)
    now = utcnow()
    left = await disconnect_participants(
        session,
        sa.and_(
            _P.interaction_id == interaction.id,
            _P.user_id == user_id,
            _P.purpose == ParticipantPurpose.AGENT,
        ),
        now,
    )
    if not left:
        return interaction
    record(session, agent_event(EventKind.AGENT_DISCONNECTED, interaction, user_id, now))
    await end_active_sessions(
        session,
        interaction,
        SESSIONS.c.agent_id == user_id,
        MonitoringEndReason.AGENT_DISCONNECTED,
        now,
    )
    return (await session.exec(_AGENT_LEFT, params={"interaction_id": interaction.id})).one()


async def end_interaction(session: AsyncSession, interaction_id: int | None) -> sa.Row:
    """ENDED, every participant disconnected, an active session ended. Idempotent."""
    interaction = (
        await lock_interaction(session, interaction_id) if interaction_id is not None else None
    )
    if interaction is None:
        raise IntegrationError("No interaction has this id.", INTERACTION_FIELD)
    if interaction.state == InteractionState.ENDED:
        return interaction
    now = utcnow()
    await end_active_sessions(
        session,
        interaction,
        sa.true(),
        MonitoringEndReason.INTERACTION_ENDED,
        now,
        disconnect_monitors=False,  # everyone is, next
    )
    await disconnect_participants(session, _P.interaction_id == interaction.id, now)
    ended = (
        await session.exec(_ENDED, params={"interaction_id": interaction.id, "now": now})
    ).one()
    record(session, Recorded(EventKind.INTERACTION_ENDED, now, ended.id, ended.queue_id))
    return ended


async def set_presence(session: AsyncSession, user_id: int | None, presence: Presence) -> sa.Row:
    """The user's presence; an event only when it actually changes (conditional, so that
    concurrent calls each see the presence the one before them set)."""
    if user_id is not None:
        params = {"user_id": user_id, "presence": presence}
        changed = (await session.exec(_SET_PRESENCE, params=params)).first()
        if changed is not None:
            record(session, presence_changed(user_id, presence))
            return changed
        unchanged = (await session.exec(_USER, params={"user_id": user_id})).first()
        if unchanged is not None:
            return unchanged
    raise IntegrationError("No user has this id.", ("input", "userId"))
