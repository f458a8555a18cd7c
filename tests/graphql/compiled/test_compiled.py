"""The compiled executor's own promises: what it compiles and what it leaves to graphql-core
(counted by reason), one compilation per document, and the seams it relies on. That its
answers are graphql-core's is test_differential.py's."""

import re
from pathlib import Path

import pytest

from app.graphql.compiled import compiler, executor
from tests.graphql.test_statement_counts import INTERACTIONS, QUEUE_ACTIVITY, populate

APP = Path(__file__).resolve().parents[3] / "app"


def executions(api) -> dict[tuple[str, str], float]:
    counter = api.app.state.metrics.graphql_executions
    return {
        (sample.labels["executor"], sample.labels["reason"]): sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def counted_since(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}


async def test_queries_run_compiled_and_compile_once(api, monkeypatch):
    await populate(api, 8)
    compiled = []
    original = compiler.Compiler.compile
    monkeypatch.setattr(
        compiler.Compiler, "compile", lambda self: compiled.append(1) or original(self)
    )
    executor._documents.clear()
    before = executions(api)
    for _ in range(3):
        await api.data(QUEUE_ACTIVITY, {"queue": api.ids["billing"]})
        await api.data(INTERACTIONS)
    assert counted_since(before, executions(api)) == {("compiled", ""): 6}
    assert len(compiled) == 2  # one per document, whatever the number of executions


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{ __schema { queryType { name } } }", "introspection"),
        ('{ __type(name: "User") { name } }', "introspection"),
        ("{ viewer { name } }", None),
        ("{ viewer { __typename name } }", None),
    ],
)
async def test_what_the_compiler_leaves_to_graphql_core_is_counted_by_reason(api, document, reason):
    before = executions(api)
    body = await api.raw(document, user="ann")
    assert "errors" not in body, body
    expected = {("compiled", ""): 1} if reason is None else {("graphql-core", reason): 1}
    assert counted_since(before, executions(api)) == expected


async def test_mutations_run_on_graphql_core(api):
    before = executions(api)
    await api.create()
    assert counted_since(before, executions(api)) == {("graphql-core", "mutation"): 1}


async def test_an_error_is_answered_by_graphql_core(api):
    """The compiled code reports no error: it gives up, and graphql-core answers (with the
    error's path and location); the answer is the one of graphql-core alone."""
    document = '{ viewer { name } interaction(id: "not an id") { id } }'
    before = executions(api)
    body = await api.raw(document, user="ann")
    assert counted_since(before, executions(api)) == {("graphql-core", "error"): 1}
    assert body["data"] == {"viewer": {"name": "Ann Lee"}, "interaction": None}
    assert body["errors"][0]["path"] == ["interaction"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_skip_and_include_compile_once_per_value_of_their_variables(api):
    document = """query($withName: Boolean!, $withoutKey: Boolean!) {
      viewer { id name @include(if: $withName) key @skip(if: $withoutKey) } }"""
    executor._documents.clear()
    answers = {}
    for with_name in (True, False):
        for without_key in (True, False):
            variables = {"withName": with_name, "withoutKey": without_key}
            answers[(with_name, without_key)] = (await api.data(document, variables))["viewer"]
    assert set(answers[(True, True)]) == {"id", "name"}
    assert set(answers[(False, False)]) == {"id", "key"}
    assert set(answers[(False, True)]) == {"id"}
    assert list(answers[(True, False)]) == ["id", "name", "key"]
    (entry,) = executor._documents.values()
    assert len(entry.plans) == 4


async def test_lists_complete_without_a_path_per_item(api):
    """The generated source: one function per selection set, lists by comprehension, and no
    Path built while it runs (only resolvers that take info get one, per field)."""
    await populate(api, 4)
    executor._documents.clear()
    await api.data(QUEUE_ACTIVITY, {"queue": api.ids["billing"]})
    (entry,) = executor._documents.values()
    (plan,) = entry.plans.values()
    assert "Path" not in plan.source
    assert re.search(r"\[\w+\(run, x\) for x in v\]", plan.source)
    selection_sets = QUEUE_ACTIVITY.count("{")  # the operation's own included: the root
    assert plan.source.count("out = {}") == selection_sets


def test_no_resolver_reads_the_path_of_its_info():
    """Resolvers called directly get one Info per field and execution, whose path is that
    of the field's first occurrence (app/graphql/compiled/runtime.py): none may read it."""
    readers = [
        f"{path.relative_to(APP)}:{number}"
        for path in APP.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\binfo\.(path|_raw_info\.path)\b", line)
    ]
    assert readers == []
