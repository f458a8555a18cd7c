"""CORS: pages of the origins in BINOCULAR_ALLOWED_ORIGINS call the API from the browser."""

import asyncio
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import httpx
import pytest

from app import ide
from app.config import Settings
from app.server import create_app
from tests.conftest import JWT_SECRET
from tests.events.test_subscription import SETTLE, monitored
from tests.ops.test_graphiql import headless_chromium
from tests.servers import ServeProcess

CONSOLE = "http://console.test:5173"
STRANGER = "http://stranger.test"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}
QUERY = {"query": "{ __typename }"}


@pytest.fixture
async def client_for(sqlite_url):
    """An HTTP client of a new application allowing the given origins."""
    made = []

    async def make(allowed: list[str]) -> httpx.AsyncClient:
        app = create_app(
            Settings(database_url=sqlite_url, jwt_secret=JWT_SECRET, allowed_origins=allowed)
        )
        transport = httpx.ASGITransport(app=app)
        made.append((app, httpx.AsyncClient(transport=transport, base_url="http://binocular")))
        return made[-1][1]

    yield make
    for app, client in made:
        await client.aclose()
        await app.state.db.dispose()


CASES = [
    pytest.param([CONSOLE], CONSOLE, CONSOLE, id="allowed"),
    pytest.param([CONSOLE], STRANGER, None, id="not-allowed"),
    pytest.param(["*"], STRANGER, "*", id="any"),
    pytest.param([], CONSOLE, None, id="no-setting"),
]


@pytest.mark.parametrize(("allowed", "origin", "granted"), CASES)
async def test_preflight(client_for, allowed, origin, granted):
    client = await client_for(allowed)
    answer = await client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
    assert answer.headers.get("access-control-allow-origin") == granted
    assert answer.headers["x-request-id"]  # inside RequestContext, like every request
    if granted:
        assert answer.status_code == 200
        assert "POST" in answer.headers["access-control-allow-methods"]
        allowed_headers = answer.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-id"} <= set(allowed_headers.split(", "))
        assert "access-control-allow-credentials" not in answer.headers  # no cookies involved
    else:
        assert answer.status_code == 400  # what the browser takes as a refusal


@pytest.mark.parametrize(("allowed", "origin", "granted"), CASES)
async def test_simple_request(client_for, allowed, origin, granted):
    client = await client_for(allowed)
    answer = await client.post("/graphql", json=QUERY, headers={"Origin": origin})
    # The server answers either way: it is the browser that withholds a refused answer.
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert answer.headers.get("access-control-allow-origin") == granted
    if granted:
        assert answer.headers["access-control-expose-headers"] == "x-request-id"


async def test_same_origin_pages_need_no_setting(client_for):
    client = await client_for([])
    answer = await client.post("/graphql", json=QUERY, headers={"Origin": "http://binocular"})
    assert answer.json() == {"data": {"__typename": "Query"}}


async def test_preflights_are_measured_and_a_413_is_readable(client_for):
    client = await client_for([CONSOLE])
    await client.options("/graphql", headers={"Origin": CONSOLE, **PREFLIGHT})
    metrics = (await client.get("/metrics")).text
    assert (
        'binocular_http_requests_total{method="OPTIONS",route="/graphql",status="200"}' in metrics
    )
    too_large = await client.post("/graphql", content=b"x" * 2_000_000, headers={"Origin": CONSOLE})
    assert too_large.status_code == 413
    assert too_large.headers["access-control-allow-origin"] == CONSOLE


# In a browser: a page served from another port of 127.0.0.1 calls a real `binocular serve`.

PAGE = b"<!doctype html><title>Supervisor console</title>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass  # quiet tests


@contextmanager
def _page_origin():
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}"
    finally:
        http.shutdown()
        http.server_close()


class Consoles(NamedTuple):
    allowed: str
    other: str


@pytest.fixture
async def browser():
    async with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def consoles():
    """Two origins serving a page, both other than the server's: the first is allowed."""
    with _page_origin() as allowed, _page_origin() as other:
        yield Consoles(allowed, other)


@pytest.fixture(scope="module")
def server(database_url, consoles, tmp_path_factory):
    """`binocular serve` allowing the first console (this module's live_api calls it)."""
    process = ServeProcess(
        database_url,
        JWT_SECRET,
        tmp_path_factory.mktemp("serve") / "log",
        extra_env={"BINOCULAR_ALLOWED_ORIGINS": consoles.allowed},
    )
    yield process
    process.stop()


FETCH_VIEWER = """async ([url, token]) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ query: "{ viewer { name } }" }),
  });
  return { body: await response.json(), requestId: response.headers.get("x-request-id") };
}"""

# Resolves once the graphql-transport-ws connection is acknowledged; window.firstEvent then
# resolves with the subscription's first event.
SUBSCRIBE = """([url, token]) => new Promise((connected, refused) => {
  const client = graphqlWs.createClient({
    url,
    connectionParams: { Authorization: "Bearer " + token },
    retryAttempts: 0,
    on: {
      connected: () => connected(),
      closed: (event) => refused(new Error("closed " + event.code)),
    },
  });
  window.firstEvent = new Promise((next, error) => {
    const query = "subscription { monitoringSessionChanged { kind session { agent { name } } } }";
    client.subscribe({ query }, { next, error, complete: () => error(new Error("complete")) });
  });
})"""


async def test_a_page_of_an_allowed_origin_queries_and_subscribes(
    browser, server, live_api, consoles
):
    page = await browser.new_page()
    await page.goto(consoles.allowed)
    token = live_api.token("ann")
    answer = await page.evaluate(FETCH_VIEWER, [f"{server.url}/graphql", token])
    assert answer["body"] == {"data": {"viewer": {"name": "Ann Lee"}}}
    assert answer["requestId"]  # exposed to the page
    # The graphql-ws client Binocular serves to its own GraphiQL, loaded by the other origin.
    await page.add_script_tag(url=f"{server.url}{ide.ASSETS_URL}/graphql-ws.min.js")
    await page.evaluate(SUBSCRIBE, [server.ws_url, token])
    await asyncio.sleep(SETTLE)
    await monitored(live_api)
    event = await asyncio.wait_for(page.evaluate("() => window.firstEvent"), 15)
    assert event == {
        "data": {
            "monitoringSessionChanged": {
                "kind": "STARTED",
                "session": {"agent": {"name": "Bob Ray"}},
            }
        }
    }


async def test_a_page_of_another_origin_cannot_call_the_api(browser, server, live_api, consoles):
    from playwright.async_api import Error

    page = await browser.new_page()
    console = []
    page.on("console", lambda message: console.append(message.text))
    await page.goto(consoles.other)
    token = live_api.token("ann")
    with pytest.raises(Error, match="Failed to fetch"):
        await page.evaluate(FETCH_VIEWER, [f"{server.url}/graphql", token])
    assert any("blocked by CORS policy" in text for text in console), console
    await page.add_script_tag(url=f"{server.url}{ide.ASSETS_URL}/graphql-ws.min.js")
    with pytest.raises(Error, match="closed 1006"):  # the handshake is refused (403)
        await page.evaluate(SUBSCRIBE, [server.ws_url, token])
