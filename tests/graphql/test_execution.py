"""The short path for plain leaves answers exactly what graphql-core's full path answers,
on the library versions it was written for."""

from importlib.metadata import version

from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.graphql.execution import WRITTEN_FOR
from app.graphql.schema import schema
from tests.graphql.test_statement_counts import INTERACTIONS, QUEUE_ACTIVITY, populate

# Leaves of every kind: ids (computed), strings, enums, date-times, nulls, lists of enums.
LEAVES = """{ viewer { id key name roles presence division { id key name } }
  interactions(first: 100) { edges { node { id mediaType direction state startedAt
    endedAt participants { id purpose state name connectedAt disconnectedAt } } } } }"""


async def test_plain_leaves_answer_as_the_full_path_does(api, monkeypatch):
    await populate(api, 12)
    queries = [(QUEUE_ACTIVITY, {"queue": api.ids["billing"]}), (INTERACTIONS, {}), (LEAVES, {})]
    short = [await api.data(query, variables) for query, variables in queries]
    monkeypatch.setattr(schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext)
    full = [await api.data(query, variables) for query, variables in queries]
    assert short == full
    assert len(short[1]["interactions"]["edges"]) == 12


def test_no_schema_extension_resolves_fields():
    """Plain leaves skip the extensions' `resolve` hooks: there must be none to skip."""
    assert all(
        type(extension).resolve is SchemaExtension.resolve for extension in schema.get_extensions()
    )


def test_the_executor_runs_on_the_versions_it_was_written_for():
    """PlainLeaves overrides graphql-core's execute_field and reads Strawberry's field
    definitions: another version of either may change what those mean. If this fails, reread
    app/graphql/execution.py against the installed versions before updating WRITTEN_FOR."""
    installed = {package: version(package) for package in WRITTEN_FOR}
    assert installed == WRITTEN_FOR, (
        f"app/graphql/execution.py was written for {WRITTEN_FOR}, but {installed} is "
        "installed: install from requirements/test.txt, or review the executor for the new "
        "versions"
    )
