"""The newcomer's first minute, against an installed `binocular` (CI runs it on the wheel
alone, in a virtual environment of its own): the demo starts with no setting, answers, shows
simulated traffic, serves GraphiQL from itself, and stops cleanly on Ctrl+C.

Standard library only, so that it tests the installed package and nothing else:
    python demo_smoke.py /path/to/venv/bin/binocular
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser

START_SECONDS = 60
TRAFFIC_SECONDS = 10
STOP_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


def graphql(base: str, token: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base}/graphql",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise AssertionError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


class _Assets(HTMLParser):
    """The addresses of the page's scripts and style sheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def wait_healthy(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"binocular demo exited with {process.returncode}")
        try:
            if get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/healthz did not answer within {START_SECONDS} s")


def printed_token(output_path: str, user: str, port: int) -> str:
    """The token the demo printed in the user's GraphiQL address."""
    deadline = time.monotonic() + 10
    pattern = re.compile(rf"^\s*{re.escape(user)}\b.*:{port}/graphql#token=(\S+)", re.MULTILINE)
    while time.monotonic() < deadline:
        with open(output_path) as output:
            match = pattern.search(output.read())
        if match:
            return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no GraphiQL address with a token was printed for {user}")


def check_traffic(base: str, token: str) -> int:
    """Simulated interactions appear in the queues within a few seconds. (The admin's token:
    a supervisor sees one division, and the first interaction may arrive in the other.)"""
    queues = graphql(base, token, "{ queues { nodes { id name } } }")["queues"]["nodes"]
    assert queues, "the admin sees no queue"
    query = "query($q: ID!) { queueActivity(queueId: $q) { waitingCount interactingCount } }"
    deadline = time.monotonic() + TRAFFIC_SECONDS
    while time.monotonic() < deadline:
        live = 0
        for queue in queues:
            activity = graphql(base, token, query, {"q": queue["id"]})["queueActivity"]
            live += activity["waitingCount"] + activity["interactingCount"]
        if live:
            return live
        time.sleep(0.5)
    raise AssertionError(f"no simulated interaction appeared within {TRAFFIC_SECONDS} s")


def check_graphiql(base: str) -> int:
    """GraphiQL's page and every asset it loads come from the server itself."""
    status, content_type, page = get(f"{base}/graphql", {"Accept": "text/html"})
    assert status == 200 and content_type.startswith("text/html"), (status, content_type)
    parser = _Assets()
    parser.feed(page.decode())
    assert parser.urls, "the GraphiQL page loads no script"
    for url in parser.urls:
        if url.startswith("data:"):
            continue  # inline, no request
        assert url.startswith("/") and not url.startswith("//"), f"not served by us: {url}"
        status, _, body = get(f"{base}{url}")
        assert status == 200 and len(body) > 1000, (url, status, len(body))
    return len(parser.urls)


def main(binocular: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # No setting at all: none of ours, in a folder of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINOCULAR_")}
    with tempfile.TemporaryDirectory(prefix="binocular-smoke-") as folder:
        output_path = os.path.join(folder, "output.txt")
        with open(output_path, "w") as output:
            process = subprocess.Popen(
                [binocular, "demo", "--port", str(port)],
                cwd=folder,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(base, process)
            token = printed_token(output_path, "Rita Admin", port)
            live = check_traffic(base, token)
            assets = check_graphiql(base)
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            code = process.wait(STOP_SECONDS)
            stopped_in = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        with open(output_path) as output:
            printed = output.read()
    assert code == 0, f"exit code {code} after SIGINT:\n{printed}"
    assert "Traceback" not in printed, f"a traceback was printed:\n{printed}"
    print(
        f"demo smoke: healthy, {live} live interactions seen, GraphiQL and {assets} assets "
        f"from the server, stopped by SIGINT in {stopped_in:.1f} s with exit 0"
    )


if __name__ == "__main__":
    main(sys.argv[1])
