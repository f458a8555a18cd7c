"""GraphiQL served by the server itself, driven in headless Chromium with no internet."""

import os
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from app import ide
from app.config import Settings
from app.server import create_app
from tests.events.test_subscription import monitored

CHROMIUM = "/usr/bin/chromium"
# What a closed network needs: no background calls home that would be refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _needs(condition: bool, message: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def headless_chromium():
    """Debian's Chromium, driven by Playwright (also used by test_cors)."""
    _needs(Path(CHROMIUM).exists(), f"{CHROMIUM} is needed (Debian package chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def browser():
    async with headless_chromium() as chromium:
        yield chromium


async def open_graphiql(browser, server, token):
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    outside = []
    page.on(
        "request",
        lambda request: (
            request.url.startswith(server.url)
            or request.url.startswith("data:")
            or outside.append(request.url)
        ),
    )
    await page.goto(f"{server.url}/graphql#token={token}")
    await page.wait_for_selector(".graphiql-query-editor .CodeMirror")
    return page, outside


async def run(page, query: str) -> None:
    await page.click(".graphiql-query-editor .CodeMirror")
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.type(query)
    await page.click(".graphiql-execute-button")


async def response_text(page, containing: str) -> str:
    await page.wait_for_function(
        "text => document.querySelector('.graphiql-response')?.innerText.includes(text)",
        arg=containing,
        timeout=15000,
    )
    return await page.inner_text(".graphiql-response")


async def test_graphiql_runs_a_query_with_the_bearer_token_offline(
    browser, server, live_api, repo_root
):
    page, outside = await open_graphiql(browser, server, live_api.token("ann"))
    await run(page, "{ viewer { name } }")
    assert "Ann Lee" in await response_text(page, "Ann Lee")
    artifacts = repo_root / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    await page.screenshot(path=artifacts / "graphiql.png")
    assert outside == []  # every script, style and call came from the server itself


async def test_graphiql_runs_the_subscription_over_graphql_transport_ws(browser, server, live_api):
    page, outside = await open_graphiql(browser, server, live_api.token("ann"))
    await run(page, "subscription { monitoringSessionChanged { kind session { agent { name } } ")
    await page.wait_for_timeout(1000)  # the subscription is accepted
    await monitored(live_api)
    assert "Bob Ray" in await response_text(page, "STARTED")
    assert outside == []


class _Assets(HTMLParser):
    """The (tag, address) of every <script src> and <link href> of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        address = dict(attrs).get({"script": "src", "link": "href"}.get(tag, ""))
        if address:
            self.found.append((tag, address))


CONTENT_TYPES = {"script": ("text/javascript", "application/javascript"), "link": ("text/css",)}


async def test_the_page_and_its_assets_come_from_the_server_itself(api):
    served = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert served.status_code == 200 and "Binocular GraphiQL" in served.text
    assets = _Assets(served.text).found
    assert len(assets) == len(ide.FILES)
    for tag, address in assets:
        url = urljoin(str(served.url), address)
        assert urlsplit(url).netloc == "binocular", address  # the server's own origin
        asset = await api.client.get(url)
        assert asset.status_code == 200, address
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[tag]), address
    # The package's other files (a Django page's style, a plugin) are not served.
    assert (await api.client.get(f"{ide.ASSETS_URL}/style.css")).status_code == 404


def test_without_graphiql_files_the_server_does_not_start(monkeypatch, sqlite_url):
    monkeypatch.setattr(ide, "FILES", (*ide.FILES, "graphiql.missing.js"))
    with pytest.raises(RuntimeError, match="graphiql.missing.js"):
        create_app(Settings(database_url=sqlite_url, jwt_secret="secret"))
