"""Subscription root: the event log, live and resumable, as three feeds: monitoring sessions,
interactions and presence."""

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator
from contextlib import aclosing
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
import strawberry
from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.dataloader import DataLoader

from app.db import Database
from app.events.broker import Batch, CursorExpired, Event, Position, SlowSubscriber
from app.graphql.compiled.executor import CompiledExecution
from app.graphql.enums import InteractionEventKind, MonitoringEventKind, Presence
from app.graphql.ids import decode_cursor, decode_id, encode_cursor
from app.graphql.live.transport import SLOW_SUBSCRIBER_CLOSE, Sink, current_operation
from app.graphql.live.views import (
    ROW_FIELDS,
    InteractionView,
    PanelView,
    QueueActivityView,
    View,
    not_found,
)
from app.graphql.loaders import RowLoaders
from app.graphql.prefetch import names_below, now_or_later, selected_names
from app.graphql.types import (
    Info,
    Interaction,
    MonitoringSession,
    PanelEntry,
    QueueActivityUpdate,
    User,
)
from app.models import User as UserRow
from app.models.enums import INTERACTION_EVENTS, MONITORING_EVENTS, EventKind
from app.visibility import Policy

# The executor of the subscription operation the current task runs: a live view executes
# its document again for each update (see SharedAnswers.build_resolve_info).
_subscription_executor: ContextVar = ContextVar("subscription_executor", default=None)


class _SharedWork:
    """What every subscriber of one batch of events shares: the rows, read once in one
    snapshot, and the answers, each computed once (see SharedAnswers).

    The snapshot lasts as long as executions that read it are under way: the last one to
    finish ends it, so that no subscriber holds a connection between events, and one that
    begins later reads a new snapshot, with caches of its own."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._reads: RowLoaders | None = None
        self._executing = 0
        self.answers: dict[tuple, tuple[OperationDefinitionNode, asyncio.Future]] = {}
        # The subscribers' viewers as the directory has them now: one statement a batch.
        self.viewers = DataLoader(self._viewers)
        # Per viewer: which users of the batch's presence events they may see.
        self._visible_users: dict[int, DataLoader] = {}

    async def _viewers(self, ids: list[int]) -> list[UserRow | None]:
        async with self._db.single_read() as session:
            found = await session.exec(sa.select(UserRow).where(UserRow.id.in_(ids)))
            by_id = {user.id: user for user in found.scalars()}
        return [by_id.get(pk) for pk in ids]

    def visible_users(self, viewer: UserRow) -> DataLoader:
        """Whether the viewer may see each user, decided in SQL by the visibility policy: one
        statement per viewer and batch."""
        loader = self._visible_users.get(viewer.id)
        if loader is None:
            condition = Policy.of(viewer).user

            async def load(ids: list[int]) -> list[bool]:
                async with self._db.single_read() as session:
                    found = await session.exec(
                        sa.select(UserRow.id).where(UserRow.id.in_(ids), condition)
                    )
                    visible = set(found.scalars())
                return [pk in visible for pk in ids]

            loader = self._visible_users[viewer.id] = DataLoader(load)
        return loader

    def begin(self) -> RowLoaders:
        if self._reads is None:
            self._reads = RowLoaders(self._db)
        self._executing += 1
        return self._reads

    async def end(self) -> None:
        self._executing -= 1
        if self._executing == 0:
            reads, self._reads = self._reads, None
            await reads.close()


_shared_work: weakref.WeakKeyDictionary[Batch, _SharedWork] = weakref.WeakKeyDictionary()


def _shared(info: Info, event: Event) -> _SharedWork:
    shared = _shared_work.get(event.batch)
    if shared is None:
        shared = _shared_work[event.batch] = _SharedWork(info.context.db)
    return shared


async def _deliverable(info: Info, event: Event, viewer_id: int) -> bool:
    """Whether the event may go to the subscriber, decided for the viewer as the directory
    has them now (a directory load may have moved or demoted them); the payload is then
    computed for that viewer too. A viewer who is no longer there gets nothing."""
    shared = _shared(info, event)
    current = await shared.viewers.load(viewer_id)
    if current is None:
        return False
    info.context.follow_directory(current)
    if event.kind == EventKind.PRESENCE_CHANGED:
        return await shared.visible_users(current).load(event.user_id)
    return Policy.of(current).interaction_event(event, event.kind in MONITORING_EVENTS)


async def _follow(info: Info, matches, after: str | None) -> AsyncGenerator[Event, None]:
    """The events that match and that the viewer may see: with `after`, those after it in the
    log first, then live ones, with no gap and no repeat."""
    viewer = await info.context.require_viewer()
    after_position = _event_cursor(after) if after is not None else None
    broker = info.context.broker
    subscriber, live_after = await broker.subscribe(matches)
    delivered = after_position if after_position is not None else live_after
    try:
        if after_position is not None:
            try:
                async for batch in broker.replay(after_position, live_after):
                    for event in batch:
                        if matches(event) and await _deliverable(info, event, viewer.id):
                            yield event
                        delivered = event.position
            except CursorExpired:
                raise GraphQLError(
                    "The events after this cursor are no longer kept: start over without "
                    "`after`, from a fresh query.",
                    extensions={"code": "CURSOR_EXPIRED"},
                ) from None
        while True:
            try:
                event = await subscriber.next()
            except SlowSubscriber:
                await info.context.request.close(
                    code=SLOW_SUBSCRIBER_CLOSE,
                    reason="Too slow to keep up: resubscribe with after: your last cursor.",
                )
                return
            if event.position > delivered:
                delivered = event.position
                if await _deliverable(info, event, viewer.id):
                    yield event
    finally:
        broker.unsubscribe(subscriber)


def _event_cursor(after: str) -> Position:
    """An event cursor: (transaction id, position); one from before transaction ids were in
    cursors is (0, position), where the upgrade put those events."""
    try:
        return tuple(decode_cursor(after, "event", int, int))
    except GraphQLError:
        return (0, decode_cursor(after, "event", int)[0])


def _about_interactions(kinds, interaction_id: strawberry.ID | None, queue_id):
    """A subscription's own filters on interaction events (visibility is decided per event,
    in _deliverable)."""
    interaction_pk = _node_filter(interaction_id, "Interaction")
    queue_pk = _node_filter(queue_id, "Queue")

    def matches(event: Event) -> bool:
        return (
            event.kind in kinds
            and (interaction_pk is None or event.interaction_id == interaction_pk)
            and (queue_pk is None or event.queue_id == queue_pk)
        )

    return matches


def _node_filter(value: strawberry.ID | None, type_name: str) -> int | None:
    """An id filter's primary key; an id of another type matches nothing (-1): a filter on
    what one cannot see is silent."""
    if value is None:
        return None
    return decode_id(value, type_name) or -1


async def _live(info: Info, view_of) -> None:
    """Serve a live view to this subscription until it ends. `view_of(document, wanted)`
    builds the view of the subscribed document."""
    operation = current_operation.get()
    executor = _subscription_executor.get()
    if operation is None or executor is None:  # not over graphql-transport-ws
        raise GraphQLError(
            "Live views are served over WebSocket.", extensions={"code": "BAD_REQUEST"}
        )
    document = (
        operation.query,
        operation.operation_name,
        # json, not orjson: variables may hold integers wider than 64 bits.
        json.dumps(operation.variables or {}, sort_keys=True),
    )
    view: View = view_of(document, selected_names(info))
    viewer = info.context.authenticated_viewer
    await info.context.forget_reads()  # a live view holds no snapshot between updates
    await info.context.live_views.follow(view, info.context, executor, Sink(operation), viewer)


class SharedAnswers(CompiledExecution):
    """Executes a subscription event once for all the subscribers that would get the same
    answer: the same operation and variables, and the same viewer (everything a payload
    depends on besides the event). Thousands of supervisors watching the same floor then
    cost a few executions per event instead of one each, which bounded delivery. Executions
    for one batch read its rows, in its snapshot, side by side (see _SharedWork)."""

    def build_resolve_info(self, field_def, field_nodes, parent_type, path):
        if path.prev is None and parent_type is self.schema.subscription_type:
            _subscription_executor.set(self)
        return super().build_resolve_info(field_def, field_nodes, parent_type, path)

    def execute_operation(self, serially: bool | None = None):
        shared = getattr(self.root_value, "shared_work", None)
        if shared is None:
            return super().execute_operation(serially)
        key = (
            self.root_value.position,
            id(self.operation),
            repr(self.variable_values.coerced),
            # Everything of the viewer that a payload may depend on.
            self.context_value.authenticated_viewer.id,
            self.context_value.authenticated_viewer.division_id,
            tuple(self.context_value.authenticated_viewer.roles),
            repr(self.context_value.authenticated_viewer.permissions),
        )
        metrics = self.context_value.metrics
        metrics.payloads_sent.inc()
        entry = shared.answers.get(key)
        if entry is None or entry[0] is not self.operation:  # an id reused by another one
            metrics.payloads_executed.inc()
            answer = asyncio.ensure_future(self._execute_sharing(shared, serially))
            entry = shared.answers[key] = (self.operation, answer)
        answer = entry[1]
        if not answer.done():
            return _when_done(answer)
        return _own_copy(answer.result())

    async def _execute_sharing(self, shared: _SharedWork, serially: bool | None):
        """Execute with the rows, and the snapshot, of the batch."""
        self.context_value.share_reads(shared.begin())
        try:
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        finally:
            await shared.end()


async def _when_done(answer: asyncio.Future) -> ExecutionResult:
    # Shielded: the subscriber that started the execution may leave before it ends.
    return _own_copy(await asyncio.shield(answer))


def _own_copy(result: ExecutionResult) -> ExecutionResult:
    # Each subscriber's error handling processes its own list.
    return ExecutionResult(result.data, list(result.errors) if result.errors else None)


@strawberry.type(description="A monitoring session started, changed mode or ended.")
class MonitoringSessionEvent:
    cursor: str = strawberry.field(
        description="Opaque, increasing; pass it as `after` to resume with the next event."
    )
    kind: MonitoringEventKind = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    session: MonitoringSession = strawberry.field(
        description="The session as it is when the event is delivered "
        "(a replayed STARTED may show an ended session)."
    )

    position: strawberry.Private[Position]
    shared_work: strawberry.Private[_SharedWork]

    @classmethod
    def of(cls, info: Info, event: Event) -> "MonitoringSessionEvent":
        return cls(
            position=event.position,
            shared_work=_shared(info, event),
            cursor=encode_cursor("event", *event.position),
            kind=MONITORING_EVENTS[event.kind],
            occurred_at=event.occurred_at,
            session=MonitoringSession.of(event.session),
        )


@strawberry.type(description="One committed change of an interaction.")
class InteractionEvent:
    cursor: str = strawberry.field(
        description="Opaque, increasing; pass it as `after` to resume with the next event."
    )
    kind: InteractionEventKind = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(description="When it happened.")

    position: strawberry.Private[Position]
    shared_work: strawberry.Private[_SharedWork]
    interaction_pk: strawberry.Private[int]
    agent_pk: strawberry.Private[int | None]
    session_row: strawberry.Private[object | None]

    @strawberry.field(description="The interaction as it is when the event is delivered.")
    def interaction(self, info: Info) -> Interaction:
        return now_or_later(info.context.loaders.interaction, self.interaction_pk, Interaction.of)

    @strawberry.field(
        description="For AGENT_CONNECTED and AGENT_DISCONNECTED: the agent who joined or left."
    )
    def agent(self, info: Info) -> User | None:
        if self.agent_pk is None:
            return None
        return now_or_later(info.context.loaders.user, self.agent_pk, User.of)

    @strawberry.field(description="For the MONITORING_* kinds: the session.")
    def session(self) -> MonitoringSession | None:
        return MonitoringSession.of(self.session_row) if self.session_row is not None else None

    @classmethod
    def of(cls, info: Info, event: Event) -> "InteractionEvent":
        agent_event = event.kind in (EventKind.AGENT_CONNECTED, EventKind.AGENT_DISCONNECTED)
        return cls(
            position=event.position,
            shared_work=_shared(info, event),
            cursor=encode_cursor("event", *event.position),
            kind=INTERACTION_EVENTS[event.kind],
            occurred_at=event.occurred_at,
            interaction_pk=event.interaction_id,
            agent_pk=event.user_id if agent_event else None,
            session_row=event.session,
        )


@strawberry.type(description="A user's presence changed.")
class PresenceEvent:
    cursor: str = strawberry.field(
        description="Opaque, increasing; pass it as `after` to resume with the next event."
    )
    occurred_at: datetime = strawberry.field(description="When it happened.")
    presence: Presence = strawberry.field(
        description="The presence this event set (the user's presence now may have changed again)."
    )

    position: strawberry.Private[Position]
    shared_work: strawberry.Private[_SharedWork]
    user_pk: strawberry.Private[int]

    @strawberry.field(description="The user.")
    def user(self, info: Info) -> User:
        return now_or_later(info.context.loaders.user, self.user_pk, User.of)

    @classmethod
    def of(cls, info: Info, event: Event) -> "PresenceEvent":
        return cls(
            position=event.position,
            shared_work=_shared(info, event),
            cursor=encode_cursor("event", *event.position),
            occurred_at=event.occurred_at,
            presence=event.presence,
            user_pk=event.user_id,
        )


# The subscriptions' arguments.
InteractionFilter = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only this interaction.")
]
QueueFilter = Annotated[
    strawberry.ID | None, strawberry.argument(description="Only interactions of this queue.")
]
After = Annotated[
    str | None, strawberry.argument(description="A cursor received before: replay what follows it.")
]


@strawberry.type(
    description="Live changes, over WebSocket (graphql-transport-ws); the "
    "connection_init payload carries the bearer token."
)
class Subscription:
    @strawberry.subscription(
        description="Monitoring sessions starting, changing mode and ending, in commit order, "
        "that the viewer "
        "may see.\nNarrow with interactionId, queueId or mine (the viewer's own sessions).\n"
        "With `after`, first replays every matching event after that cursor, then goes live, "
        "with no gap and no repeat."
    )
    async def monitoring_session_changed(
        self,
        info: Info,
        interaction_id: InteractionFilter = None,
        queue_id: QueueFilter = None,
        mine: Annotated[
            bool | None, strawberry.argument(description="Only the viewer's own sessions.")
        ] = None,
        after: After = None,
    ) -> AsyncGenerator[MonitoringSessionEvent, None]:
        viewer = await info.context.require_viewer()
        about = _about_interactions(MONITORING_EVENTS, interaction_id, queue_id)

        def matches(event: Event) -> bool:
            return about(event) and (not mine or event.monitor_id == viewer.id)

        async with aclosing(_follow(info, matches, after)) as events:
            async for event in events:
                yield MonitoringSessionEvent.of(info, event)

    @strawberry.subscription(
        description="Every committed change of the interactions the viewer may see, in commit "
        "order.\nWith `after`, first replays every matching event after that cursor, then "
        "goes live, with no gap and no repeat."
    )
    async def interaction_changed(
        self,
        info: Info,
        interaction_id: InteractionFilter = None,
        queue_id: QueueFilter = None,
        after: After = None,
    ) -> AsyncGenerator[InteractionEvent, None]:
        matches = _about_interactions(INTERACTION_EVENTS, interaction_id, queue_id)
        async with aclosing(_follow(info, matches, after)) as events:
            async for event in events:
                yield InteractionEvent.of(info, event)

    @strawberry.subscription(
        description="Presence changes of the users the viewer may see, in commit order; "
        "resumable with `after` like interactionChanged."
    )
    async def presence_changed(
        self,
        info: Info,
        queue_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only members of this queue.")
        ] = None,
        after: After = None,
    ) -> AsyncGenerator[PresenceEvent, None]:
        queue_pk = _node_filter(queue_id, "Queue")

        def matches(event: Event) -> bool:
            return event.kind == EventKind.PRESENCE_CHANGED and (
                queue_pk is None or queue_pk in event.member_of
            )

        async with aclosing(_follow(info, matches, after)) as events:
            async for event in events:
                yield PresenceEvent.of(info, event)

    @strawberry.subscription(
        description="Performance > Queue activity, live: the whole view first, then each "
        "committed change as a delta.\nApplying every update in order to the snapshot gives "
        "exactly what queueActivity returns at the update's cursor."
    )
    async def queue_activity_changed(
        self,
        info: Info,
        queue_id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The queue to watch (one the viewer sees in its own right)."
            ),
        ],
    ) -> AsyncGenerator[QueueActivityUpdate, None]:
        await info.context.require_viewer()
        pk = decode_id(queue_id, "Queue")
        queue = await info.context.loaders.queue.load(pk) if pk is not None else None
        if queue is None or not info.context.loaders.policy.queue.check(queue):
            raise not_found("queue")
        follow_details = bool(names_below(info, "agentsChanged", "interactions") - ROW_FIELDS)
        await _live(
            info,
            lambda document, wanted: QueueActivityView(
                pk, document, wanted, agents_follow_details=follow_details
            ),
        )
        return
        yield  # updates are written to the socket by the live view, not yielded

    @strawberry.subscription(
        description="Interaction details, live: the interaction on subscribing, then again "
        "after each committed change of it, until its final state (ended) has been sent."
    )
    async def interaction_updated(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The interaction's id.")],
    ) -> AsyncGenerator[Interaction, None]:
        await info.context.require_viewer()
        pk = decode_id(id, "Interaction")
        if pk is None or await info.context.loaders.visible_interaction.load(pk) is None:
            raise not_found("interaction")
        await _live(info, lambda document, wanted: InteractionView(pk, document, wanted))
        return
        yield  # updates are written to the socket by the live view, not yielded

    @strawberry.subscription(
        description="The viewer's interaction panel, live: whole on subscribing, then whole "
        "again after each change of it."
    )
    async def interaction_panel_changed(self, info: Info) -> AsyncGenerator[list[PanelEntry], None]:
        viewer = await info.context.require_viewer()
        await _live(info, lambda document, wanted: PanelView(viewer.id, document, wanted))
        return
        yield  # updates are written to the socket by the live view, not yielded
