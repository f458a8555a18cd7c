"""A validated operation compiled into Python source specialised for it, as graphql-jit does
for JavaScript: one function per selection set, with its fields in graphql-core's order.

Fragments, `@skip` and `@include` and `__typename` are resolved at compile time (by
graphql-core's own field collection, so that merging and ordering are exactly its). A
field becomes one of:

- an attribute read (a Strawberry field without resolver or extensions): `src.name`;
- a direct call of its resolver when it takes no arguments (self, and Strawberry's Info,
  built once per execution for the field, not per item);
- a call of the field's graphql-core resolver with a resolve info and its arguments, for
  the rest (root fields with arguments, fields with extensions).

Leaves are serialized inline where the value is of the scalar's own Python type (str, bool,
an int in range, a member of the enum), and by the scalar's function otherwise. Lists are
completed by a comprehension, with no `Path` per item. A resolver's awaitable is awaited
after the synchronous pass, with every other one of its level (runtime.Run.settle).

The generated code never reports an error: whatever would be one raises `Bail`, and the
executor runs the document through graphql-core instead (app/graphql/compiled/executor.py).
What the compiler does not handle raises `Unsupported` with the reason, and the document is
always executed by graphql-core, counted by reason in /metrics.
"""

import itertools
import keyword
import operator
from datetime import datetime
from typing import Any

from graphql import (
    DirectiveNode,
    FragmentDefinitionNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_object_type,
)
from graphql.execution.collect_fields import collect_fields, collect_subfields
from graphql.language import Visitor, visit
from graphql.pyutils import Path
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter

from app.graphql.compiled import runtime

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Strawberry's DateTime serializer: a datetime's own isoformat.
_ISOFORMAT = repr(operator.methodcaller("isoformat"))


class Unsupported(Exception):
    """The document uses what the compiler does not handle: graphql-core executes it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Plan:
    """A compiled operation: `root(run, root_value)` returns the data, with the awaitables
    left in `run.pending`."""

    def __init__(self, root, sites: list[runtime.Site], source: str) -> None:
        self.root = root
        self.sites = sites
        self.source = source


def directive_variables(document_nodes) -> tuple[str, ...]:
    """The variables that `@skip` and `@include` read: a compiled plan is kept per value
    of them. Any other directive is Unsupported."""
    names: list[str] = []

    class Directives(Visitor):
        def enter_directive(self, node: DirectiveNode, *_):
            if node.name.value not in ("skip", "include"):
                raise Unsupported(f"directive @{node.name.value}")
            for argument in node.arguments:
                if isinstance(argument.value, VariableNode):
                    names.append(argument.value.name.value)

    for node in document_nodes:
        if isinstance(node, OperationDefinitionNode) and node.directives:
            raise Unsupported(f"operation directive @{node.directives[0].name.value}")
        if isinstance(node, FragmentDefinitionNode) and node.variable_definitions:
            raise Unsupported("fragment variables")
        visit(node, Directives())
    return tuple(sorted(set(names)))


class Compiler:
    def __init__(self, executor) -> None:
        self.executor = executor
        self.schema = executor.schema
        strawberry_schema = self.schema._strawberry_schema
        if strawberry_schema.config.default_resolver is not getattr:
            raise Unsupported("a default resolver other than getattr")
        if strawberry_schema.exception_handlers:
            raise Unsupported("exception handlers")
        self.namespace: dict[str, Any] = {
            "Bail": runtime.Bail,
            "awaitable": runtime.awaitable,
            "leaf": runtime.leaf,
            "items": runtime.items,
            "type_checked": runtime.type_checked,
            "non_null": runtime.non_null,
        }
        self.functions: list[str] = []
        self.sites: list[runtime.Site] = []
        self._numbers = itertools.count()
        self._constants: dict[int, str] = {}

    def compile(self) -> Plan:
        executor = self.executor
        operation = executor.operation
        if operation.operation is OperationType.MUTATION:
            raise Unsupported("mutation")  # root fields with effects: never run twice
        if executor.middleware_manager is not None and executor.middleware_manager.middlewares:
            raise Unsupported("middleware")
        root_type = self.schema.get_root_type(operation.operation)
        grouped, defer_usages, _ = collect_fields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            root_type,
            operation,
            executor.hide_suggestions,
        )
        if defer_usages:
            raise Unsupported("@defer")
        root = self._object(root_type, grouped, None, nullable=None, checked=False)
        source = "\n\n".join(self.functions)
        label = operation.name.value if operation.name else "operation"
        # Our own generated source, from the schema and a validated document.
        exec(compile(source, f"<compiled {label}>", "exec"), self.namespace)  # noqa: S102
        return Plan(self.namespace[root], self.sites, source)

    # -- names -------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    def _constant(self, value: Any, prefix: str = "K") -> str:
        name = self._constants.get(id(value))
        if name is None:
            name = self._constants[id(value)] = self._name(prefix)
            self.namespace[name] = value
        return name

    # -- selection sets ----------------------------------------------------------------

    def _object(
        self,
        object_type: GraphQLObjectType,
        grouped: dict,
        path: Path | None,
        nullable: bool | None,
        checked: bool = True,
    ) -> str:
        """`def oN(run, src)`: the object's selection set, with the null check (none for the
        root value: nullable None) and the type check of its completion."""
        name = self._name("o")
        lines = [f"def {name}(run, src):"]
        if nullable is not None:
            lines.append(f"    if src is None: {'return None' if nullable else 'raise Bail'}")
        if checked and object_type.is_type_of is not None:
            definition = object_type.extensions.get(DEFINITION)
            cls = self._constant(definition.origin, "T") if definition else "None"
            check = self._constant(object_type.is_type_of, "I")
            lines.append(f"    if src.__class__ is not {cls}: type_checked({check}, src)")
        lines.append("    out = {}")
        for key, details in grouped.items():
            lines.extend(self._field(object_type, key, details, path))
        lines.append("    return out")
        self.functions.append("\n".join(lines))
        return name

    def _field(self, parent_type: GraphQLObjectType, key: str, details, path) -> list[str]:
        field_name = details[0].node.name.value
        out = f"out[{key!r}]"
        if field_name == "__typename":
            return [f"    {out} = {parent_type.name!r}"]
        field_def = self.schema.get_field(parent_type, field_name)
        if field_def is None:
            return []  # graphql-core leaves it out too
        definition = field_def.extensions.get(DEFINITION)
        if definition is None:
            raise Unsupported("introspection" if field_name.startswith("__") else field_name)
        field_path = Path(path, key, parent_type.name)
        has_arguments = bool(field_def.args or details[0].node.arguments)
        resolver = definition.base_resolver
        if parent_type is self.schema.subscription_type and field_def.subscribe is not None:
            # Strawberry resolves a subscription field's event to the event itself.
            value, may_await = "src", False
        elif definition.is_basic_field:
            python_name = definition.python_name
            value = (
                f"src.{python_name}"
                if python_name.isidentifier() and not keyword.iskeyword(python_name)
                else f"getattr(src, {python_name!r})"
            )
            may_await = False
        elif resolver is not None and not definition.extensions and not has_arguments:
            value = self._direct_call(field_def, details, parent_type, field_path, definition)
            may_await = resolver.is_async
        else:
            site = self._site(field_def, details, parent_type, field_path, definition)
            resolve = self._constant(field_def.resolve, "R")
            value = f"{resolve}(src, run.raw_info({site}), **run.arguments({site}))"
            may_await = True
        return_type = field_def.type
        lines = [f"    v = {value}"]
        if not may_await and self._leaf(return_type) is not None:
            nullable = not isinstance(return_type, GraphQLNonNull)
            fast = self._leaf_expression(self._leaf(return_type), "v")
            if nullable:
                return [*lines, f"    {out} = None if v is None else ({fast})"]
            return [*lines, "    if v is None: raise Bail", f"    {out} = {fast}"]
        complete = self._complete(return_type, details, field_path)
        if may_await or resolver is not None:
            return [
                *lines,
                f"    if {self._not_a_value(return_type)}awaitable(v):",
                f"        {out} = None",
                f"        run.later(v, {complete}, out, {key!r})",
                "    else:",
                f"        {out} = {complete}(run, v)",
            ]
        return [*lines, f"    {out} = {complete}(run, v)"]

    def _not_a_value(self, return_type) -> str:
        """A test, before `awaitable(v)`, that passes over the values a resolver of this type
        returns most (None, a list, an object of the type's class), none of them awaitable:
        the call was made for every value of a large list's resolvers."""
        nullable = not isinstance(return_type, GraphQLNonNull)
        named = return_type if nullable else return_type.of_type
        tests = ["v is not None"] if nullable else []
        if is_list_type(named):
            tests.append("v.__class__ is not list")
        elif is_object_type(named):
            definition = named.extensions.get(DEFINITION)
            if definition is not None and not hasattr(definition.origin, "__await__"):
                tests.append(f"v.__class__ is not {self._constant(definition.origin, 'T')}")
        return "".join(f"{test} and " for test in tests)

    def _site(self, field_def, details, parent_type, path, definition) -> int:
        self.sites.append(runtime.Site(field_def, details, parent_type, path, definition))
        return len(self.sites) - 1

    def _direct_call(self, field_def, details, parent_type, path, definition) -> str:
        resolver = definition.base_resolver
        function = self._constant(resolver.wrapped_func, "W")
        arguments = []
        if resolver.self_parameter is not None:
            arguments.append("src")
        for parameter in (resolver.parent_parameter, resolver.root_parameter):
            if parameter is not None:
                arguments.append(f"{parameter.name}=src")
        if resolver.info_parameter is not None:
            site = self._site(field_def, details, parent_type, path, definition)
            arguments.append(f"{resolver.info_parameter.name}=run.info({site})")
        return f"{function}({', '.join(arguments)})"

    # -- completion --------------------------------------------------------------------

    @staticmethod
    def _leaf(return_type):
        named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        return named if is_leaf_type(named) else None

    def _leaf_expression(self, leaf_type, var: str) -> str:
        """The serialized value of `var` (not null)."""
        coerce = self._constant(leaf_type.coerce_output_value, "S")
        slow = f"leaf({coerce}, {var})"
        name = leaf_type.name
        if name in ("String", "ID"):
            return f"{var} if {var}.__class__ is str else {slow}"
        if name == "Boolean":
            return f"{var} if {var}.__class__ is bool else {slow}"
        if name == "Int":
            return (
                f"{var} if {var}.__class__ is int and {INT_MIN} <= {var} <= {INT_MAX} else {slow}"
            )
        if name == "DateTime" and repr(leaf_type.coerce_output_value) == _ISOFORMAT:
            cls = self._constant(datetime, "T")
            return f"{var}.isoformat() if {var}.__class__ is {cls} else {slow}"
        if isinstance(leaf_type, CustomGraphQLEnumType):
            names = self._constant(self._enum_names(leaf_type), "E")
            cls = self._constant(leaf_type.wrapped_cls, "T")
            return f"({names}.get({var}) if {var}.__class__ is {cls} else None) or {slow}"
        return slow

    @staticmethod
    def _enum_names(enum_type: CustomGraphQLEnumType) -> dict:
        """Member -> name, as Strawberry's coerce_output_value finds it (the first name whose
        value equals the member's)."""
        names = {}
        for member in enum_type.wrapped_cls:
            for name, value in enum_type.values.items():
                if member.value == value.value:
                    names[member] = name
                    break
        return names

    def _complete(self, return_type, details, path: Path) -> str:
        """`def cN(run, v)`: the completed value of `v` for `return_type`."""
        nullable = not isinstance(return_type, GraphQLNonNull)
        named = return_type if nullable else return_type.of_type
        if is_object_type(named):
            grouped = self._subfields(named, details)
            return self._object(named, grouped, path, nullable)
        name = self._name("c")
        lines = [
            f"def {name}(run, v):",
            f"    if v is None: {'return None' if nullable else 'raise Bail'}",
        ]
        if is_leaf_type(named):
            lines.append(f"    return {self._leaf_expression(named, 'v')}")
        elif is_list_type(named):
            lines.append(
                "    if v.__class__ is not list and v.__class__ is not tuple: "
                "v = items(run.executor, v)"
            )
            lines.append(f"    return {self._list_items(named, details, path)}")
        elif is_abstract_type(named):
            table = {}
            for possible in self.schema.get_possible_types(named):
                definition = possible.extensions.get(DEFINITION)
                if definition is None:
                    raise Unsupported(f"abstract type {named.name} without Strawberry types")
                grouped = self._subfields(possible, details)
                table[definition.origin] = self._object(
                    possible, grouped, path, nullable=False, checked=False
                )
            table_name = self._name("A")
            entries = ", ".join(
                f"{self._constant(cls, 'T')}: {function}" for cls, function in table.items()
            )
            self.functions.append(f"{table_name} = {{{entries}}}")
            lines.append(f"    complete = {table_name}.get(v.__class__)")
            lines.append("    if complete is None: raise Bail")
            lines.append("    return complete(run, v)")
        else:  # pragma: no cover - every output type is one of the above
            raise Unsupported(f"output type {named}")
        self.functions.append("\n".join(lines))
        return name

    def _list_items(self, list_type: GraphQLList, details, path: Path) -> str:
        item_type = list_type.of_type
        item_path = Path(path, 0, None)
        leaf_type = self._leaf(item_type)
        if leaf_type is not None:
            fast = self._leaf_expression(leaf_type, "x")
            if isinstance(item_type, GraphQLNonNull):
                return f"[({fast}) if x is not None else non_null() for x in v]"
            return f"[None if x is None else ({fast}) for x in v]"
        complete = self._complete(item_type, details, item_path)
        return f"[{complete}(run, x) for x in v]"

    def _subfields(self, object_type: GraphQLObjectType, details) -> dict:
        executor = self.executor
        grouped, defer_usages, _ = collect_subfields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            object_type,
            details,
            executor.hide_suggestions,
        )
        if defer_usages:
            raise Unsupported("@defer")
        return grouped
