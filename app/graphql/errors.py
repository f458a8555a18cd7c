"""Top-level GraphQL errors, each with an `extensions.code`, and the masking of the rest."""

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

logger = logging.getLogger("binocular.graphql")

INTERNAL_MESSAGE = "Internal server error."


def bad_user_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def _code(error: GraphQLError) -> str | None:
    return (error.extensions or {}).get("code")


def _is_coercion(error: GraphQLError) -> bool:
    """A variable value that does not coerce to its type: a request error (no path), raised
    by graphql-core's own scalar parsing."""
    return error.path is None and isinstance(error.original_error, GraphQLError)


def _is_internal(error: GraphQLError) -> bool:
    """An exception that escaped a resolver, as opposed to a refusal we raised on purpose."""
    return error.original_error is not None and _code(error) is None and not _is_coercion(error)


class ErrorCodes(MaskErrors):
    """Give every error a code; replace unexpected ones by a generic message (logged in full)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_internal, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        logger.error("unexpected error at %s", error.path, exc_info=error.original_error)
        return GraphQLError(
            INTERNAL_MESSAGE,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )

    def process(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """The errors as a client is sent them (for results sent outside Strawberry's
        pipeline: live views)."""
        return self._process_errors(errors)

    def _process_result(self, result: object) -> None:
        # Strawberry's version tests a runtime-checkable Protocol, which cost more than
        # anything else here for each event sent to each subscriber.
        if errors := getattr(result, "errors", None):
            result.errors = self._process_errors(errors)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if _code(error) is None and _is_coercion(error):
                error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
            elif _code(error) is None:
                # Only parse and validation errors reach here without a code.
                code = (
                    "GRAPHQL_PARSE_FAILED"
                    if error.message.startswith("Syntax Error")
                    else "GRAPHQL_VALIDATION_FAILED"
                )
                error.extensions = {**(error.extensions or {}), "code": code}
        return processed
