"""What an operator relies on, against real `binocular serve` processes."""

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import JWT_SECRET
from tests.events.test_subscription import Subscriber, monitored
from tests.servers import ServeProcess, metric, raw_subscriber

BINOCULAR = str(Path(sys.executable).parent / "binocular")


def test_readyz_is_ready_when_migrated(server):
    response = httpx.get(f"{server.url}/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_readyz_is_not_ready_before_migrations(tmp_path):
    unmigrated = ServeProcess(f"sqlite:///{tmp_path / 'empty.db'}", JWT_SECRET, tmp_path / "log")
    try:
        assert httpx.get(f"{unmigrated.url}/healthz").status_code == 200  # the process is up
        response = httpx.get(f"{unmigrated.url}/readyz")
        assert response.status_code == 503
        assert "not migrated" in response.json()["problems"][0]
    finally:
        unmigrated.stop()


async def test_metrics_count_requests_sessions_and_subscriptions(server, live_api):
    started = metric(server, "binocular_monitoring_sessions_started_total")
    stopped = metric(server, "binocular_monitoring_sessions_ended_total", '{reason="STOPPED"}')
    graphql = metric(
        server, "binocular_http_requests_total", '{method="POST",route="/graphql",status="200"}'
    )
    subscriptions = metric(server, "binocular_active_subscriptions")
    async with Subscriber(server, live_api.token("ann")):
        assert metric(server, "binocular_active_subscriptions") == subscriptions + 1
        _, session = await monitored(live_api)
        await live_api.stop("ann", session)
    assert metric(server, "binocular_monitoring_sessions_started_total") == started + 1
    assert (
        metric(server, "binocular_monitoring_sessions_ended_total", '{reason="STOPPED"}')
        == stopped + 1
    )
    assert (
        metric(
            server, "binocular_http_requests_total", '{method="POST",route="/graphql",status="200"}'
        )
        >= graphql + 4
    )
    assert (
        "binocular_http_request_duration_seconds_bucket" in httpx.get(f"{server.url}/metrics").text
    )


def test_request_ids_are_echoed_and_logged(server):
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": "{ __typename }"},
        headers={"X-Request-ID": "trace-abc-123"},
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
    generated = httpx.get(f"{server.url}/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    lines = [r for r in server.log_records() if r.get("request_id") == "trace-abc-123"]
    assert lines and lines[-1]["event"].startswith("POST /graphql 200")
    assert {"timestamp", "level", "logger"} <= set(lines[-1])


def test_a_body_over_the_limit_is_refused_with_413(server):
    response = httpx.post(
        f"{server.url}/graphql",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_websockets_from_another_sites_page_are_refused(server, live_api):
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(
            server.ws_url, origin="https://evil.example", subprotocols=["graphql-transport-ws"]
        ):
            pass
    assert refused.value.response.status_code == 403
    async with raw_subscriber(server.ws_url, live_api.token("ann"), origin=server.url):
        pass  # acknowledged: a page of the server's own site may open a WebSocket


async def test_a_client_leaving_mid_request_is_not_an_application_error(server):
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"query": '
        )
    await asyncio.sleep(0.5)
    errors = [r for r in server.log_records() if r["level"] in ("error", "critical")]
    assert errors == []
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_internal_errors_are_masked_and_logged_with_the_request_id(tmp_path, repo_root):
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    env = {"BINOCULAR_DATABASE_URL": url, "BINOCULAR_JWT_SECRET": JWT_SECRET}
    directory = repo_root / "app" / "demo" / "directory.json"
    subprocess.run([BINOCULAR, "directory", "load", str(directory)], env=env, check=True)
    token = subprocess.run(
        [BINOCULAR, "token", "ann"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    broken = ServeProcess(url, JWT_SECRET, tmp_path / "log")
    try:
        import sqlite3

        with sqlite3.connect(tmp_path / "broken.db") as connection:
            connection.execute("DROP TABLE queue_member")  # the database breaks under us
        response = httpx.post(
            f"{broken.url}/graphql",
            json={"query": '{ queueActivity(queueId: "UXVldWU6MQ") { onQueueAgentCount } }'},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "broken-1"},
        )
        assert response.status_code == 200
        error = response.json()["errors"][0]
        assert error["message"] == "Internal server error."
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        for leak in ("Traceback", "sqlite", "queue_member", "SELECT", ".py"):
            assert leak not in response.text
        logged = [
            r
            for r in broken.log_records()
            if r.get("request_id") == "broken-1" and r["level"] == "error"
        ]
        assert logged and "no such table: queue_member" in logged[0]["exception"]
    finally:
        broken.stop()


async def test_sigterm_says_going_away_to_subscribers_and_finishes_requests(
    database_url, live_api, tmp_path
):
    leaving = ServeProcess(database_url, JWT_SECRET, tmp_path / "log")
    try:
        async with raw_subscriber(leaving.ws_url, live_api.token("ann")) as ws:

            async def slow_body():
                yield b'{"query": '
                await asyncio.sleep(1.5)  # SIGTERM arrives while this request is in flight
                yield b'"{ __typename }"}'

            async with httpx.AsyncClient(base_url=leaving.url) as client:
                in_flight = asyncio.create_task(
                    client.post(
                        "/graphql",
                        content=slow_body(),
                        headers={"Content-Type": "application/json"},
                    )
                )
                await asyncio.sleep(0.5)
                leaving.process.send_signal(signal.SIGTERM)
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                response = await in_flight
        assert closed.value.rcvd.code == 1001
        assert response.json() == {"data": {"__typename": "Query"}}
        leaving.process.wait(15)
        events = [r["event"] for r in leaving.log_records()]
        assert "Application shutdown complete." in events
        assert events[-1].startswith("Finished server process")
    finally:
        leaving.stop()
