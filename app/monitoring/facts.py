"""What the monitoring rules need to know about one interaction, read in one place.

The GraphQL layer builds the same facts from its DataLoaders (for `monitorability`), the
mutations from the database (for `startMonitoring`): both then call the same rules. Either
way the facts come from one snapshot (or from under the interaction's lock), never from
statements that each see another moment.
"""

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Interaction, MonitoringSession, Participant, Queue, User
from app.models.enums import MonitoringState, ParticipantPurpose, ParticipantState


# Named tuples: immutable like frozen dataclasses, and built in a fraction of their time
# (the facts are built for every agent of a queue's activity, for `monitorability`).
class AgentFact(NamedTuple):
    user_id: int
    name: str
    division_id: int
    connected: bool


class InteractionFacts(NamedTuple):
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
        # Loops rather than generators: built for every agent of a queue's activity.
        active, ever_monitored = None, False
        for session in sessions:
            ever_monitored = True
            if session.state == _ACTIVE:
                active = session
                break
        agents = []
        for p in participants:
            if p.purpose == _AGENT:
                user = users[p.user_id]
                agents.append(AgentFact(p.user_id, user.name, user.division_id, p.state == _ON))
        return cls(
            interaction,
            queue.division_id,
            tuple(agents),
            active,
            users[active.monitor_id] if active else None,
            ever_monitored,
        )


_ACTIVE, _AGENT, _ON = MonitoringState.ACTIVE, ParticipantPurpose.AGENT, ParticipantState.CONNECTED


def user_ids_needed(
    participants: Iterable[Participant], sessions: Iterable[MonitoringSession]
) -> set[int]:
    ids = set()
    for p in participants:  # loops, as in build
        if p.purpose == _AGENT:
            ids.add(p.user_id)
    for s in sessions:
        if s.state == _ACTIVE:
            ids.add(s.monitor_id)
    return ids


_I, _P, _S, _U = (
    Interaction.__table__,
    Participant.__table__,
    MonitoringSession.__table__,
    User.__table__,
)
# Built once: the statements of every start and stop.
_INTERACTION_AND_QUEUE_DIVISION = (
    sa.select(_I, Queue.__table__.c.division_id)
    .join(Queue.__table__, Queue.__table__.c.id == _I.c.queue_id)
    .where(_I.c.id == sa.bindparam("interaction_id"))
)
_PARTICIPANTS = sa.select(_P).where(_P.c.interaction_id == sa.bindparam("interaction_id"))
_SESSIONS = sa.select(_S).where(_S.c.interaction_id == sa.bindparam("interaction_id"))
_USERS = sa.select(_U).where(_U.c.id.in_(sa.bindparam("user_ids", expanding=True)))


async def load_facts(session: AsyncSession, interaction_id: int) -> InteractionFacts | None:
    """Read the facts of one interaction in four statements; None when there is none.

    `session` must see one moment throughout: a `Database.read` session, or a transaction
    that holds the interaction's lock (lock_interaction)."""
    key = {"interaction_id": interaction_id}
    interaction = (await session.exec(_INTERACTION_AND_QUEUE_DIVISION, params=key)).first()
    if interaction is None:
        return None
    participants = (await session.exec(_PARTICIPANTS, params=key)).all()
    sessions = (await session.exec(_SESSIONS, params=key)).all()
    user_ids = user_ids_needed(participants, sessions)
    users = {}
    if user_ids:
        found = await session.exec(_USERS, params={"user_ids": list(user_ids)})
        users = {user.id: user for user in found}
    # The interaction's row carries its queue's division_id.
    return InteractionFacts.build(interaction, interaction, participants, sessions, users)
