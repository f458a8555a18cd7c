"""Subscription root: monitoring sessions starting and ending, live and resumable."""

import weakref
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from app.events.broker import Batch, Event, SlowSubscriber
from app.graphql.enums import MonitoringEventKind
from app.graphql.ids import decode_cursor, decode_id, encode_cursor
from app.graphql.loaders import RowLoaders
from app.graphql.types import Info, MonitoringSession
from app.models.enums import ALL_SEEING_ROLES

# Close code for a subscriber that fell too far behind: it resumes with its last cursor.
SLOW_SUBSCRIBER_CLOSE = 4008


# Row loaders per batch of events, shared by every subscriber resolving that batch: fresh
# rows for each batch, read once for all.
_batch_reads: weakref.WeakKeyDictionary[Batch, RowLoaders] = weakref.WeakKeyDictionary()


def _deliver(info: Info, event: Event) -> "MonitoringSessionEvent":
    shared = _batch_reads.get(event.batch)
    if shared is None:
        shared = _batch_reads[event.batch] = RowLoaders(info.context.db)
        shared.session.prime(event.session.id, event.session)
    info.context.share_reads(shared)
    return MonitoringSessionEvent.of(event)


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

    @classmethod
    def of(cls, event: Event) -> "MonitoringSessionEvent":
        return cls(
            cursor=encode_cursor("event", event.position),
            kind=event.kind,
            occurred_at=event.occurred_at,
            session=MonitoringSession.of(event.session),
        )


def _event_filter(viewer, interaction_id, queue_id, mine):
    sees_all = bool(viewer.role_set & ALL_SEEING_ROLES)

    def matches(event: Event) -> bool:
        return (
            (sees_all or viewer.division_id in event.divisions)
            and (interaction_id is None or event.interaction_id == interaction_id)
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
        subscriber, live_after = broker.subscribe(matches)
        delivered = after_position if after_position is not None else live_after
        try:
            if after_position is not None:
                async for batch in broker.replay(after_position, live_after):
                    for event in batch:
                        if matches(event):
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
                    yield _deliver(info, event)
        finally:
            broker.unsubscribe(subscriber)
