"""What compiled code calls while it runs: one `Run` per execution, and the helpers for the
rare values that leave the fast path (anything that would be an error gives up: `Bail`)."""

import asyncio
from types import CoroutineType, GeneratorType
from typing import Any

from graphql import Undefined
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable


class Bail(Exception):
    """The execution meets what would be an error (an exception, a null where the schema
    says non-null, a value that does not serialize): graphql-core executes the document
    again, and its answer, errors and null propagation included, is the one sent."""


class Site:
    """A field whose resolver takes `info` or arguments: what building them needs."""

    __slots__ = ("definition", "details", "field_def", "field_nodes", "parent_type", "path")

    def __init__(self, field_def, details: FieldDetailsList, parent_type, path: Path, definition):
        self.field_def = field_def
        self.details = details
        self.field_nodes = to_nodes(details)
        self.parent_type = parent_type
        # The path of the field's first occurrence (list items at index 0), which resolvers
        # would see; ours never read it (tests/graphql/compiled/test_compiled.py).
        self.path = path
        self.definition = definition


class Run:
    """One execution of a compiled document."""

    __slots__ = ("_arguments", "_infos", "_raw_infos", "executor", "pending", "sites")

    def __init__(self, executor, sites: list[Site]) -> None:
        self.executor = executor
        self.sites = sites
        self._infos: dict[int, Any] = {}
        self._raw_infos: dict[int, Any] = {}
        self._arguments: dict[int, dict] = {}
        # (awaitable, complete, target, key): target[key] = complete(run, await awaitable)
        self.pending: list[tuple] = []

    def raw_info(self, index: int):
        info = self._raw_infos.get(index)
        if info is None:
            site = self.sites[index]
            info = self._raw_infos[index] = self.executor.build_resolve_info(
                site.field_def, site.field_nodes, site.parent_type, site.path
            )
        return info

    def info(self, index: int):
        """Strawberry's Info for the site, built once per execution, not once per item."""
        info = self._infos.get(index)
        if info is None:
            site = self.sites[index]
            info_class = self.executor.schema._strawberry_schema.config.info_class
            info = self._infos[index] = info_class(
                _raw_info=self.raw_info(index), _field=site.definition
            )
        return info

    def arguments(self, index: int) -> dict:
        arguments = self._arguments.get(index)
        if arguments is None:
            site = self.sites[index]
            executor = self.executor
            arguments = self._arguments[index] = get_argument_values(
                site.field_def,
                site.details[0].node,
                executor.variable_values,
                site.details[0].fragment_variable_values,
                executor.hide_suggestions,
            )
        return arguments

    def later(self, awaitable, complete, target, key) -> None:
        self.pending.append((awaitable, complete, target, key))

    async def settle(self) -> None:
        """Await what resolvers returned as awaitables, level by level: all of one level at
        once, so that their loaders batch as they do under graphql-core (or better)."""
        while self.pending:
            batch, self.pending = self.pending, []
            values = await asyncio.gather(*(entry[0] for entry in batch), return_exceptions=True)
            for (_, complete, target, key), value in zip(batch, values, strict=True):
                if isinstance(value, BaseException):
                    if isinstance(value, asyncio.CancelledError):
                        raise value
                    raise Bail from value
                target[key] = complete(self, value)

    async def abandon(self) -> None:
        """Settle what will not be used (the execution gave up), as graphql-core settles
        the awaitables of a failed field: nothing is left running or never awaited."""
        pending, self.pending = self.pending, []
        await asyncio.gather(*(entry[0] for entry in pending), return_exceptions=True)


# Whether values of a class are awaitable, memoized by class (a generator is decided per
# value: only some are coroutines).
_awaitable_classes: dict[type, bool] = {}


def awaitable(value: Any) -> bool:
    cls = value.__class__
    known = _awaitable_classes.get(cls)
    if known is not None:
        return known
    if cls is GeneratorType:
        return bool(value.gi_code.co_flags & 0x100)  # CO_ITERABLE_COROUTINE
    known = _awaitable_classes[cls] = isinstance(value, CoroutineType) or hasattr(
        value, "__await__"
    )
    return known


def leaf(coerce, value: Any) -> Any:
    """A leaf value off the fast path, coerced as graphql-core does; null or a failure bails."""
    try:
        coerced = coerce(value)
    except Exception as error:
        if isinstance(value, CoroutineType):
            value.close()  # a resolver's awaitable where a sync one was expected
        raise Bail from error
    if coerced is None or coerced is Undefined:
        raise Bail
    return coerced


def non_null():
    """A null item of a list whose items are non-null."""
    raise Bail


def items(executor, value: Any):
    """A list value that is not a list or tuple: any other iterable, as graphql-core takes it."""
    if executor.is_async_iterable(value) or not is_iterable(value):
        raise Bail
    return list(value)


def type_checked(is_type_of, value: Any) -> Any:
    """An object of another class than the type's own: its `is_type_of` decides."""
    if not is_type_of(value, None):
        raise Bail
    return value
