"""Queries drawn by hypothesis-graphql from the schema, for random viewers.

Two kinds of documents:

- root documents: hypothesis-graphql's queries, root field by root field (left to itself,
  the generator favours the first ones) and over every root field at once;
- path documents: hypothesis-graphql draws a selection set on one type (a Node type,
  QueueActivity or Monitorability, through a `sampleX: X` field that an extension of the
  schema adds to Query for generation only), which goes under a path of the real schema that
  reaches that type: an interaction's queue, a list's participants, an On Queue agent's
  interactions... Drawn selections are mostly small, and the places where leaks hide are a
  few levels down: these documents reach them.

Ids and cursors in documents are placeholders (`"@ID"`, `"@Queue"`, `"@cursor"`, resolved by
`resolve` against the rows of the database at hand), so that the documents can be drawn once
and sent to both databases, whose primary keys differ.
"""

import functools
import random
import re
from dataclasses import dataclass

import graphql
import hypothesis_graphql
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from app.graphql.ids import encode_id
from tests.support import explore
from tests.visibility.conftest import VIEWERS
from tests.visibility.oracle import NODE_TYPES

ROOT_DOCUMENTS = {
    "node": 300,
    "interactions": 300,
    "interaction": 200,
    "queueActivity": 200,
    "queues": 100,
    "viewer": 80,
    "interactionPanel": 120,
    "monitoringSessions": 150,
}
WHOLE_DOCUMENTS = 100  # over every root field at once
PATH_DOCUMENTS = 150  # per type in PATHS
# The rarer edges: members through a reference; what a silenced supervisor's monitorability
# says (only nia, max, kim and root, on a few interactions each, can see one), and the take
# overs it offers (kim's and root's chats); sessions, where the per-session silent rule shows.
MORE_PATH_DOCUMENTS = {"Queue": 300, "Monitorability": 400, "MonitoringSession": 250}

# Where each type is reached, `SEL` standing for its drawn selection set, `<T>` for an id of
# type T. Every root field and every reference between types that leads to the type is here.
PATHS = {
    "Interaction": [
        "interaction(id: <Interaction>) SEL",
        "interactions(first: 30) { totalCount nodes SEL }",
        "interactions(first: 25, filter: {agentIds: [<User>]}) { totalCount edges { node SEL } }",
        "node(id: <Interaction>) { ... on Interaction SEL }",
        "queueActivity(queueId: <Queue>) { waiting SEL interacting SEL }",
        "queueActivity(queueId: <Queue>) { onQueueAgents { interactions SEL } }",
        "interactionPanel { interaction SEL session { interaction SEL } }",
        "node(id: <MonitoringSession>) { ... on MonitoringSession { interaction SEL } }",
        "monitoringSessions(first: 30) { nodes { interaction SEL } }",
    ],
    "Queue": [
        "interactions(first: 30) { nodes { queue SEL } }",
        "interaction(id: <Interaction>) { queue SEL }",
        "queues(first: 25) { totalCount nodes SEL }",
        "node(id: <Queue>) { ... on Queue SEL }",
        "queueActivity(queueId: <Queue>) { queue SEL }",
        "interactionPanel { interaction { queue SEL } }",
    ],
    "Participant": [
        "interactions(first: 30) { nodes { participants SEL } }",
        "interaction(id: <Interaction>) { participants SEL agents SEL }",
        "node(id: <Participant>) { ... on Participant SEL }",
        "interactionPanel { interaction { participants SEL } }",
        "queueActivity(queueId: <Queue>) { interacting { agents SEL } }",
    ],
    "MonitoringSession": [
        "interactions(first: 30) { nodes { activeMonitoring SEL monitoringSessions SEL } }",
        "interaction(id: <Interaction>) { participants { monitoredBy SEL } }",
        "interaction(id: <Interaction>) { activeMonitoring SEL monitoringSessions SEL }",
        "node(id: <MonitoringSession>) { ... on MonitoringSession SEL }",
        "interactionPanel { session SEL interaction { monitoringSessions SEL } }",
        "monitoringSessions(first: 30) { totalCount nodes SEL }",
        (
            "monitoringSessions(first: 5, after: <SessionCursor>) { totalCount "
            "edges { cursor node SEL } pageInfo { hasNextPage } }"
        ),
        "monitoringSessions(filter: {agentIds: [<User>]}) { totalCount nodes SEL }",
        (
            "monitoringSessions(filter: {monitorIds: [<User>], states: [ACTIVE]}) { totalCount "
            "edges { node SEL } }"
        ),
        "monitoringSessions(filter: {modes: [COACH, BARGE]}) { totalCount nodes SEL }",
        "monitoringSessions(filter: {queueIds: [<Queue>], modes: [MONITOR]}) { nodes SEL }",
    ],
    "User": [
        "node(id: <User>) { ... on User SEL }",
        "viewer SEL",
        "queues(first: 25) { nodes { members SEL } }",
        "interactions(first: 30) { nodes { participants { user SEL } } }",
        "queueActivity(queueId: <Queue>) { onQueueAgents { agent SEL } }",
        "interaction(id: <Interaction>) { participants { monitorability { currentMonitor SEL } } }",
        "node(id: <MonitoringSession>) { ... on MonitoringSession { monitor SEL agent SEL } }",
        "monitoringSessions(first: 30) { nodes { monitor SEL agent SEL } }",
    ],
    "QueueActivity": ["queueActivity(queueId: <Queue>) SEL"],
    "Monitorability": [
        "interactions(first: 30) { nodes { agents { monitorability SEL } } }",
        "interactions(first: 30) { nodes { participants { monitorability SEL } } }",
        "interaction(id: <Interaction>) { participants { monitorability SEL } }",
        "node(id: <Participant>) { ... on Participant { monitorability SEL } }",
        "queueActivity(queueId: <Queue>) { interacting { agents { monitorability SEL } } }",
        "interactionPanel { interaction { agents { monitorability SEL } } }",
    ],
    "Division": [
        "node(id: <Division>) { ... on Division SEL }",
        "interactions(first: 30) { nodes { queue { division SEL } } }",
        "node(id: <User>) { ... on User { division SEL } }",
        "monitoringSessions(first: 30) { nodes { monitor { division SEL } } }",
    ],
}
_PLACEHOLDER = re.compile(r'"@(\w+)"')
_MARKER = re.compile(r"<(\w+)>")  # in PATHS: an id of that type goes here


@dataclass(frozen=True)
class Drawn:
    document: str  # with placeholders
    viewer: str
    kind: str  # "root" or "path"


def _scalars() -> dict:
    """Values that reach the data: ids and cursors (placeholders, see `resolve`), small page
    sizes."""
    return {
        "ID": st.just(nodes.String("@ID")),
        "String": st.just(nodes.String("@cursor")),
        "Int": st.one_of(st.integers(0, 30), st.just(100)).map(nodes.Int),
        "DateTime": st.sampled_from(
            ["2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00", "2024-06-01T12:00:00+02:00"]
        ).map(nodes.String),
    }


def _selection_of_root(document: str) -> str:
    """`{ sampleX { a b } }` -> `{ a b }`."""
    root = graphql.parse(document).definitions[0].selection_set.selections[0]
    return graphql.print_ast(root.selection_set)


def _path_documents(schema_sdl: str, type_name: str) -> st.SearchStrategy[str]:
    extended = schema_sdl + f"\nextend type Query {{ sample{type_name}: {type_name} }}\n"
    selections = hypothesis_graphql.queries(
        extended, fields=[f"sample{type_name}"], custom_scalars=_scalars()
    ).map(_selection_of_root)

    @st.composite
    def documents(draw) -> str:
        path = draw(st.sampled_from(PATHS[type_name]))
        path = _MARKER.sub(lambda match: f'"@{match.group(1)}"', path)
        return "{ " + path.replace("SEL", draw(selections)) + " }"

    return documents()


@functools.cache
def draw_documents(schema_sdl: str) -> tuple[Drawn, ...]:
    """Every document of a run, with its viewer: the same for both databases."""
    drawn: list[Drawn] = []
    # Viewers and (in `resolve`) ids are chosen by a seeded generator, not by Hypothesis, whose
    # derandomized draws favour the simplest value: uniform over viewers, types and rows.
    viewers = random.Random(11)

    def take(strategy, count: int, kind: str) -> None:
        explore(
            strategy,
            count,
            lambda document: drawn.append(Drawn(document, viewers.choice(VIEWERS), kind)),
        )

    for name, count in ROOT_DOCUMENTS.items():
        take(
            hypothesis_graphql.queries(schema_sdl, fields=[name], custom_scalars=_scalars()),
            count,
            "root",
        )
    take(hypothesis_graphql.queries(schema_sdl, custom_scalars=_scalars()), WHOLE_DOCUMENTS, "root")
    for type_name in PATHS:
        count = MORE_PATH_DOCUMENTS.get(type_name, PATH_DOCUMENTS)
        take(_path_documents(schema_sdl, type_name), count, "path")
    return tuple(drawn)


def resolve(
    document: str, seed: int, rows_by_type: dict[str, list[int]], cursors: dict[str, list[str]]
) -> str:
    """The document with real ids and cursors for its placeholders: `"@ID"` an id of any
    type, `"@Queue"` one of a queue, `"@cursor"` a cursor of any list, `"@SessionCursor"` one
    of `monitoringSessions` (`cursors` by placeholder). One in ten ids is well-formed and
    names nothing ("as if it did not exist")."""
    choose = random.Random(seed)

    def real(match: re.Match) -> str:
        kind = match.group(1)
        if kind in cursors:
            return f'"{choose.choice(cursors[kind])}"'
        if kind == "ID":
            kind = choose.choice(NODE_TYPES)
        pks = rows_by_type[kind]
        pk = choose.choice(pks) if pks and choose.random() > 0.1 else 2**31 - 1
        return f'"{encode_id(kind, pk)}"'

    return _PLACEHOLDER.sub(real, document)
