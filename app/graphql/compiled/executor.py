"""graphql-core's executor, running compiled documents.

A document is compiled the first time it executes (then kept, like the parser's and the
validation's caches, for the same document object: the parser cache hands out one per
query text), once per value of the variables its `@skip` and `@include` read. Documents the
compiler does not handle, and every execution where the compiled code meets what would be
an error, run on graphql-core (with the plain leaves' short path), so that error answers
are graphql-core's by construction. `/metrics` counts each execution by executor and reason
(`binocular_graphql_executions_total`).
"""

import logging

from graphql import ExecutionResult

from app.graphql.compiled.compiler import Compiler, Plan, Unsupported, directive_variables
from app.graphql.compiled.runtime import Run
from app.graphql.execution import PlainLeaves

logger = logging.getLogger("binocular.graphql.compiled")

MAX_DOCUMENTS = 1024
MAX_VARIANTS = 16  # compiled plans per document, one per value of its directives' variables


class _Document:
    __slots__ = ("operation", "plans", "unsupported", "variables")

    def __init__(self, operation, variables: tuple[str, ...], unsupported: str | None) -> None:
        self.operation = operation
        self.variables = variables
        self.plans: dict[tuple, Plan | str] = {}
        self.unsupported = unsupported


# id(operation) -> its entry (which holds the operation, so that the id stays its own).
_documents: dict[int, _Document] = {}


def _document(executor) -> _Document:
    operation = executor.operation
    entry = _documents.get(id(operation))
    if entry is not None and entry.operation is operation:
        return entry
    try:
        variables = directive_variables([operation, *executor.fragment_definitions.values()])
        entry = _Document(operation, variables, None)
    except Unsupported as unsupported:
        entry = _Document(operation, (), unsupported.reason)
    if len(_documents) >= MAX_DOCUMENTS:
        del _documents[next(iter(_documents))]
    _documents[id(operation)] = entry
    return entry


def plan_for(executor) -> Plan | str:
    """The compiled plan of the executor's operation, or why there is none."""
    entry = _document(executor)
    if entry.unsupported is not None:
        return entry.unsupported
    coerced = executor.variable_values.coerced
    key = tuple(repr(coerced.get(name)) for name in entry.variables)
    plan = entry.plans.get(key)
    if plan is None:
        if len(entry.plans) >= MAX_VARIANTS:
            return "too many @skip/@include variants"
        try:
            plan = Compiler(executor).compile()
        except Unsupported as unsupported:
            plan = unsupported.reason
        entry.plans[key] = plan
    return plan


class CompiledExecution(PlainLeaves):
    """Executes the operation's compiled plan; graphql-core where there is none, or where
    the plan bails."""

    def execute_operation(self, serially: bool | None = None):
        if not getattr(self.context_value, "compiled_execution", False):
            return self._on_graphql_core(serially, "disabled")
        if self.abort_signal is not None or self.hooks is not None:
            return self._on_graphql_core(serially, "abort signal or hooks")
        plan = plan_for(self)
        if isinstance(plan, str):
            return self._on_graphql_core(serially, plan)
        run = Run(self, plan.sites)
        try:
            data = plan.root(run, self.root_value)
        except Exception:
            logger.debug("the compiled code bailed", exc_info=True)
            return self._again_after(run, serially)
        if run.pending:
            return self._settled(run, data, serially)
        self._count("compiled", "")
        return ExecutionResult(data, None)

    async def _settled(self, run: Run, data: dict, serially: bool | None) -> ExecutionResult:
        try:
            await run.settle()
        except Exception:
            logger.debug("the compiled code bailed", exc_info=True)
            return await self._again_after(run, serially)
        self._count("compiled", "")
        return ExecutionResult(data, None)

    async def _again_after(self, run: Run, serially: bool | None) -> ExecutionResult:
        """graphql-core executes the document as if alone: on reads of its own, since the
        order in which it reports errors (and which siblings of an error it cancels) depends
        on what its loaders already hold."""
        await run.abandon()
        read_again = getattr(self.context_value, "read_again", None)
        if read_again is not None:
            await read_again()
        result = self._on_graphql_core(serially, "error")
        return await result if self.is_awaitable(result) else result

    def _on_graphql_core(self, serially: bool | None, reason: str):
        self._count("graphql-core", reason)
        # Root fields one after the other, queries too: when two non-null root fields fail,
        # graphql-core run in parallel reports the errors of whichever failed first and
        # cancels the other, a race between their reads. One after the other, the same
        # document always gives the same errors. What runs here is an error answer, or a
        # mutation (serial anyway), or introspection; and since the Reader runs one
        # statement at a time, little parallelism is lost.
        return super().execute_operation(True if serially is None else serially)

    def _count(self, executor: str, reason: str) -> None:
        metrics = getattr(self.context_value, "metrics", None)
        if metrics is not None:
            metrics.graphql_executions.labels(executor=executor, reason=reason).inc()
