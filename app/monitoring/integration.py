"""What the telephony platform reports: interactions arriving, agents joining and leaving,
interactions ending, presence. Each call is one transaction; a refused call writes nothing.

A call about an interaction locks it first and decides under the lock, which every writer of
the interaction's participants and sessions holds when it commits: what it reads next is one
moment. Creating an interaction and setting a presence each decide on one read."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from app.events.log import Recorded, presence_changed, record
from app.models import Interaction, MonitoringSession, Participant, Queue, User
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
    disconnect_participants,
    end_active_sessions,
    lock_interaction,
)
from app.monitoring.errors import IntegrationError

INTERACTION_FIELD = ("input", "interactionId")
AGENT_FIELD = ("input", "agentId")
MAX_TEXT = 200


def _insert(session: AsyncSession, table):
    dialect = session.bind.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


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
) -> Interaction:
    """A new WAITING interaction with its CUSTOMER; the same externalId returns the first."""
    external_id = _require_text(external_id, "externalId")
    customer_name = _require_text(customer_name, "customerName")
    queue = await session.get(Queue, queue_id) if queue_id is not None else None
    if queue is None:
        raise IntegrationError("No queue has this id.", ("input", "queueId"))
    now = utcnow()
    inserted = await session.exec(
        _insert(session, Interaction)
        .values(
            external_id=external_id,
            media_type=media_type,
            direction=direction,
            state=InteractionState.WAITING,
            queue_id=queue.id,
            started_at=now,
            version=0,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(Interaction.id)
    )
    new_id = inserted.scalar()
    if new_id is not None:
        record(session, Recorded(EventKind.INTERACTION_CREATED, now, new_id, queue.id))
        session.add(
            Participant(
                interaction_id=new_id,
                purpose=ParticipantPurpose.CUSTOMER,
                state=ParticipantState.CONNECTED,
                name=customer_name,
                connected_at=now,
            )
        )
    return (
        (await session.exec(sa.select(Interaction).where(Interaction.external_id == external_id)))
        .scalars()
        .one()
    )


async def _open_interaction(session: AsyncSession, interaction_id: int | None) -> Interaction:
    interaction = (
        await lock_interaction(session, interaction_id) if interaction_id is not None else None
    )
    if interaction is None:
        raise IntegrationError("No interaction has this id.", INTERACTION_FIELD)
    if interaction.state == InteractionState.ENDED:
        raise IntegrationError("This interaction has ended.", INTERACTION_FIELD)
    return interaction


async def _user(session: AsyncSession, user_id: int | None, field: tuple[str, ...]) -> User:
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise IntegrationError("No user has this id.", field)
    return user


async def connect_agent(
    session: AsyncSession, interaction_id: int | None, user_id: int | None
) -> Interaction:
    """The user joins as a connected AGENT; the interaction is CONNECTED. Idempotent."""
    interaction = await _open_interaction(session, interaction_id)
    agent = await _user(session, user_id, AGENT_FIELD)
    now = utcnow()
    joined = await session.exec(
        _insert(session, Participant)
        .values(
            interaction_id=interaction.id,
            purpose=ParticipantPurpose.AGENT,
            state=ParticipantState.CONNECTED,
            user_id=agent.id,
            name=agent.name,
            connected_at=now,
        )
        # The partial unique index on connected agents makes a repeat a no-op.
        .on_conflict_do_nothing(
            index_elements=["interaction_id", "user_id"],
            index_where=sa.text("purpose = 'AGENT' AND state = 'CONNECTED'"),
        )
        .returning(Participant.id)
    )
    if joined.scalar() is not None:
        interaction.state = InteractionState.CONNECTED
        interaction.version += 1
        record(session, _agent_event(EventKind.AGENT_CONNECTED, interaction, agent, now))
    return interaction


async def disconnect_agent(
    session: AsyncSession, interaction_id: int | None, user_id: int | None
) -> Interaction:
    """The agent leaves; their monitoring session ends; no agent left means WAITING again."""
    interaction = await _open_interaction(session, interaction_id)
    agent = await _user(session, user_id, AGENT_FIELD)
    now = utcnow()
    left = await disconnect_participants(
        session,
        sa.and_(
            Participant.interaction_id == interaction.id,
            Participant.user_id == agent.id,
            Participant.purpose == ParticipantPurpose.AGENT,
        ),
        now,
    )
    if not left:
        return interaction
    record(session, _agent_event(EventKind.AGENT_DISCONNECTED, interaction, agent, now))
    await end_active_sessions(
        session,
        interaction,
        MonitoringSession.agent_id == agent.id,
        MonitoringEndReason.AGENT_DISCONNECTED,
        now,
    )
    still_connected = (
        await session.exec(
            sa.select(sa.func.count())
            .select_from(Participant)
            .where(
                Participant.interaction_id == interaction.id,
                Participant.purpose == ParticipantPurpose.AGENT,
                Participant.state == ParticipantState.CONNECTED,
            )
        )
    ).scalar_one()
    if not still_connected:
        interaction.state = InteractionState.WAITING
    interaction.version += 1
    return interaction


async def end_interaction(session: AsyncSession, interaction_id: int | None) -> Interaction:
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
    )
    await disconnect_participants(session, Participant.interaction_id == interaction.id, now)
    interaction.state = InteractionState.ENDED
    interaction.ended_at = now
    interaction.version += 1
    record(
        session, Recorded(EventKind.INTERACTION_ENDED, now, interaction.id, interaction.queue_id)
    )
    return interaction


def _agent_event(kind: EventKind, interaction: Interaction, agent: User, now) -> Recorded:
    return Recorded(kind, now, interaction.id, interaction.queue_id, user_id=agent.id)


async def set_presence(session: AsyncSession, user_id: int | None, presence: Presence) -> User:
    """The user's presence; an event only when it actually changes (conditional, so that
    concurrent calls each see the presence the one before them set)."""
    user = await _user(session, user_id, ("input", "userId"))
    changed = await session.exec(
        sa.update(User)
        .where(User.id == user.id, User.presence != presence)
        .values(presence=presence)
        .returning(User.id)
    )
    if changed.scalar() is not None:
        record(session, presence_changed(user.id, presence))
    await session.refresh(user)
    return user
