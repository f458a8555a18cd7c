"""GraphiQL served by the server itself, driven in headless Chromium with no internet."""

import os
import shutil
from pathlib import Path

import pytest

from app import ide
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


@pytest.fixture(scope="module", autouse=True)
def ide_assets():
    """Build the assets (from the npm registry) before this module's server starts."""
    if not ide.built():
        _needs(shutil.which("npm") is not None, "npm is needed to build GraphiQL's assets")
        ide.build()


@pytest.fixture
async def browser():
    _needs(Path(CHROMIUM).exists(), f"{CHROMIUM} is needed (Debian package chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


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


async def test_without_built_assets_the_cdn_page_is_served(api, monkeypatch, tmp_path):
    served = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert "unpkg.com" not in served.text and "/graphiql-assets/" in served.text
    monkeypatch.setattr(ide, "ASSETS", tmp_path / "not-built")
    fallback = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert fallback.status_code == 200 and "unpkg.com" in fallback.text
