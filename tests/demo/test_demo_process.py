"""`binocular demo` as a newcomer meets it: a real process with no setting, whose printed
GraphiQL address opens a working, offline GraphiQL on live simulated traffic in headless
Chromium, and which Ctrl+C stops cleanly."""

import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from types import SimpleNamespace

import httpx
import pytest

from tests.ops.test_graphiql import headless_chromium, open_graphiql, response_text, run
from tests.servers import BINOCULAR, free_port


@contextmanager
def running_demo(tmp_path, *options: str, start_seconds: float = 60):
    """A `binocular demo` process (with `options`) in `tmp_path`, once it answers /healthz;
    killed on the way out if it still runs."""
    port = free_port()
    output = tmp_path / "output.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINOCULAR_")}
    with open(output, "w") as out:
        process = subprocess.Popen(
            [BINOCULAR, "demo", "--port", str(port), *options],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_seconds
    try:
        while True:
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the demo did not become healthy"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield SimpleNamespace(url=url, port=port, process=process, output=output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def demo(tmp_path):
    with running_demo(tmp_path) as running:
        yield running


def printed_address(demo, name: str) -> str:
    match = re.search(
        rf"^\s*{name}\b.*?(http://127\.0\.0\.1:{demo.port}/graphql#token=\S+)",
        demo.output.read_text(),
        re.MULTILINE,
    )
    assert match, demo.output.read_text()
    return match.group(1)


def wait_for_traffic(demo, token: str) -> None:
    """The simulator's first interaction arrives at once; wait until it is committed."""
    query = {"query": "{ interactions(first: 1) { nodes { id } } }"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = httpx.post(
            f"{demo.url}/graphql", json=query, headers={"Authorization": f"Bearer {token}"}
        ).json()
        if answer["data"]["interactions"]["nodes"]:
            return
        time.sleep(0.2)
    raise AssertionError("no simulated interaction within 10 s")


async def test_the_printed_address_opens_graphiql_on_live_traffic_offline(demo):
    # The admin sees every division: the first interaction may arrive in either.
    address = printed_address(demo, "Rita Admin")
    token = address.split("#token=", 1)[1]
    wait_for_traffic(demo, token)
    async with headless_chromium() as browser:
        page, outside = await open_graphiql(browser, demo, token)
        assert page.url == address
        await run(page, "{ interactions(first: 3) { nodes { mediaType state } } ")
        answer = await response_text(page, "mediaType")
        assert re.search(r'"state": "(WAITING|CONNECTED|ENDED)"', answer), answer
        assert outside == []  # no CDN, nothing but the demo server itself


def test_ctrl_c_stops_the_demo_cleanly(demo):
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(5) == 0
    printed = demo.output.read_text()
    assert "Traceback" not in printed and "stopped" in printed
