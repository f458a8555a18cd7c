"""Field execution with a short path for plain leaves.

graphql-core executes each field by building a resolve info, calling Strawberry's resolver
wrapper (which builds its own Info and converts arguments) and completing the value: about
2 microseconds a field, most of the time of a large list. A plain leaf needs none of it: a
scalar or enum field read from its object, or computed by a synchronous method of the object
that takes nothing but `self` (like `id`), without arguments or field extensions. Such a
field is read and serialized directly; every other field takes graphql-core's path, and so
does a plain leaf whose value is null or fails to read or serialize, so that errors are
reported exactly as usual. (Plain leaves also skip schema extensions' `resolve` hooks;
ours have none, and a test keeps it so.)
"""

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    get_named_type,
    is_leaf_type,
    is_list_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

# The versions whose execute_field this overrides, and whose field definitions and resolver
# attributes it reads (and whose executor internals, field collection, argument values,
# enum types and resolver signatures app/graphql/compiled reaches; and, for uvicorn and
# Strawberry's WebSocket handler, whose internals app/graphql/live/transport.py and
# app/ops/edge.py reach): pinned exactly in
# pyproject.toml, and checked by a test, so that an upgrade is a decision (reread the
# overridden methods), never an accident.
WRITTEN_FOR = {"graphql-core": "3.3.2", "strawberry-graphql": "0.341.2", "uvicorn": "0.54.0"}


def _read(field: GraphQLField) -> Callable[[Any], Any] | None:
    """How to read a plain leaf field from its object, or None if it is not one."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    output = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if definition is None or definition.extensions or is_list_type(output):
        return None
    if not is_leaf_type(output):
        return None
    resolver = definition.base_resolver
    if resolver is None:
        name = definition.python_name
        return lambda source: getattr(source, name)
    takes_only_self = (
        resolver.self_parameter is not None
        and not resolver.arguments
        and resolver.info_parameter is None
        and resolver.root_parameter is None
        and resolver.parent_parameter is None
        and not resolver.is_async
    )
    return resolver.wrapped_func if takes_only_self else None


# (type name, field name) -> (read, serialize), or None for a field that is not plain; the
# process has one schema.
_plain_leaves: dict[tuple[str, str], tuple[Callable, Callable] | None] = {}


class PlainLeaves(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with the short path for plain leaves."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list,
        path,
        position_context,
    ):
        name = field_details_list[0].node.name.value
        key = (parent_type.name, name)
        try:
            plain = _plain_leaves[key]
        except KeyError:
            field = parent_type.fields.get(name)
            read = _read(field) if field is not None else None
            plain = _plain_leaves[key] = (
                (read, get_named_type(field.type).coerce_output_value) if read else None
            )
        if plain is not None:
            try:
                value = plain[0](source)
                output = plain[1](value) if value is not None else None
            except Exception:  # noqa: BLE001 - graphql-core's path reports it
                output = None
            if output is not None and output is not Undefined:
                return output
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
