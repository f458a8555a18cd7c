"""Query root: the supervisor's read side."""

from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
import strawberry

from app import models
from app.graphql.enums import InteractionState, MediaType, MonitoringMode, MonitoringState
from app.graphql.errors import bad_user_input
from app.graphql.ids import RowId, decode_cursor, decode_id, decode_node_id, encode_cursor
from app.graphql.prefetch import prefetch_interactions, selected_names, settled
from app.graphql.screens import read_panel, read_queue_activity
from app.graphql.types import (
    Division,
    Info,
    Interaction,
    InteractionConnection,
    InteractionEdge,
    MonitoringSession,
    MonitoringSessionConnection,
    MonitoringSessionEdge,
    Node,
    PageInfo,
    PanelEntry,
    Participant,
    Queue,
    QueueActivity,
    QueueConnection,
    QueueEdge,
    User,
)
from app.models.enums import (
    ParticipantPurpose,
)

DEFAULT_PAGE = 25
MAX_PAGE = 100


@strawberry.input(description="Narrows the interactions list; every given condition must hold.")
class InteractionFilter:
    queue_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Interactions in any of these queues."
    )
    agent_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Interactions any of these users took part in as an agent."
    )
    media_types: list[MediaType] | None = strawberry.field(
        default=None, description="Interactions of any of these media types."
    )
    states: list[InteractionState] | None = strawberry.field(
        default=None, description="Interactions in any of these states."
    )
    started_after: datetime | None = strawberry.field(
        default=None, description="Started at or after this time (UTC if no offset is given)."
    )
    started_before: datetime | None = strawberry.field(
        default=None, description="Started before this time (UTC if no offset is given)."
    )


@strawberry.input(description="Narrows the monitoring audit; every given condition must hold.")
class MonitoringSessionFilter:
    monitor_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Sessions of any of these supervisors."
    )
    agent_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Sessions monitoring any of these agents."
    )
    queue_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Sessions on interactions of any of these queues."
    )
    modes: list[MonitoringMode] | None = strawberry.field(
        default=None, description="Sessions that were ever in any of these modes."
    )
    states: list[MonitoringState] | None = strawberry.field(
        default=None, description="Sessions in any of these states."
    )
    started_after: datetime | None = strawberry.field(
        default=None, description="Started at or after this time (UTC if no offset is given)."
    )
    started_before: datetime | None = strawberry.field(
        default=None, description="Started before this time (UTC if no offset is given)."
    )


def _page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise bad_user_input(f"first must be between 0 and {MAX_PAGE}; got {first}.")
    return first


def _utc(value: datetime, name: str) -> datetime:
    """In UTC (assumed where no offset is given); BAD_USER_INPUT where that leaves the years
    1 to 9999 (0001-01-01T00:00:00+05:00 is in the year 0 in UTC)."""
    try:
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).astimezone(UTC)
    except OverflowError:
        raise bad_user_input(f"{name} is out of range: {value.isoformat()}.") from None


def _cursor_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
        return value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _ids_of(values: list[strawberry.ID], type_name: str) -> list[int]:
    """Our ids of `type_name`; ids of other types name nothing and drop out."""
    return [pk for value in values if (pk := decode_id(value, type_name)) is not None]


def _filter_conditions(filter: InteractionFilter | None) -> list:
    if filter is None:
        return []
    I, P = models.Interaction, models.Participant
    conditions = []
    if filter.queue_ids is not None:
        conditions.append(I.queue_id.in_(_ids_of(filter.queue_ids, "Queue")))
    if filter.agent_ids is not None:
        conditions.append(
            sa.select(P.id)
            .where(
                P.interaction_id == I.id,
                P.purpose == ParticipantPurpose.AGENT,
                P.user_id.in_(_ids_of(filter.agent_ids, "User")),
            )
            .exists()
        )
    if filter.media_types is not None:
        conditions.append(I.media_type.in_(filter.media_types))
    if filter.states is not None:
        conditions.append(I.state.in_(filter.states))
    if filter.started_after is not None:
        conditions.append(I.started_at >= _utc(filter.started_after, "startedAfter"))
    if filter.started_before is not None:
        conditions.append(I.started_at < _utc(filter.started_before, "startedBefore"))
    return conditions


def _session_conditions(filter: MonitoringSessionFilter | None) -> list:
    if filter is None:
        return []
    I, S, C = models.Interaction, models.MonitoringSession, models.MonitoringModeChange
    conditions = []
    if filter.monitor_ids is not None:
        conditions.append(S.monitor_id.in_(_ids_of(filter.monitor_ids, "User")))
    if filter.agent_ids is not None:
        conditions.append(S.agent_id.in_(_ids_of(filter.agent_ids, "User")))
    if filter.queue_ids is not None:
        conditions.append(I.queue_id.in_(_ids_of(filter.queue_ids, "Queue")))
    if filter.modes is not None:
        conditions.append(
            sa.select(C.id).where(C.session_id == S.id, C.mode.in_(filter.modes)).exists()
        )
    if filter.states is not None:
        conditions.append(S.state.in_(filter.states))
    if filter.started_after is not None:
        conditions.append(S.started_at >= _utc(filter.started_after, "startedAfter"))
    if filter.started_before is not None:
        conditions.append(S.started_at < _utc(filter.started_before, "startedBefore"))
    return conditions


async def _node(info: Info, type_name: str, pk: int) -> Node | None:
    """A node the viewer may see, or None: what is not visible does not exist."""
    await info.context.require_viewer()
    loaders = info.context.loaders
    policy = loaders.policy
    if type_name == "Division":
        row = await loaders.division.load(pk)
        return Division.of(row) if row is not None and policy.division(row.id) else None
    if type_name == "Queue":
        row = await loaders.queue.load(pk)
        return Queue.of(row) if row is not None and policy.queue.check(row) else None
    if type_name == "User":
        row = await loaders.visible_user.load(pk)
        return User.of(row) if row is not None else None
    if type_name == "Interaction":
        row = await loaders.visible_interaction.load(pk)
        return Interaction.of(row) if row is not None else None
    loader, seen_of, wrap = {
        "Participant": (loaders.participant, loaders.participants_seen, Participant.of),
        "MonitoringSession": (loaders.session, loaders.sessions_seen, MonitoringSession.of),
    }[type_name]
    row = await loader.load(pk)
    if row is None or await loaders.visible_interaction.load(row.interaction_id) is None:
        return None
    # A MONITOR participant or a session: only where the viewer may see the monitoring.
    seen = await settled(seen_of(row.interaction_id))
    return wrap(row) if any(other.id == row.id for other in seen) else None


async def _rows(info: Info, statement) -> list:
    return list(await info.context.loaders.rows(statement))


def _arg(description: str):
    return strawberry.argument(description=description)


PAGE_SIZE = "How many to return: 25 when omitted, at most 100."
AFTER = "The `endCursor` of the previous page: return what follows it."


@strawberry.type(
    description="What supervisors and the integration read. Every field needs a "
    "bearer token; what the viewer may not see does not exist for them."
)
class Query:
    @strawberry.field(
        description="Fetch any object by its global id; null where it is not visible."
    )
    async def node(
        self, info: Info, id: Annotated[strawberry.ID, _arg("A global id, as `id` fields give it.")]
    ) -> Node | None:
        await info.context.require_viewer()
        type_name, pk = decode_node_id(id)
        return await _node(info, type_name, pk)

    @strawberry.field(description="The authenticated user.")
    async def viewer(self, info: Info) -> User:
        return User.of(await info.context.require_viewer())

    @strawberry.field(
        description="Queues in the viewer's division (every division for ADMIN and INTEGRATION), "
        "by name. `first` defaults to 25, at most 100."
    )
    async def queues(
        self,
        info: Info,
        first: Annotated[int | None, _arg(PAGE_SIZE)] = None,
        after: Annotated[str | None, _arg(AFTER)] = None,
    ) -> QueueConnection:
        await info.context.require_viewer()
        size = _page_size(first)
        Q = models.Queue
        visible = info.context.loaders.policy.queue.sql
        page = sa.select(Q.__table__).where(visible).order_by(Q.name, Q.id).limit(size + 1)
        if after is not None:
            name, pk = decode_cursor(after, "queue", str, RowId)
            page = page.where(sa.tuple_(Q.name, Q.id) > sa.tuple_(name, pk))
        rows = await _rows(info, page)
        edges = [
            QueueEdge(cursor=encode_cursor("queue", r.name, r.id), node=Queue.of(r))
            for r in rows[:size]
        ]
        return QueueConnection(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=_page_info(edges, has_next=len(rows) > size, after=after),
            count_statement=sa.select(sa.func.count()).select_from(Q).where(visible),
        )

    @strawberry.field(
        description="Null where the queue does not exist or is not visible to the viewer."
    )
    async def queue_activity(
        self, info: Info, queue_id: Annotated[strawberry.ID, _arg("The queue to watch.")]
    ) -> QueueActivity | None:
        await info.context.require_viewer()
        pk = decode_id(queue_id, "Queue")
        queue = await info.context.loaders.queue.load(pk) if pk is not None else None
        if queue is None or not info.context.loaders.policy.queue.check(queue):
            return None
        return await read_queue_activity(info.context.loaders, queue, selected_names(info))

    @strawberry.field(
        description="Performance > Interactions: newest first. `first` defaults to 25, at most 100."
    )
    async def interactions(
        self,
        info: Info,
        filter: Annotated[
            InteractionFilter | None, _arg("Narrow the list; all conditions hold.")
        ] = None,
        first: Annotated[int | None, _arg(PAGE_SIZE)] = None,
        after: Annotated[str | None, _arg(AFTER)] = None,
    ) -> InteractionConnection:
        await info.context.require_viewer()
        size = _page_size(first)
        I = models.Interaction
        conditions = [info.context.loaders.policy.interaction.sql, *_filter_conditions(filter)]
        page = sa.select(I.__table__).where(*conditions).order_by(I.started_at.desc(), I.id.desc())
        if after is not None:
            started, pk = decode_cursor(after, "interaction", str, RowId)
            started_at = _cursor_time(started)
            if started_at is None:
                raise bad_user_input(f"{after!r} is not a valid cursor.")
            page = page.where(
                sa.or_(I.started_at < started_at, sa.and_(I.started_at == started_at, I.id < pk))
            )
        rows = await _rows(info, page.limit(size + 1))
        await prefetch_interactions(info.context.loaders, rows[:size], selected_names(info))
        edges = [
            InteractionEdge(
                cursor=encode_cursor("interaction", r.started_at.isoformat(), r.id),
                node=Interaction.of(r),
            )
            for r in rows[:size]
        ]
        return InteractionConnection(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=_page_info(edges, has_next=len(rows) > size, after=after),
            count_statement=sa.select(sa.func.count()).select_from(I).where(*conditions),
        )

    @strawberry.field(
        description="The monitoring audit trail: sessions the viewer may see, newest first. "
        "`first` defaults to 25, at most 100."
    )
    async def monitoring_sessions(
        self,
        info: Info,
        filter: Annotated[
            MonitoringSessionFilter | None, _arg("Narrow the list; all conditions hold.")
        ] = None,
        first: Annotated[int | None, _arg(PAGE_SIZE)] = None,
        after: Annotated[str | None, _arg(AFTER)] = None,
    ) -> MonitoringSessionConnection:
        await info.context.require_viewer()
        size = _page_size(first)
        I, S = models.Interaction, models.MonitoringSession
        policy = info.context.loaders.policy
        conditions = [policy.interaction.sql, policy.session.sql, *_session_conditions(filter)]
        sessions = sa.select(S.__table__).join(I, I.id == S.interaction_id).where(*conditions)
        page = sessions.order_by(S.started_at.desc(), S.id.desc())
        if after is not None:
            started, pk = decode_cursor(after, "session", str, RowId)
            started_at = _cursor_time(started)
            if started_at is None:
                raise bad_user_input(f"{after!r} is not a valid cursor.")
            page = page.where(
                sa.or_(S.started_at < started_at, sa.and_(S.started_at == started_at, S.id < pk))
            )
        rows = await _rows(info, page.limit(size + 1))
        info.context.loaders.session.prime_many({row.id: row for row in rows[:size]})
        edges = [
            MonitoringSessionEdge(
                cursor=encode_cursor("session", r.started_at.isoformat(), r.id),
                node=MonitoringSession.of(r),
            )
            for r in rows[:size]
        ]
        return MonitoringSessionConnection(
            edges=edges,
            nodes=[edge.node for edge in edges],
            page_info=_page_info(edges, has_next=len(rows) > size, after=after),
            count_statement=sa.select(sa.func.count())
            .select_from(S)
            .join(I, I.id == S.interaction_id)
            .where(*conditions),
        )

    @strawberry.field(description="Interaction details; null where it is not visible.")
    async def interaction(
        self, info: Info, id: Annotated[strawberry.ID, _arg("The interaction's id.")]
    ) -> Interaction | None:
        await info.context.require_viewer()
        pk = decode_id(id, "Interaction")
        return await _node(info, "Interaction", pk) if pk is not None else None

    @strawberry.field(
        description="The viewer's interaction panel: interactions they handle or monitor, "
        "in progress, oldest first."
    )
    async def interaction_panel(self, info: Info) -> list[PanelEntry]:
        viewer = await info.context.require_viewer()
        return await read_panel(info.context.loaders, viewer.id, selected_names(info))


def _page_info(edges: list, has_next: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
