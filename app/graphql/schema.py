"""The schema, with the limits that refuse abusive documents before execution."""

from collections.abc import Iterator

import strawberry
from graphql import ExecutionResult, GraphQLError
from starlette.websockets import WebSocket
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types.graphql import OperationType

from app.graphql.errors import ErrorCodes
from app.graphql.mutations import IntegrationErrorType, MonitoringErrorType, Mutation
from app.graphql.queries import Query
from app.graphql.subscriptions import Subscription
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


class _Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Refusals are answers, not incidents: ErrorCodes logs the unexpected errors, with
        their request id, and nothing else is logged."""


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
    extensions=[
        ErrorCodes,
        _SubscriptionsOverWebSocket,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: _ParserCache(maxsize=1024),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: ValidationCache(maxsize=1024),
    ],
)


def sdl() -> str:
    return schema.as_str() + "\n"
