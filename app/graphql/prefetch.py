"""Synchronous answers from primed DataLoaders.

A list root (queueActivity, interactions, the panel) reads everything its items will need
in a few batched statements and primes the request's loaders with it. Nested resolvers
then answer at once from those caches: no coroutine, future or gather per item, which is
where most of the time of a large list went. Whatever was not prefetched (a lone
interaction, a subscription's payload) is loaded as before: the resolver returns an
awaitable instead of a value, and GraphQL awaits it.
"""

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField

MISSING = object()


class RowLoader(DataLoader):
    """A DataLoader that keeps the values it was primed with, or fetched in bulk, in a
    plain dict. A large list's items peek at their rows thousands of times, and a future
    each, with its callbacks and a gather (DataLoader.load_many), cost a third of a
    1,000-interaction queueActivity; `fetch_many` and `prime_many` make none."""

    def __init__(self, load_fn) -> None:
        super().__init__(load_fn)
        self.settled: dict = {}
        # Keys that a fetch_many is reading now -> the future its end sets.
        self._fetching: dict[Any, asyncio.Future] = {}

    def load(self, key):
        if key in self.settled:
            future = self.loop.create_future()
            future.set_result(self.settled[key])
            return future
        # Shielded: the future is shared by every resolver that loads the key, and one
        # awaiting it when graphql-core cancels it (the siblings of a failed list item are)
        # would cancel it for all the others, and the CancelledError end the request.
        return asyncio.shield(super().load(key))

    def prime_many(self, data, force: bool = False) -> None:
        settled = self.settled
        for key, value in data.items():
            if force or (key not in settled and self.cache_map.get(key) is None):
                settled[key] = value
        if self.batch is not None and not self.batch.dispatched:
            super().prime_many(data, force)  # settles the keys the pending batch waits for

    async def fetch_many(self, keys: Iterable) -> list:
        """The values of `keys`: those neither settled nor being read are read in one call
        of the batch function; those being read (by another fetch_many, or load) awaited."""
        keys = list(keys)
        settled, fetching = self.settled, self._fetching
        missing = [
            key
            for key in dict.fromkeys(keys)
            if key not in settled and key not in fetching and self.cache_map.get(key) is None
        ]
        if missing:
            done = self.loop.create_future()
            fetching.update(dict.fromkeys(missing, done))
            try:
                for key, value in zip(missing, await self.load_fn(missing), strict=True):
                    settled.setdefault(key, value)
            finally:
                for key in missing:
                    del fetching[key]
                done.set_result(None)
        others = {id(f): f for key in keys if key not in settled and (f := fetching.get(key))}
        if others:
            await asyncio.gather(*others.values())
        loading = [key for key in keys if key not in settled]
        if loading:  # loaded by load(), or a fetch that failed: as DataLoader would
            for key, value in zip(loading, await self.load_many(loading), strict=True):
                settled.setdefault(key, value)
        return [settled[key] for key in keys]


def peek(loader: DataLoader, key: Any) -> Any:
    """The loaded value of `key`, or MISSING when it is not loaded (yet)."""
    try:
        # The common case first, without a call: a list's items peek thousands of times.
        return loader.settled[key]
    except (AttributeError, KeyError):
        pass
    future = loader.cache_map.get(key)
    if future is None or not future.done() or future.cancelled() or future.exception():
        return MISSING
    return future.result()


def now_or_later(loader: DataLoader, key: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert(value)` now if the value is loaded, else an awaitable of it."""
    value = peek(loader, key)
    if value is not MISSING:
        return convert(value)
    return _later(loader, key, convert)


async def _later(loader: DataLoader, key: Any, convert: Callable[[Any], Any]) -> Any:
    return convert(await loader.load(key))


def then(value: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert(value)` now, or an awaitable of it when `value` is one."""
    if value.__class__ is not list and inspect.isawaitable(value):  # rows are lists
        return _then_later(value, convert)
    return convert(value)


async def _then_later(awaitable, convert: Callable[[Any], Any]) -> Any:
    return convert(await awaitable)


async def settled(value: Any) -> Any:
    """The value of what `now_or_later` or `then` returned, awaited where it must be."""
    return await value if inspect.isawaitable(value) else value


def selected_names(info) -> frozenset[str]:
    """Every field name in the query below this field (fragments included)."""
    return _names_in(info.selected_fields)


def names_below(info, *path: str) -> frozenset[str]:
    """The field names selected below the fields reached from this one by `path` (field
    names, through fragments)."""
    level = list(info.selected_fields)
    for name in path:
        found, pending = [], [s for field in level for s in field.selections]
        while pending:
            selection = pending.pop()
            if not isinstance(selection, SelectedField):
                pending.extend(selection.selections)  # a fragment
            elif selection.name == name:
                found.append(selection)
        level = found
    return _names_in([s for field in level for s in field.selections])


def _names_in(selections) -> frozenset[str]:
    names: set[str] = set()
    pending = list(selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        pending.extend(selection.selections)
    return frozenset(names)


# What each field of an interaction (or below it) needs loaded.
_NEEDS_PARTICIPANTS = {
    "participants",
    "agents",
    "monitorability",
    # Whether the viewer may see an interaction's monitoring depends on its agents.
    "activeMonitoring",
    "monitoringSessions",
    "monitoredBy",
}
_NEEDS_SESSIONS = {"activeMonitoring", "monitoringSessions", "monitoredBy", "monitorability"}
_NEEDS_USERS = {"user", "monitor", "agent", "monitorability"}
_NEEDS_QUEUES = {"queue", "monitorability"}


async def prefetch_interactions(loaders, rows: Iterable, wanted: frozenset[str]) -> None:
    """Prime the loaders with what the items of an interaction list will read, as far as
    the query (`wanted`: selected_names) asks for it: at most five statements, whatever
    the length of the list."""
    rows = list(rows)
    if not rows:
        return
    loaders.interaction.prime_many({row.id: row for row in rows})
    ids = [row.id for row in rows]
    participants = (
        await loaders.participants.fetch_many(ids) if wanted & _NEEDS_PARTICIPANTS else []
    )
    sessions = await loaders.sessions.fetch_many(ids) if wanted & _NEEDS_SESSIONS else []
    users, queues = [], []
    if wanted & _NEEDS_USERS:
        user_ids = {p.user_id for group in participants for p in group if p.user_id is not None}
        user_ids |= {s.monitor_id for group in sessions for s in group}
        user_ids |= {s.agent_id for group in sessions for s in group}
        users = await loaders.user.fetch_many(sorted(user_ids))
    if wanted & _NEEDS_QUEUES:
        queues = await loaders.queue.fetch_many(sorted({row.queue_id for row in rows}))
    if "division" in wanted:
        division_ids = {u.division_id for u in users if u} | {q.division_id for q in queues if q}
        await loaders.division.fetch_many(sorted(division_ids))
