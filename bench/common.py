"""Shared by the benchmarks: servers, load with wrk, results.

Every measure runs against real processes on this machine: `binocular serve` (one uvicorn
worker, uvloop and httptools), and wrk as the load generator, as the issue's baselines did.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", BENCH / "results"))
BINOCULAR = str(Path(sys.executable).parent / "binocular")
SECRET = "bench-secret-0123456789-0123456789-0123456789"
# Each script its own database, so that scripts can run side by side without regenerating
# each other's data.
POSTGRES = os.environ.get(
    "BENCH_POSTGRES_URL",
    f"postgresql://postgres@127.0.0.1:5432/binocular_bench_{Path(sys.argv[0]).stem}",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def serve(database_url: str, env: dict | None = None):
    """A `binocular serve` process; yields its base URL."""
    port = free_port()
    environment = {**os.environ, "BINOCULAR_DATABASE_URL": database_url,
                   "BINOCULAR_JWT_SECRET": SECRET, "BINOCULAR_LOG_LEVEL": "WARNING",
                   **(env or {})}
    process = subprocess.Popen([BINOCULAR, "serve", "--port", str(port), "--no-migrate"],
                               env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/healthz", process)
        yield url
    finally:
        process.terminate()
        process.wait(20)


@contextmanager
def background(command: list[str], health_url: str, env: dict | None = None, cwd=None):
    """Any other server process (the reference endpoint, PostGraphile)."""
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(health_url, process)
        yield process
    finally:
        process.terminate()
        process.wait(20)


def token(user_key: str) -> str:
    from app.auth import issue_token

    return issue_token(SECRET, user_key, 24 * 3600)


def graphql(url: str, query: str, variables: dict | None = None, user: str = "sup000") -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}},
                          headers={"Authorization": f"Bearer {token(user)}"}, timeout=60)
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


_LATENCY = re.compile(r"^\s+(50|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, body: dict | None, headers: dict, seconds: float, connections: int = 16,
        threads: int = 2) -> dict:
    """Load `url` with POSTs of `body` (GET without) for `seconds`: requests/s, latency ms."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    script = "\n".join(
        ([f"wrk.method = 'POST'", f"wrk.body = {json.dumps(json.dumps(body))}"] if body else [])
        + [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
        + ["""
errors = 0
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"') then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("BAD %d\\n", errors))
end"""])
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--latency", "-s", file.name, url],
            capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(file.name)
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {f"p{p}_ms": round(float(v) * _UNITS[u], 2) for p, v, u in _LATENCY.findall(output)}
    bad = int(re.search(r"BAD (\d+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    if bad:
        raise RuntimeError(f"{bad} of {total} responses were errors: {url}")
    return {"requests_per_s": round(requests, 1), **latency, "requests": total}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def record(name: str, summary: str, result: dict) -> None:
    """One summary line on stdout; the figures in bench/results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    result = {"measure": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **result}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{name}: {summary}", flush=True)


QUICK_SIZES = ["--agents", "20", "--supervisors", "8", "--queues", "3", "--historical", "50",
               "--live", "30"]


def ensure_database(url: str) -> None:
    """Create the benchmark database when it does not exist."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)

    async def create():
        connection = await asyncpg.connect(admin)
        try:
            if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())


def machine() -> dict:
    import platform

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine()}
