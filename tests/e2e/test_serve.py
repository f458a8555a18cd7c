"""`binocular serve` as an operator runs it, over real HTTP."""

import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.servers import ServeProcess


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """A server on an empty SQLite file: it migrates at start."""
    folder = tmp_path_factory.mktemp("fresh")
    process = ServeProcess(
        f"sqlite:///{folder / 'fresh.db'}", JWT_SECRET, folder / "log", migrate=True
    )
    yield process
    process.stop()


def test_serve_migrates_at_start_and_is_healthy(fresh_server):
    response = httpx.get(f"{fresh_server.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    body = httpx.post(f"{fresh_server.url}/graphql", json={"query": "{ __typename }"}).json()
    assert body == {"data": {"__typename": "Query"}}


def test_graphiql_is_served_to_a_browser(fresh_server):
    response = httpx.get(f"{fresh_server.url}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_a_query_without_a_token_is_refused_with_a_code(fresh_server):
    body = httpx.post(f"{fresh_server.url}/graphql", json={"query": "{ viewer { name } }"}).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"query": 42}',
        b'{"query": "{ viewer { name "}',
        b"[]",
        b'{"query": "query { node(id: \\"\\u0000\\") { id } }"}',
    ],
)
def test_garbage_gets_a_clear_error_never_a_stack_trace(fresh_server, payload):
    response = httpx.post(
        f"{fresh_server.url}/graphql", content=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500
    for leak in ("Traceback", "sqlalchemy", "SELECT", ".py"):
        assert leak not in response.text


async def test_end_to_end_monitoring_session(live_api):
    """The whole story over HTTP: a call arrives, an agent takes it, a supervisor monitors."""
    interaction = await live_api.create()
    await live_api.connect(interaction, "bob")
    activity = await live_api.data(
        """query($q: ID!) { queueActivity(queueId: $q) { interacting { id
             agents { user { key } monitorability { allowed } } } } }""",
        {"q": live_api.ids["billing"]},
    )
    row = activity["queueActivity"]["interacting"][0]
    assert row["id"] == interaction and row["agents"][0]["monitorability"] == {"allowed": True}
    session = (await live_api.start("ann", interaction))["session"]
    panel = await live_api.data("{ interactionPanel { monitoring interaction { id } } }")
    assert panel["interactionPanel"] == [{"monitoring": True, "interaction": {"id": interaction}}]
    assert (await live_api.stop("ann", session["id"]))["session"]["endReason"] == "STOPPED"


async def test_a_subscription_over_http_is_refused_with_a_code(live_api):
    body = await live_api.raw("subscription { monitoringSessionChanged { cursor } }", user="ann")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in body["errors"][0]["message"]


async def test_a_variable_of_the_wrong_type_is_bad_user_input(live_api):
    body = await live_api.raw(
        "query($f: Int) { interactions(first: $f) { totalCount } }", {"f": "x"}, user="ann"
    )
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$f" in error["message"] and "Internal" not in error["message"]


async def test_graphql_response_json_is_answered_when_asked(live_api):
    asked = {"Accept": "application/graphql-response+json"}
    ok = await live_api.client.post("/graphql", json={"query": "{ __typename }"}, headers=asked)
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    broken = await live_api.client.post("/graphql", json={"query": "{"}, headers=asked)
    assert broken.status_code == 400 and "data" not in broken.json()
    plain = await live_api.client.post("/graphql", json={"query": "{"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("application/json")
