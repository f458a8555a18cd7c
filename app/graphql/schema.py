"""The schema, with the limits that refuse abusive documents before execution."""

from collections.abc import AsyncIterator, Iterator

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
)
from starlette.websockets import WebSocket
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.types.graphql import OperationType

from app.graphql.errors import ErrorCodes
from app.graphql.mutations import IntegrationErrorType, MonitoringErrorType, Mutation
from app.graphql.queries import Query
from app.graphql.subscriptions import SharedAnswers, Subscription
from app.graphql.types import Division, Interaction, MonitoringSession, Participant, Queue, User


class _ParserCache(ParserCache):
    """Strawberry's parser cache raises a syntax error from its hook, outside the path that
    reports errors (and gives them codes); on an error, step aside and let that path parse."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        except GraphQLError:
            pass
        yield


MAX_DEPTH = 12
MAX_TOKENS = 1000
MAX_ALIASES = 30
MAX_SELECTIONS = 10_000  # fields once fragments are expanded


def expanded_selections(document: DocumentNode) -> int:
    """How many fields the operations select once fragments are expanded, each fragment
    counted once and reused: fragments that spread the previous one twice, 30 deep, count
    2**30 in 30 steps. A spread in a cycle counts 0 (validation refuses cycles)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    sizes: dict[str, int] = {}

    def selections(selection_set, visiting: frozenset) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FragmentSpreadNode):
                total += fragment(selection.name.value, visiting)
            else:
                total += isinstance(selection, FieldNode) + selections(
                    selection.selection_set, visiting
                )
        return total

    def fragment(name: str, visiting: frozenset) -> int:
        if name not in sizes:
            if name in visiting or name not in fragments:
                return 0
            sizes[name] = selections(fragments[name].selection_set, visiting | {name})
        return sizes[name]

    return sum(
        selections(d.selection_set, frozenset())
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


class _SelectionLimiter(SchemaExtension):
    """Refuses a document whose fragments expand to more than MAX_SELECTIONS fields, before
    validation: Strawberry's depth and alias limiters walk every expansion, and a fragment
    bomb of a few hundred tokens held the event loop for minutes. Placed after
    ValidationCache: it empties the rules at the end of parsing, so that validation is a
    no-op, and puts its refusal in once validation has run."""

    def __init__(self) -> None:
        self.refusal: GraphQLError | None = None

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.graphql_document is None:
            return
        count = expanded_selections(context.graphql_document)
        if count > MAX_SELECTIONS:
            self.refusal = GraphQLError(
                f"The operation selects {count} fields once its fragments are expanded; "
                f"at most {MAX_SELECTIONS} are allowed.",
                extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
            )
            context.validation_rules = ()

    def on_validate(self) -> Iterator[None]:
        if self.refusal is not None:
            self.execution_context.pre_execution_errors = [self.refusal]
        yield


class _SubscriptionsOverWebSocket(SchemaExtension):
    """Subscriptions run over WebSocket only: over HTTP, Strawberry would execute one as a
    query and fail on it. Refuse it with a clear error before it executes."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            context.context.request, WebSocket
        ):
            # A result set here means Strawberry does not execute the operation.
            context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Subscriptions are served over WebSocket (graphql-transport-ws) at "
                        "/graphql, not over HTTP.",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ],
            )
        yield


class _OneSnapshotPerOperation(SchemaExtension):
    """Each operation reads through a context of its own (over WebSocket, one connection's
    operations share the connection's context), whose snapshot ends with the operation: a
    long-lived connection holds no snapshot between operations."""

    async def on_operation(self) -> AsyncIterator[None]:
        operation = self.execution_context.context.for_operation()
        self.execution_context.context = operation
        try:
            yield
        finally:
            await operation.end_operation()


class _Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Refusals are answers, not incidents: ErrorCodes logs the unexpected errors, with
        their request id, and nothing else is logged."""


# The depth and alias rules, created once: Strawberry's limiter extensions create a new rule
# class per instance, that is per request, so the validation cache (keyed by the rules)
# missed every time and every request was validated again.
_LIMIT_RULES = (
    query_depth_limiter.create_validator(MAX_DEPTH, None, None),
    max_aliases.create_validator(MAX_ALIASES),
)

schema = _Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[
        Division,
        User,
        Queue,
        Interaction,
        Participant,
        MonitoringSession,
        MonitoringErrorType,
        IntegrationErrorType,
    ],
    execution_context_class=SharedAnswers,
    extensions=[
        _OneSnapshotPerOperation,  # first: the others see the operation's context
        ErrorCodes,
        _SubscriptionsOverWebSocket,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: _ParserCache(maxsize=1024),
        lambda: AddValidationRules(_LIMIT_RULES),
        lambda: ValidationCache(maxsize=1024),
        _SelectionLimiter,
    ],
)


def sdl() -> str:
    return schema.as_str() + "\n"
