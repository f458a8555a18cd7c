"""The schema, with the limits that refuse abusive documents before execution."""

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from app.graphql.errors import ErrorCodes
from app.graphql.mutations import IntegrationErrorType, MonitoringErrorType, Mutation
from app.graphql.queries import Query
from app.graphql.subscriptions import Subscription
from app.graphql.types import Division, Interaction, MonitoringSession, Participant, Queue, User

MAX_DEPTH = 12
MAX_TOKENS = 1000
MAX_ALIASES = 30

schema = strawberry.Schema(
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
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=1024),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: ValidationCache(maxsize=1024),
    ],
)


def sdl() -> str:
    return schema.as_str() + "\n"
