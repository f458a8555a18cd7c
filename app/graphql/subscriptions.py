"""Subscription root: monitoring sessions starting and ending, live and resumable."""

import asyncio
import weakref
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
import strawberry
from graphql import ExecutionResult, OperationDefinitionNode
from strawberry.dataloader import DataLoader

from app.db import Database
from app.events.broker import Batch, Event, SlowSubscriber
from app.graphql.enums import MonitoringEventKind
from app.graphql.execution import PlainLeaves
from app.graphql.ids import decode_cursor, decode_id, encode_cursor
from app.graphql.loaders import RowLoaders
from app.graphql.types import Info, MonitoringSession
from app.models import User
from app.visibility import Policy

# Close code for a subscriber that fell too far behind: it resumes with its last cursor.
SLOW_SUBSCRIBER_CLOSE = 4008


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

    async def _viewers(self, ids: list[int]) -> list[User | None]:
        async with self._db.read() as session:
            found = await session.exec(sa.select(User).where(User.id.in_(ids)))
            by_id = {user.id: user for user in found.scalars()}
        return [by_id.get(pk) for pk in ids]

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
    current = await _shared(info, event).viewers.load(viewer_id)
    if current is None:
        return False
    info.context.follow_directory(current)
    return Policy(current).event(event)


def _deliver(info: Info, event: Event) -> "MonitoringSessionEvent":
    return MonitoringSessionEvent.of(event, _shared(info, event))


class SharedAnswers(PlainLeaves):
    """Executes a subscription event once for all the subscribers that would get the same
    answer: the same operation and variables, and the same viewer (everything a payload
    depends on besides the event). Thousands of supervisors watching the same floor then
    cost a few executions per event instead of one each, which bounded delivery. Executions
    for one batch read its rows, in its snapshot, side by side (see _SharedWork)."""

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


@strawberry.type(description="A monitoring session started or ended.")
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

    position: strawberry.Private[int]
    shared_work: strawberry.Private[_SharedWork]

    @classmethod
    def of(cls, event: Event, shared_work: _SharedWork) -> "MonitoringSessionEvent":
        return cls(
            position=event.position,
            shared_work=shared_work,
            cursor=encode_cursor("event", event.position),
            kind=event.kind,
            occurred_at=event.occurred_at,
            session=MonitoringSession.of(event.session),
        )


def _event_filter(viewer, interaction_id, queue_id, mine):
    """The subscription's own filters. Visibility is decided later, per event, for the viewer
    as they are then (see _deliverable)."""

    def matches(event: Event) -> bool:
        return (
            (interaction_id is None or event.interaction_id == interaction_id)
            and (queue_id is None or event.queue_id == queue_id)
            and (not mine or event.monitor_id == viewer.id)
        )

    return matches


@strawberry.type(
    description="Live changes, over WebSocket (graphql-transport-ws); the "
    "connection_init payload carries the bearer token."
)
class Subscription:
    @strawberry.subscription(
        description="Monitoring sessions starting and ending, in commit order, that the viewer "
        "may see.\nNarrow with interactionId, queueId or mine (the viewer's own sessions).\n"
        "With `after`, first replays every matching event after that cursor, then goes live, "
        "with no gap and no repeat."
    )
    async def monitoring_session_changed(
        self,
        info: Info,
        interaction_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this interaction.")
        ] = None,
        queue_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only interactions of this queue."),
        ] = None,
        mine: Annotated[
            bool | None, strawberry.argument(description="Only the viewer's own sessions.")
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(description="A cursor received before: replay what follows it."),
        ] = None,
    ) -> AsyncGenerator[MonitoringSessionEvent, None]:
        viewer = await info.context.require_viewer()
        # An id of another type matches nothing (-1): a filter on what one cannot see is silent.
        interaction_pk = decode_id(interaction_id, "Interaction") or -1 if interaction_id else None
        queue_pk = decode_id(queue_id, "Queue") or -1 if queue_id else None
        after_position = decode_cursor(after, "event", int)[0] if after is not None else None
        matches = _event_filter(viewer, interaction_pk, queue_pk, mine)
        broker = info.context.broker
        subscriber, live_after = await broker.subscribe(matches)
        delivered = after_position if after_position is not None else live_after
        try:
            if after_position is not None:
                async for batch in broker.replay(after_position, live_after):
                    for event in batch:
                        if matches(event) and await _deliverable(info, event, viewer.id):
                            yield _deliver(info, event)
                        delivered = event.position
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
                        yield _deliver(info, event)
        finally:
            broker.unsubscribe(subscriber)
