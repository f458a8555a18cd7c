"""Authentication and authorisation at the GraphQL boundary: bearer tokens, the
INTEGRATION role, and error responses that never leak internals."""

import json
import time

import jwt
import pytest

from app.graphql.ids import encode_cursor, encode_id
from tests.conftest import JWT_SECRET

LEAKS = ("Traceback", "sqlalchemy", "SELECT")


# --- helpers ---------------------------------------------------------------------------------


def token(claims: dict, secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def in_seconds(seconds: int) -> int:
    return int(time.time()) + seconds


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


# Each value: the request headers of a caller without a valid token.
BAD_CREDENTIALS = {
    "no-token": dict,
    "empty-bearer": lambda: {"Authorization": "Bearer "},
    "malformed": lambda: bearer("not.a.jwt"),
    "garbage": lambda: bearer("garbage"),
    "not-bearer-scheme": lambda: {
        "Authorization": f"Basic {token({'sub': 'ann', 'exp': in_seconds(600)})}"
    },
    "expired": lambda: bearer(token({"sub": "ann", "exp": in_seconds(-30)})),
    "expired-beyond-leeway": lambda: bearer(token({"sub": "ann", "exp": in_seconds(-5)})),
    "other-secret": lambda: bearer(
        token(
            {"sub": "ann", "exp": in_seconds(600)},
            secret="another-secret-0123456789abcdef-0123456789",
        )
    ),
    "no-exp": lambda: bearer(token({"sub": "ann"})),
    "unknown-sub": lambda: bearer(token({"sub": "nobody", "exp": in_seconds(600)})),
    "no-sub": lambda: bearer(token({"exp": in_seconds(600)})),
    "alg-none": lambda: bearer(
        token({"sub": "ann", "exp": in_seconds(600)}, secret="", algorithm="none")
    ),
}


def error_codes(body: dict) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


def assert_no_leak(body: dict) -> None:
    text = json.dumps(body)
    for word in LEAKS:
        assert word not in text, f"{word!r} reached the client: {text}"
    for error in body.get("errors") or []:
        assert set(error.get("extensions") or {}) <= {"code"}, error


def root_operations(ids: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """One document per root field of Query and Mutation, with well-formed arguments."""
    interaction = encode_id("Interaction", 1)
    agent_input = {"interactionId": interaction, "agentId": ids["bob"]}
    return {
        "node": ("query($id: ID!) { node(id: $id) { id } }", {"id": ids["ann"]}),
        "viewer": ("{ viewer { id key } }", {}),
        "queues": ("{ queues { totalCount nodes { key } } }", {}),
        "queueActivity": (
            "query($id: ID!) { queueActivity(queueId: $id) { waitingCount } }",
            {"id": ids["billing"]},
        ),
        "interactions": ("{ interactions { totalCount nodes { id } } }", {}),
        "interaction": ("query($id: ID!) { interaction(id: $id) { id } }", {"id": interaction}),
        "interactionPanel": ("{ interactionPanel { monitoring } }", {}),
        "startMonitoring": (
            (
                "mutation($input: StartMonitoringInput!) { startMonitoring(input: $input) "
                "{ session { id } errors { code } } }"
            ),
            {"input": {"interactionId": interaction}},
        ),
        "stopMonitoring": (
            (
                "mutation($input: StopMonitoringInput!) { stopMonitoring(input: $input) "
                "{ session { id } errors { code } } }"
            ),
            {"input": {"sessionId": encode_id("MonitoringSession", 1)}},
        ),
        "createInteraction": (
            (
                "mutation($input: CreateInteractionInput!) { createInteraction(input: $input) "
                "{ interaction { id } errors { message } } }"
            ),
            {
                "input": {
                    "externalId": "unauth-1",
                    "mediaType": "VOICE",
                    "direction": "INBOUND",
                    "queueId": ids["billing"],
                    "customerName": "Casey",
                }
            },
        ),
        "connectAgent": (
            (
                "mutation($input: AgentOnInteractionInput!) { connectAgent(input: $input) "
                "{ interaction { id } errors { message } } }"
            ),
            {"input": agent_input},
        ),
        "disconnectAgent": (
            (
                "mutation($input: AgentOnInteractionInput!) { disconnectAgent(input: $input) "
                "{ interaction { id } errors { message } } }"
            ),
            {"input": agent_input},
        ),
        "endInteraction": (
            (
                "mutation($input: EndInteractionInput!) { endInteraction(input: $input) "
                "{ interaction { id } errors { message } } }"
            ),
            {"input": {"interactionId": interaction}},
        ),
        "setPresence": (
            (
                "mutation($input: SetPresenceInput!) { setPresence(input: $input) "
                "{ user { presence } errors { message } } }"
            ),
            {"input": {"userId": ids["bob"], "presence": "AWAY"}},
        ),
    }


def integration_operations(ids: dict[str, str], interaction: str) -> dict[str, tuple[str, dict]]:
    """The integration mutations, each aimed at a real interaction or user."""
    operations = root_operations(ids)
    agent_input = {"interactionId": interaction, "agentId": ids["bob"]}
    operations["connectAgent"][1]["input"] = agent_input
    operations["disconnectAgent"][1]["input"] = dict(agent_input)
    operations["endInteraction"][1]["input"] = {"interactionId": interaction}
    return {
        name: operations[name]
        for name in (
            "createInteraction",
            "connectAgent",
            "disconnectAgent",
            "endInteraction",
            "setPresence",
        )
    }


async def post(api, document: str, variables: dict, headers: dict) -> dict:
    response = await api.client.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    return response.json()


async def world(api) -> dict:
    """What an ADMIN sees of the interactions and of bob: to show nothing was written."""
    return await api.data(
        """query($bob: ID!) {
             interactions { totalCount nodes { id state participants { purpose state } } }
             node(id: $bob) { ... on User { presence } } }""",
        {"bob": api.ids["bob"]},
        user="root",
    )


# --- tokens ----------------------------------------------------------------------------------


async def test_a_valid_token_authenticates_its_subject(api):
    headers = bearer(token({"sub": "bob", "exp": in_seconds(60)}))
    body = await post(api, "{ viewer { key } }", {}, headers)
    assert body == {"data": {"viewer": {"key": "bob"}}}


async def test_the_bearer_scheme_is_case_insensitive(api):
    headers = {"Authorization": f"bearer {token({'sub': 'bob', 'exp': in_seconds(60)})}"}
    assert await post(api, "{ viewer { key } }", {}, headers) == {
        "data": {"viewer": {"key": "bob"}}
    }


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
async def test_every_root_field_needs_a_valid_token(api, credentials):
    headers = BAD_CREDENTIALS[credentials]()
    for field, (document, variables) in root_operations(api.ids).items():
        body = await post(api, document, variables, headers)
        assert error_codes(body) == ["UNAUTHENTICATED"], (field, body)
        assert body["errors"][0]["path"] == [field], (field, body)
        assert body.get("data") is None or body["data"][field] is None, (field, body)
        assert_no_leak(body)


async def test_nothing_is_written_without_a_valid_token(api):
    interaction = await api.create("billing")
    before = await world(api)
    for credentials in ("no-token", "expired", "other-secret", "unknown-sub"):
        headers = BAD_CREDENTIALS[credentials]()
        for field, (document, variables) in integration_operations(api.ids, interaction).items():
            body = await post(api, document, variables, headers)
            assert error_codes(body) == ["UNAUTHENTICATED"], (field, body)
    assert await world(api) == before
    assert before["interactions"]["totalCount"] == 1
    assert before["node"] == {"presence": "ON_QUEUE"}


async def test_unauthenticated_comes_before_checking_arguments(api):
    """Without a token, a malformed id or an out-of-range `first` still answers UNAUTHENTICATED."""
    operations = {
        "node": ('{ node(id: "garbage") { id } }', {}),
        "interaction": ('{ interaction(id: "garbage") { id } }', {}),
        "queueActivity": ('{ queueActivity(queueId: "garbage") { waitingCount } }', {}),
        "queues": ("{ queues(first: 1000) { totalCount } }", {}),
        "interactions": ('{ interactions(first: 1000, after: "garbage") { totalCount } }', {}),
        "startMonitoring": (
            """mutation { startMonitoring(input: {interactionId: "garbage"}) { errors { code } } }""",
            {},
        ),
        "connectAgent": (
            """mutation { connectAgent(input: {interactionId: "garbage", agentId: "garbage"})
                          { errors { message } } }""",
            {},
        ),
    }
    answers = {}
    for field, (document, variables) in operations.items():
        answers[field] = error_codes(await post(api, document, variables, {}))
    assert answers == {field: ["UNAUTHENTICATED"] for field in operations}


async def test_typename_needs_no_token(api):
    assert await post(api, "{ __typename }", {}, {}) == {"data": {"__typename": "Query"}}
    body = await post(api, "mutation { __typename }", {}, {})
    assert body == {"data": {"__typename": "Mutation"}}


async def test_introspection_needs_no_token(api):
    body = await post(
        api,
        """{ __schema { queryType { name } mutationType { name } types { name } }
             __type(name: "Interaction") { fields { name } } }""",
        {},
        {},
    )
    assert "errors" not in body, body
    schema = body["data"]["__schema"]
    assert schema["queryType"] == {"name": "Query"}
    assert schema["mutationType"] == {"name": "Mutation"}
    names = {t["name"] for t in schema["types"]}
    assert {"Interaction", "MonitoringSession", "QueueActivity", "Node"} <= names
    fields = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert {"id", "state", "participants", "agents", "activeMonitoring"} <= fields


async def test_introspection_with_a_bad_token_still_works(api):
    body = await post(api, "{ __typename }", {}, BAD_CREDENTIALS["expired"]())
    assert body == {"data": {"__typename": "Query"}}


async def test_a_data_field_beside_typename_still_needs_a_token(api):
    body = await post(api, "{ __typename viewer { key } }", {}, {})
    assert error_codes(body) == ["UNAUTHENTICATED"]


# --- the INTEGRATION role --------------------------------------------------------------------


@pytest.mark.parametrize("user", ["ann", "bob", "root", "sam"])
async def test_integration_mutations_are_forbidden_to_other_roles(api, user):
    interaction = await api.create("billing")
    before = await world(api)
    for field, (document, variables) in integration_operations(api.ids, interaction).items():
        body = await api.raw(document, variables, user=user)
        assert error_codes(body) == ["FORBIDDEN"], (field, body)
        assert body["errors"][0]["path"] == [field]
        assert body.get("data") is None or body["data"][field] is None, (field, body)
        assert_no_leak(body)
    assert await world(api) == before


async def test_integration_mutations_are_allowed_to_integration(api):
    interaction = await api.create("billing")
    for field, (document, variables) in integration_operations(api.ids, interaction).items():
        body = await api.raw(document, variables, user="pbx")
        assert "errors" not in body, (field, body)
        assert body["data"][field]["errors"] == [], (field, body)


# --- no internals in errors ------------------------------------------------------------------


async def test_error_responses_never_leak_internals(api):
    await api.create("billing")
    requests = [
        ("{ viewer { key ", {}),  # syntax error
        ("{ viewer { nope } }", {}),  # validation error
        ('{ node(id: "garbage") { id } }', {}),
        ('{ interaction(id: "garbage") { id } }', {}),
        ("{ queues(first: 101) { totalCount } }", {}),
        ("{ interactions(first: -1) { totalCount } }", {}),
        ('{ interactions(after: "garbage") { totalCount } }', {}),
        (
            "query($a: String) { interactions(after: $a) { totalCount } }",
            {"a": encode_cursor("interaction", "not a time", 1)},
        ),
        (
            "query($a: String) { interactions(after: $a) { totalCount } }",
            {"a": encode_cursor("interaction", "2024-05-01T09:00:00+00:00", "x")},
        ),
        (
            "query($a: String) { interactions(after: $a) { totalCount } }",
            {"a": encode_cursor("interaction", "2024-05-01T09:00:00", 1)},
        ),
        (
            "query($a: String) { queues(after: $a) { totalCount } }",
            {"a": encode_cursor("queue", "Billing", "x")},
        ),
        (
            "query($a: String) { queues(after: $a) { totalCount } }",
            {"a": encode_cursor("queue", 7, 1)},
        ),
        (
            "query($f: InteractionFilter) { interactions(filter: $f) { totalCount } }",
            {"f": {"startedAfter": "yesterday"}},
        ),
        (
            'mutation { setPresence(input: {userId: "garbage", presence: AWAY}) { errors { message } } }',
            {},
        ),
    ]
    for document, variables in requests:
        for user in ("ann", "pbx"):
            body = await api.raw(document, variables, user=user)
            assert_no_leak(body)


@pytest.mark.parametrize(
    "document",
    ["{ viewer { key ", "{ viewer { key } } }", "query { ", "{ viewer(x: ) { key } }"],
    ids=["unclosed", "extra-brace", "empty-selection", "missing-value"],
)
async def test_syntax_errors_carry_a_code(api, document):
    body = await api.raw(document, user="ann")
    assert body.get("data") is None
    assert len(body["errors"]) == 1, body
    assert error_codes(body)[0] in {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}, body
    assert_no_leak(body)


async def test_validation_errors_carry_their_code(api):
    body = await api.raw("{ viewer { nope } }", user="ann")
    assert body.get("data") is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert_no_leak(body)
