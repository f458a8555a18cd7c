"""Generated documents, rewritten so that every returned object says what it is.

The checker walks responses without following the document: each object must carry its
`__typename`, and its `id` where its type has one, and each response key must tell which
field it answers. The rewrite (graphql-core's AST visitor, with TypeInfo for the types):

- every selection set on a composite type also selects `__typename`, and `id` on types
  with an `id` field (Node types and the Node interface);
- an alias `a` on field `f` becomes `f_a`: the field name is the key up to its first `_`
  (schema field names have none), and no alias can be named `id` or `__typename` any more.
  Two fields with one response key keep one key, so fields that merged still merge;
- root fields with arguments the checks need (`interactions`, `queues`, `queueActivity`,
  `monitoringSessions`, `node`, `interaction`) get aliases of their own, `f_rN`, whose
  arguments are kept: their counts and pages are checked against the oracle, and a null
  answer against what the id names;
- every selection on Monitorability also selects `allowed`, which says what `modes` and
  `canTakeOver` may be.
"""

import dataclasses
from dataclasses import dataclass, field

import graphql
from graphql import (
    FieldNode,
    GraphQLSchema,
    NameNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
)
from graphql.execution.values import get_argument_values

ROOT_FIELDS_WITH_ARGUMENTS = frozenset(
    {"interactions", "queueActivity", "queues", "monitoringSessions", "node", "interaction"}
)
# Fields added to every selection on a type, beside __typename and id.
ALWAYS_SELECTED = {"Monitorability": ("allowed",)}


@dataclass
class Rewritten:
    text: str
    # Response key of a root field with arguments -> (field name, its argument values).
    root_arguments: dict[str, tuple[str, dict | None]] = field(default_factory=dict)


def field_name(response_key: str) -> str:
    """The schema field behind a response key of a rewritten document."""
    if response_key.startswith("__"):
        return response_key
    return response_key.partition("_")[0]


def _field(name: str) -> FieldNode:
    return FieldNode(name=NameNode(value=name))


class _Identify(Visitor):
    def __init__(self, schema: GraphQLSchema, type_info: TypeInfo, rewritten: Rewritten):
        super().__init__()
        self.schema = schema
        self.type_info = type_info
        self.rewritten = rewritten

    def leave_field(self, node: FieldNode, *_):
        parent = self.type_info.get_parent_type()
        name = node.name.value
        if parent is self.schema.query_type and name in ROOT_FIELDS_WITH_ARGUMENTS:
            key = f"{name}_r{len(self.rewritten.root_arguments)}"
            self.rewritten.root_arguments[key] = (name, self._arguments(node))
            return dataclasses.replace(node, alias=NameNode(value=key))
        if node.alias is not None:
            return dataclasses.replace(node, alias=NameNode(value=f"{name}_{node.alias.value}"))
        return None

    def _arguments(self, node: FieldNode) -> dict | None:
        """Literal arguments as values, or None where they cannot be coerced (the server
        then refuses the field, and there is nothing to count)."""
        definition = self.type_info.get_field_def()
        try:
            return get_argument_values(definition, node)
        except graphql.GraphQLError:
            return None

    def leave_selection_set(self, node: SelectionSetNode, *_):
        owner = self.type_info.get_parent_type()
        if not graphql.is_composite_type(owner):
            return None
        present = {
            s.name.value for s in node.selections if isinstance(s, FieldNode) and s.alias is None
        }
        wanted = ["__typename"]
        if not graphql.is_union_type(owner) and "id" in owner.fields:
            wanted.append("id")
        wanted.extend(ALWAYS_SELECTED.get(owner.name, ()))
        extra = [_field(name) for name in wanted if name not in present]
        if not extra:
            return None
        return dataclasses.replace(node, selections=(*node.selections, *extra))


def rewrite(schema: GraphQLSchema, document: str) -> Rewritten | None:
    """The rewritten document, or None when the rewrite does not validate."""
    rewritten = Rewritten(text="")
    type_info = TypeInfo(schema)
    tree = graphql.visit(
        graphql.parse(document), TypeInfoVisitor(type_info, _Identify(schema, type_info, rewritten))
    )
    if graphql.validate(schema, tree):
        return None
    rewritten.text = graphql.print_ast(tree)
    return rewritten
