"""Runs the live views of one process: one task reads the batches of events the broker hands
it, and for each batch computes each affected view's update once per group of subscribers
who get the same answer (app/graphql/live/views.py), encodes it once and writes it to every
socket of the group (app/graphql/live/transport.py).

A subscriber is sent its snapshot by the same task, between batches: every update that
follows reflects at least what the snapshot did, so none can be missed or come first. The
task subscribes to the broker while there are live views, and only then.
"""

import asyncio
import contextlib
import contextvars
import logging
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from graphql import GraphQLError

from app.db import Database
from app.events.broker import Broker, Event, Position, SlowSubscriber
from app.graphql.errors import INTERNAL_MESSAGE, ErrorCodes
from app.graphql.ids import encode_cursor
from app.graphql.live.transport import Sink, SlowSocket
from app.graphql.live.views import Batch, Snapshot, Update, View, viewer_class
from app.graphql.loaders import Loaders, RowLoaders
from app.models import User
from app.models.enums import EventKind
from app.ops.metrics import Metrics
from app.visibility import Policy

logger = logging.getLogger("binocular.live")


def _matches(event: Event) -> bool:
    return True


@dataclass(eq=False)
class Member:
    """One subscriber of a live view."""

    view: View
    sink: Sink
    context: object  # the subscription's Context
    executor: object  # the subscription operation's graphql-core executor
    viewer: User  # as they authenticated (their directory entry is read again: _viewers)
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def finish(self, outcome: GraphQLError | None = None) -> None:
        if not self.done.done():
            self.done.set_result(outcome)

    @property
    def gone(self) -> bool:
        return self.done.done() or not self.sink.open


@dataclass
class _Group:
    key: tuple
    members: list[Member]


class LiveViews:
    def __init__(
        self, db: Database, broker: Broker, metrics: Metrics, verify_sharing: bool = False
    ) -> None:
        self._db = db
        self._broker = broker
        self._metrics = metrics
        self._verify_sharing = verify_sharing
        self._views: dict[tuple, View] = {}
        self._pending: list[Member] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._subscriber = None
        self._subscribing = asyncio.Lock()
        self._position: Position | None = None
        self._errors = ErrorCodes()
        # The subscribers' viewers, as read last (see _viewers), and their viewer classes.
        self._directory: dict[int, User] = {}
        self._classes: dict[int, tuple] = {}
        metrics.live_view_subscribers.set_function(
            lambda: sum(len(view.members) for view in self._views.values())
        )

    async def follow(self, view: View, context, executor, sink: Sink, viewer: User) -> None:
        """Serve `view` to one subscriber until it ends: returns when the view completes,
        raises the GraphQLError it ends with."""
        if self._subscriber is None:
            await self._subscribe()
        view = self._views.setdefault(view.key, view)
        member = Member(view, sink, context, executor, viewer)
        view.members.add(member)
        self._pending.append(member)
        if self._task is None:
            # A context of its own: not the first subscriber's (its request id, its operation).
            self._task = asyncio.create_task(
                self._run(), name="live-views", context=contextvars.Context()
            )
        self._wake.set()
        try:
            outcome = await member.done
            await sink.drained()  # its last frames go before the operation's end
        finally:
            view.members.discard(member)
            view.ready.discard(member)
            if not view.members and self._views.get(view.key) is view:
                del self._views[view.key]
            if not self._views:
                # Nobody watches: what happens meanwhile is for a later snapshot to show.
                self._release()
        if outcome is not None:
            raise outcome

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._release()

    async def _subscribe(self) -> None:
        """Subscribe to the broker, once however many ask at once; events from now on."""
        async with self._subscribing:
            if self._subscriber is None:
                self._subscriber, self._position = await self._broker.subscribe(
                    _matches, notify=self._wake.set
                )

    def _release(self) -> None:
        if self._subscriber is not None:
            self._broker.unsubscribe(self._subscriber)
            self._subscriber = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed update must not end every live view: start over
                logger.exception("a live view update failed; sending new snapshots")
                self._restart_all()
                await asyncio.sleep(0.5)
                self._wake.set()

    def _restart_all(self) -> None:
        self._pending = [m for view in self._views.values() for m in view.members]
        for view in self._views.values():
            view.ready.clear()

    async def _step(self) -> None:
        if self._subscriber is None:
            if not self._views:
                return
            # Released after an overflow, and subscribing again failed: try again.
            await self._subscribe()
        subscriber = self._subscriber
        try:
            events = subscriber.drain()
        except SlowSubscriber:  # the broker dropped what it had queued: start everyone over
            self._release()
            self._restart_all()
            await self._subscribe()
            self._wake.set()  # the snapshots, at once
            return
        # The broker offers what it reads; what committed before subscribing is not ours.
        events = [e for e in events if e.position > self._position]
        if events:
            # Before the updates: if they fail, the new snapshots' cursor is not behind them.
            self._position = events[-1].position
            if any(e.kind == EventKind.DIRECTORY_CHANGED for e in events):
                # Who sees and belongs to what may have changed anywhere: start over.
                self._directory.clear()
                self._classes.clear()
                self._restart_all()
            else:
                await self._apply(events)
        # Snapshots read after the batch: what they miss comes with later events.
        pending, self._pending = self._pending, []
        pending = [m for m in pending if not m.gone]
        if pending:
            await self._send_snapshots(pending)

    def _cursor(self, position: Position) -> str:
        return encode_cursor("event", *position)

    async def _viewers(self, members: list[Member]) -> dict[int, User]:
        """The members' viewers as the directory has them: read once, and again after each
        directory load (DIRECTORY_CHANGED; reading thousands of viewers for each batch cost
        more than the updates)."""
        wanted = {m.viewer.id for m in members}
        missing = sorted(wanted - self._directory.keys())
        if missing:
            async with self._db.single_read() as session:
                found = await session.exec(sa.select(User).where(User.id.in_(missing)))
                self._directory.update((user.id, user) for user in found.scalars())
        return {pk: self._directory[pk] for pk in wanted if pk in self._directory}

    def _class_of(self, viewer: User) -> tuple:
        of_class = self._classes.get(viewer.id)
        if of_class is None:
            of_class = self._classes[viewer.id] = viewer_class(viewer)
        return of_class

    async def _send_snapshots(self, pending: list[Member]) -> None:
        reads = RowLoaders(self._db)
        try:
            viewers = await self._viewers(pending)
            cursor = self._cursor(self._position)
            by_view: dict[int, list[Member]] = {}
            for member in pending:
                by_view.setdefault(id(member.view), []).append(member)
            for members in by_view.values():
                view = members[0].view
                for group in await self._groups(view, members, viewers, reads):
                    async with self._failing_alone(view, group):
                        await self._snapshot_group(view, group, viewers, reads, cursor)
        finally:
            await reads.close()

    async def _snapshot_group(self, view, group: _Group, viewers, reads, cursor: str) -> None:
        viewer = viewers[group.members[0].viewer.id]
        loaders = Loaders(self._db, viewer, reads)
        update = await view.snapshot(loaders, cursor)
        if isinstance(update, GraphQLError):
            for member in group.members:
                member.finish(update)
            return
        payload = await self._deliver(view, group, viewer, loaders, update)
        if self._verify_sharing and len(group.members) > 1:
            await self._verify(view, group, None, viewers, reads, cursor, payload)
        for member in group.members:
            if member in view.members:  # not gone while its snapshot was computed
                view.ready.add(member)
            if update.final:
                member.finish()

    async def _groups(self, view: View, members: list[Member], viewers, reads) -> list[_Group]:
        """Members split into groups with the same answer; a member whose viewer left the
        directory is ended."""
        present = []
        for member in members:
            if member.viewer.id not in viewers:
                member.finish(
                    GraphQLError(
                        "Your user is no longer in the directory.",
                        extensions={"code": "UNAUTHENTICATED"},
                    )
                )
            else:
                present.append(member)
        if not present:
            return []
        involved = await view.involved(
            Loaders(self._db, viewers[present[0].viewer.id], reads), {m.viewer.id for m in present}
        )
        groups: dict[tuple, _Group] = {}
        for member in present:
            viewer = viewers[member.viewer.id]
            key = view.group_key(viewer, involved, self._class_of(viewer))
            groups.setdefault(key, _Group(key, [])).members.append(member)
        return list(groups.values())

    async def _apply(self, events: list[Event]) -> None:
        reads = RowLoaders(self._db)
        try:
            batch = Batch(events, reads)
            batch.watched_queues = frozenset(
                view.subject for view in self._views.values() if view.kind == "queueActivity"
            )
            cursor = self._cursor(batch.position)
            # Only the views the batch may change, and only their members: a batch is about
            # a few interactions, and a process may hold thousands of subscribers.
            affected = [
                v for v in list(self._views.values()) if v.ready and await v.may_change(batch)
            ]
            followers = {v: [m for m in v.ready if not m.gone] for v in affected}
            viewers = await self._viewers([m for members in followers.values() for m in members])
            for view, members in followers.items():
                if not members:
                    continue
                for group in await self._groups(view, members, viewers, reads):
                    async with self._failing_alone(view, group):
                        await self._update_group(view, group, batch, viewers, reads, cursor)
        finally:
            await reads.close()

    async def _update_group(self, view, group: _Group, batch, viewers, reads, cursor) -> None:
        viewer = viewers[group.members[0].viewer.id]
        loaders = Loaders(self._db, viewer, reads)
        update = await view.update(batch, loaders, self._sees(group, viewer, reads), cursor)
        if isinstance(update, Snapshot):
            update = await view.snapshot(loaders, cursor)
            if isinstance(update, GraphQLError):
                for member in group.members:
                    member.finish(update)
                return
        if update is None:
            return
        payload = await self._deliver(view, group, viewer, loaders, update)
        if self._verify_sharing and len(group.members) > 1:
            await self._verify(view, group, batch, viewers, reads, cursor, payload)
        if update.final:
            for member in group.members:
                member.finish()

    def _sees(self, group: _Group, viewer: User, reads: RowLoaders) -> Loaders:
        """What decides which events concern the group: its one viewer, or for a group of
        a viewer class, the class (a member's own past on other interactions is not the
        group's)."""
        if group.key[0] == "viewer":
            return Loaders(self._db, viewer, reads)
        return Loaders(self._db, viewer, reads, Policy.of_class(viewer))

    @contextlib.asynccontextmanager
    async def _failing_alone(self, view: View, group: _Group):
        """A group whose update fails ends with an internal error (logged in full), and
        nobody else is held up: its clients subscribe again."""
        try:
            yield
        except Exception:
            logger.exception("live view %s: an update failed", view.kind)
            error = GraphQLError(INTERNAL_MESSAGE, extensions={"code": "INTERNAL_SERVER_ERROR"})
            for member in group.members:
                member.finish(error)

    async def _execute(
        self, member: Member, viewer: User, loaders: Loaders, root, counted: bool = True
    ) -> str:
        """The member's document on `root`, for `viewer`, encoded as a `next` payload."""
        executor = member.executor.build_per_event_executor(root)
        executor.context_value = member.context.for_live_update(viewer, loaders)
        result = executor.execute_operation(False)
        if executor.is_awaitable(result):
            result = await result
        if counted:
            self._metrics.live_view_executions.labels(view=member.view.kind).inc()
        payload = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in self._errors.process(result.errors)]
        return orjson.dumps(payload).decode()

    async def _deliver(self, view, group: _Group, viewer, loaders, update: Update) -> str:
        """Execute once, encode once, write to every member's socket; the payload."""
        payload = await self._execute(group.members[0], viewer, loaders, update.root)
        sent = 0
        delivered = 0
        for member in group.members:
            try:
                written = member.sink.send(payload)
            except SlowSocket:  # closed with 4008: the close ends its operation
                continue
            if written:
                sent += written
                delivered += 1
        self._metrics.live_view_deliveries.labels(view=view.kind).inc(delivered)
        self._metrics.live_view_bytes.labels(view=view.kind).inc(sent)
        return payload

    async def _verify(self, view, group, batch, viewers, reads, cursor, shared: str) -> None:
        """Compute each member's update alone, from its own viewer and loaders, as if nobody
        shared it, and compare it with the shared one (BINOCULAR_LIVE_VIEW_VERIFY_SHARING: a
        check for tests and canaries)."""
        for member in group.members:
            viewer = viewers[member.viewer.id]
            loaders = Loaders(self._db, viewer, reads)
            own = (
                await view.update(batch, loaders, self._sees(group, viewer, reads), cursor)
                if batch is not None
                else None
            )
            if batch is None or isinstance(own, Snapshot):
                own = await view.snapshot(loaders, cursor)
            alone = (
                await self._execute(member, viewer, loaders, own.root, counted=False)
                if isinstance(own, Update)
                else None
            )
            self._metrics.live_view_sharing_checks.inc()
            if alone != shared:
                self._metrics.live_view_sharing_mismatches.inc()
                logger.error(
                    "live view %s: a shared update differs from %s's own", view.kind, viewer.key
                )
