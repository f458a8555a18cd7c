"""Live view documents for tests/visibility/test_live_views.py: selections drawn by
hypothesis-graphql over the types the live views return, as generate.py draws the path
documents of the property test, each made into a pair that selects the same thing: a query
(`queueActivity`, `interaction`, `interactionPanel`) and the subscription of its live view
(`queueActivityChanged { snapshot }`, `interactionUpdated`, `interactionPanelChanged`).

The query goes through documents.rewrite (every object says what it is, root fields with
arguments get keys of their own), and the subscription selects the query's rewritten
selection set, character for character: the first update, put in the query's shape
(`as_query_data`), is checked by the same ResponseCheck and compared with the query's
answer.
"""

import functools
from dataclasses import dataclass

import graphql
import hypothesis_graphql

from app.graphql.schema import MAX_DEPTH
from tests.support import explore
from tests.visibility.documents import Rewritten, rewrite
from tests.visibility.generate import _scalars, _selection_of_root

# Selections drawn per type. Duplicates, and selections too deep for the server's depth
# limit under the subscription's extra level, are dropped; the rest are ordered so that any
# prefix reaches the most (`_reaching`).
DRAWN = {"Interaction": 400, "QueueActivity": 200, "PanelEntry": 150}

# Each live view's query root field, subscription root field, and the type it selects on.
VIEWS = {
    "queueActivity": ("queueActivity", "queueActivityChanged", "QueueActivity"),
    "interaction": ("interaction", "interactionUpdated", "Interaction"),
    "panel": ("interactionPanel", "interactionPanelChanged", "PanelEntry"),
}
# What the first update of queueActivityChanged carries besides the snapshot.
FIRST_UPDATE_FIELDS = (
    "cursor waitingCount interactingCount onQueueAgentCount "
    "changed { __typename id } removed agentsChanged { agent { __typename id } } agentsRemoved"
)


def _depth(selection_set) -> int:
    """How many selection sets deep a selection set goes."""
    if selection_set is None:
        return 0
    return 1 + max(
        (_depth(getattr(s, "selection_set", None)) for s in selection_set.selections), default=0
    )


def _edges(selection_set, parent: str = "") -> set[tuple[str, str]]:
    """The (enclosing field, field) pairs a selection selects: `session.mode` and
    `activeMonitoring.mode` are two."""
    found: set[tuple[str, str]] = set()
    for node in selection_set.selections if selection_set else ():
        name = node.name.value if isinstance(node, graphql.FieldNode) else parent
        if isinstance(node, graphql.FieldNode):
            found.add((parent, name))
        found |= _edges(getattr(node, "selection_set", None), name)
    return found


def _reaching(selections: list[str]) -> list[str]:
    """Greedily, the selection that adds the most pairs not selected yet (the larger one on a
    tie); once none adds any, again from scratch: the first ones of the list together select
    every pair that the drawn ones select, and the next ones select them again."""
    edges = {
        s: _edges(graphql.parse("{ x " + s + " }").definitions[0].selection_set) for s in selections
    }
    remaining = list(selections)
    ordered: list[str] = []
    covered: set = set()
    while remaining:
        best = max(remaining, key=lambda s: (len(edges[s] - covered), len(edges[s])))
        if not edges[best] - covered and covered:
            covered = set()
            continue
        remaining.remove(best)
        ordered.append(best)
        covered |= edges[best]
    return ordered


@functools.cache
def draw_selections(schema_sdl: str) -> dict[str, tuple[str, ...]]:
    """Distinct selection sets on each type, in the order of `_reaching`, reproducibly."""
    drawn: dict[str, tuple[str, ...]] = {}
    for type_name, count in DRAWN.items():
        extended = schema_sdl + f"\nextend type Query {{ sample{type_name}: {type_name} }}\n"
        strategy = hypothesis_graphql.queries(
            extended, fields=[f"sample{type_name}"], custom_scalars=_scalars()
        ).map(_selection_of_root)
        found: list[str] = []
        explore(strategy, count, found.append)
        # One level for the query's root field, one for `snapshot`: leave room for both.
        fits = (
            s
            for s in dict.fromkeys(found)
            if _depth(graphql.parse("{ x " + s + " }").definitions[0].selection_set)
            <= MAX_DEPTH - 2
        )
        drawn[type_name] = tuple(_reaching(list(fits)))
    return drawn


@dataclass(frozen=True)
class LiveDocument:
    """One live view's subscription and the query that must answer the same."""

    view: str  # "queueActivity", "interaction" or "panel" (the server's metric label)
    subject: str | None  # the queue's or interaction's id; None for the panel
    query: Rewritten
    subscription: str
    root_key: str  # the query's response key of its root field

    def as_query_data(self, data: dict | None) -> dict | None:
        """A `next` payload's data in the shape of the query's answer."""
        if data is None:
            return None
        (value,) = data.values()
        if self.view == "queueActivity" and value is not None:
            value = value["snapshot"]
        return {self.root_key: value}

    def first_update_extras(self, data: dict | None) -> dict | None:
        """queueActivityChanged's first update without its snapshot."""
        if self.view != "queueActivity" or not data:
            return None
        (value,) = data.values()
        return {key: item for key, item in (value or {}).items() if key != "snapshot"}


def live_document(
    schema: graphql.GraphQLSchema, view: str, selection: str, subject: str | None
) -> LiveDocument | None:
    """The pair for a drawn selection; None when the rewrite or the subscription does not
    validate."""
    query_field, subscription_field, _type = VIEWS[view]
    arguments = {
        "queueActivity": f'(queueId: "{subject}")',
        "interaction": f'(id: "{subject}")',
        "panel": "",
    }[view]
    rewritten = rewrite(schema, f"{{ {query_field}{arguments} {selection} }}")
    if rewritten is None:
        return None
    # The rewrite selects __typename on Query too: the root field is the other one.
    (root,) = (
        s
        for s in graphql.parse(rewritten.text).definitions[0].selection_set.selections
        if s.name.value == query_field
    )
    chosen = graphql.print_ast(root.selection_set)
    if view == "queueActivity":
        chosen = f"{{ snapshot {chosen} {FIRST_UPDATE_FIELDS} }}"
    subscription = f"subscription {{ {subscription_field}{arguments} {chosen} }}"
    if graphql.validate(schema, graphql.parse(subscription)):
        return None
    root_key = root.alias.value if root.alias else root.name.value
    return LiveDocument(view, subject, rewritten, subscription, root_key)
