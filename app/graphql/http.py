"""GraphQL over HTTP: the `application/graphql-response+json` media type, when a client asks.

With `application/json` (and `*/*`, or no Accept) every GraphQL response is a 200, as before.
A client that prefers `application/graphql-response+json` gets that content type, and a request
error (a document that does not parse or validate, variables that do not coerce: nothing
executed) answers 400 without a `data` entry, as the GraphQL over HTTP spec asks.
"""

from graphql import ExecutionResult
from starlette.requests import Request
from strawberry.http import GraphQLHTTPResponse
from strawberry.types.unset import UNSET

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_REQUEST_ERROR = "graphql_request_error"


def prefers_graphql_response(accept: str | None) -> bool:
    """Accept names application/graphql-response+json, at least as high as application/json."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights.setdefault(media.lower(), weight)
    wanted = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return wanted > 0 and wanted >= weights.get("application/json", 0.0)


def is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: no data, and no error has a path (field errors always have one)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors)
    )


class GraphQLResponseJson:
    """Mixin for a Strawberry GraphQLRouter (before it in the bases)."""

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if is_request_error(result) and prefers_graphql_response(request.headers.get("accept")):
            processed.pop("data", None)
            setattr(request.state, _REQUEST_ERROR, True)
        return processed

    async def run(self, request, context=UNSET, root_value=UNSET):
        response = await super().run(request, context, root_value)
        if request.scope["type"] != "http" or not prefers_graphql_response(
            request.headers.get("accept")
        ):
            return response
        if response.headers.get("content-type", "").startswith("application/json"):
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if getattr(request.state, _REQUEST_ERROR, False):
                response.status_code = 400
        return response
