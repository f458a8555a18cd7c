"""Synchronous answers from primed DataLoaders.

A list root (queueActivity, interactions, the panel) reads everything its items will need
in a few batched statements and primes the request's loaders with it. Nested resolvers
then answer at once from those caches: no coroutine, future or gather per item, which is
where most of the time of a large list went. Whatever was not prefetched (a lone
interaction, a subscription's payload) is loaded as before: the resolver returns an
awaitable instead of a value, and GraphQL awaits it.
"""

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField

MISSING = object()


def peek(loader: DataLoader, key: Any) -> Any:
    """The loaded value of `key`, or MISSING when it is not loaded (yet)."""
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
    if inspect.isawaitable(value):
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
    participants = await loaders.participants.load_many(ids) if wanted & _NEEDS_PARTICIPANTS else []
    sessions = await loaders.sessions.load_many(ids) if wanted & _NEEDS_SESSIONS else []
    users, queues = [], []
    if wanted & _NEEDS_USERS:
        user_ids = {p.user_id for group in participants for p in group if p.user_id is not None}
        user_ids |= {s.monitor_id for group in sessions for s in group}
        user_ids |= {s.agent_id for group in sessions for s in group}
        users = await loaders.user.load_many(sorted(user_ids))
    if wanted & _NEEDS_QUEUES:
        queues = await loaders.queue.load_many(sorted({row.queue_id for row in rows}))
    if "division" in wanted:
        division_ids = {u.division_id for u in users if u} | {q.division_id for q in queues if q}
        await loaders.division.load_many(sorted(division_ids))
