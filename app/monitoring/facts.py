"""What the monitoring rules need to know about one interaction, read in one place.

The GraphQL layer builds the same facts from its DataLoaders (for `monitorability`), the
mutations from the database (for `startMonitoring`): both then call the same rules. Either
way the facts come from one snapshot (or from under the interaction's lock), never from
statements that each see another moment.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Interaction, MonitoringSession, Participant, Queue, User
from app.models.enums import MonitoringState, ParticipantPurpose, ParticipantState


@dataclass(frozen=True)
class AgentFact:
    user_id: int
    name: str
    division_id: int
    connected: bool


@dataclass(frozen=True)
class InteractionFacts:
    interaction: Interaction
    queue_division_id: int
    agents: tuple[AgentFact, ...]
    active_session: MonitoringSession | None
    active_monitor: User | None
    ever_monitored: bool

    @property
    def connected_agents(self) -> list[AgentFact]:
        return [agent for agent in self.agents if agent.connected]

    @classmethod
    def build(
        cls,
        interaction: Interaction,
        queue: Queue,
        participants: Iterable[Participant],
        sessions: Iterable[MonitoringSession],
        users: Mapping[int, User],
    ) -> "InteractionFacts":
        """`users` must hold every agent of `participants` and the active session's monitor."""
        sessions = list(sessions)
        active = next((s for s in sessions if s.state == MonitoringState.ACTIVE), None)
        agents = tuple(
            AgentFact(
                user_id=p.user_id,
                name=users[p.user_id].name,
                division_id=users[p.user_id].division_id,
                connected=p.state == ParticipantState.CONNECTED,
            )
            for p in participants
            if p.purpose == ParticipantPurpose.AGENT
        )
        return cls(
            interaction=interaction,
            queue_division_id=queue.division_id,
            agents=agents,
            active_session=active,
            active_monitor=users[active.monitor_id] if active else None,
            ever_monitored=bool(sessions),
        )


def user_ids_needed(
    participants: Iterable[Participant], sessions: Iterable[MonitoringSession]
) -> set[int]:
    ids = {p.user_id for p in participants if p.purpose == ParticipantPurpose.AGENT}
    ids |= {s.monitor_id for s in sessions if s.state == MonitoringState.ACTIVE}
    return ids


async def load_facts(session: AsyncSession, interaction_id: int) -> InteractionFacts | None:
    """Read the facts of one interaction in four statements; None when there is none.

    `session` must see one moment throughout: a `Database.read` session, or a transaction
    that holds the interaction's lock (lock_interaction)."""
    row = (
        await session.exec(
            sa.select(Interaction, Queue)
            .join(Queue, Queue.id == Interaction.queue_id)
            .where(Interaction.id == interaction_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return None
    interaction, queue = row
    participants = (
        (
            await session.exec(
                sa.select(Participant)
                .where(Participant.interaction_id == interaction_id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    sessions = (
        (
            await session.exec(
                sa.select(MonitoringSession)
                .where(MonitoringSession.interaction_id == interaction_id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    user_ids = user_ids_needed(participants, sessions)
    users = {}
    if user_ids:
        found = await session.exec(sa.select(User).where(User.id.in_(user_ids)))
        users = {user.id: user for user in found.scalars()}
    return InteractionFacts.build(interaction, queue, participants, sessions, users)
