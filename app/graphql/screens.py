"""The two screens a supervisor keeps open, read for one viewer: Performance > Queue activity
and their own interaction panel. A query answers them once; a live view (app/graphql/live)
reads them again as its snapshot."""

from datetime import UTC, datetime

import sqlalchemy as sa

from app import models
from app.graphql.loaders import Loaders
from app.graphql.prefetch import prefetch_interactions
from app.graphql.types import (
    Interaction,
    MonitoringSession,
    PanelEntry,
    Queue,
    QueueActivity,
    QueueAgent,
    User,
)
from app.models.enums import InteractionState as State
from app.models.enums import MonitoringState as SessionState
from app.models.enums import ParticipantPurpose, ParticipantState, Presence

IN_PROGRESS = (State.WAITING, State.CONNECTED)

_I, _U, _M = models.Interaction, models.User, models.QueueMember
# Built once, the queue bound when they run: building a statement costs about as much CPU
# as running it.
_IN_PROGRESS_IN_QUEUE = (
    sa.select(_I.__table__)
    .where(_I.queue_id == sa.bindparam("queue_id"), _I.state.in_(IN_PROGRESS))
    .order_by(_I.started_at, _I.id)
)
_ON_QUEUE_AGENTS = (
    sa.select(_U.__table__)
    .join(_M, _M.user_id == _U.id)
    .where(_M.queue_id == sa.bindparam("queue_id"), _U.presence == Presence.ON_QUEUE)
    .order_by(_U.name, _U.id)
)


async def read_queue_activity(
    loaders: Loaders, queue: models.Queue, wanted: frozenset[str]
) -> QueueActivity:
    """A queue's in-progress interactions and its On Queue agents, with what `wanted` (the
    selected field names below) needs prefetched."""
    as_of = datetime.now(UTC)
    in_progress = await loaders.rows(_IN_PROGRESS_IN_QUEUE, {"queue_id": queue.id})
    agents = await loaders.rows(_ON_QUEUE_AGENTS, {"queue_id": queue.id})
    await prefetch_interactions(loaders, in_progress, wanted)
    await prefetch_agents(loaders, agents, wanted)
    return QueueActivity(
        queue=Queue.of(queue),
        as_of=as_of,
        waiting=[Interaction.of(r) for r in in_progress if r.state == State.WAITING],
        interacting=[Interaction.of(r) for r in in_progress if r.state == State.CONNECTED],
        on_queue_agents=[QueueAgent(agent=User.of(u)) for u in agents],
    )


async def prefetch_agents(loaders: Loaders, agents: list, wanted: frozenset[str]) -> None:
    """Prime what On Queue agents' rows need: their in-progress interactions, and those
    interactions' own reads."""
    if agents and "interactions" in wanted:
        groups = await loaders.agent_interactions.fetch_many([u.id for u in agents])
        await prefetch_interactions(loaders, [row for group in groups for row in group], wanted)


async def read_panel(loaders: Loaders, viewer_id: int, wanted: frozenset[str]) -> list[PanelEntry]:
    """The viewer's interaction panel: what they handle as a connected agent or monitor, in
    progress, oldest first."""
    I, P, S = models.Interaction, models.Participant, models.MonitoringSession
    handled = await loaders.rows(
        sa.select(I.__table__)
        .join(P, P.interaction_id == I.id)
        .where(
            P.user_id == viewer_id,
            P.purpose == ParticipantPurpose.AGENT,
            P.state == ParticipantState.CONNECTED,
            I.state != State.ENDED,
        )
    )
    monitored = await loaders.rows(
        sa.select(S.__table__).where(S.monitor_id == viewer_id, S.state == SessionState.ACTIVE)
    )
    watched = await loaders.interaction.load_many([s.interaction_id for s in monitored])
    await prefetch_interactions(loaders, [*handled, *watched], wanted)
    entries = {
        row.id: PanelEntry(interaction=Interaction.of(row), monitoring=False, session=None)
        for row in handled
    }
    for session_row, row in zip(monitored, watched, strict=True):
        entries[row.id] = PanelEntry(
            interaction=Interaction.of(row),
            monitoring=True,
            session=MonitoringSession.of(session_row),
        )
    return sorted(entries.values(), key=lambda e: (e.interaction.started_at, e.interaction.pk))
