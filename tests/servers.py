"""Real `binocular serve` processes for end-to-end tests."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import websockets
from gql import Client
from gql.transport.websockets import WebsocketsTransport

BINOCULAR = str(Path(sys.executable).parent / "binocular")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    def __init__(
        self,
        database_url: str,
        jwt_secret: str,
        log_path: Path,
        migrate: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "BINOCULAR_DATABASE_URL": database_url,
            "BINOCULAR_JWT_SECRET": jwt_secret,
            "BINOCULAR_EVENT_POLL_SECONDS": "1",
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [BINOCULAR, "serve", "--port", str(self.port), *([] if migrate else ["--no-migrate"])],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"binocular serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("binocular serve did not become healthy")

    def log_records(self) -> list[dict]:
        """The server's JSON log lines so far."""
        self._log.flush()
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def kill(self) -> None:
        """kill -9: no shutdown of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def metric(server: ServeProcess, name: str, labels: str = "") -> float:
    """One sample of the server's /metrics (0 when the series does not exist yet)."""
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def ws_client(server: ServeProcess, token: str | None) -> Client:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload=payload,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    return Client(transport=transport)


@asynccontextmanager
async def raw_subscriber(ws_url: str, token: str, origin: str | None = None):
    """A graphql-transport-ws connection, acknowledged and subscribed (id "1") to every
    monitoring event, spoken message by message with no client library."""
    async with websockets.connect(
        ws_url, origin=origin, subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { monitoringSessionChanged { cursor } }"},
                }
            )
        )
        yield ws
