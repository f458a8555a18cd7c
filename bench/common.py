"""Shared by the benchmarks: servers, load with wrk, results.

Every measure runs against real processes on this machine: `binocular serve` (one uvicorn
worker, uvloop and httptools), and wrk as the load generator, as the issue's baselines did.
"""

import asyncio
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
    environment = {
        **os.environ,
        "BINOCULAR_DATABASE_URL": database_url,
        "BINOCULAR_JWT_SECRET": SECRET,
        "BINOCULAR_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    process = subprocess.Popen(
        [BINOCULAR, "serve", "--port", str(port), "--no-migrate"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token(user)}"},
        timeout=60,
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


_LATENCY = re.compile(r"^\s+(50|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    body: dict | None,
    headers: dict,
    seconds: float,
    connections: int = 16,
    threads: int = 2,
) -> dict:
    """Load `url` with POSTs of `body` (GET without) for `seconds`: requests/s, latency ms."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    script = "\n".join(
        (["wrk.method = 'POST'", f"wrk.body = {json.dumps(json.dumps(body))}"] if body else [])
        + [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
        + [
            """
errors = 0
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"') then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("BAD %d\\n", errors))
end"""
        ]
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                file.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
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
    result = {"measure": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{name}: {summary}", flush=True)


QUICK_SIZES = [
    "--agents",
    "20",
    "--supervisors",
    "8",
    "--queues",
    "3",
    "--historical",
    "50",
    "--live",
    "30",
]


def prepare(description: str):
    """The options every throughput script takes (--seconds, --rounds, --no-generate,
    --quick); creates and fills the benchmark database unless --no-generate."""
    import argparse

    import generate

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny data, one short round")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.seconds, arguments.rounds = 1, 1
    ensure_database(POSTGRES)
    if not arguments.no_generate:
        sizes = generate.sizes_parser().parse_args(QUICK_SIZES if arguments.quick else [])
        generate.generate(POSTGRES, sizes)
    return arguments


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

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def north_users(url: str, prefix: str) -> list[tuple[int, str]]:
    """(id, key) of the North users whose key starts with `prefix`, by key."""
    import asyncpg

    async def read():
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT u.id, u.key FROM users u JOIN division d ON d.id = u.division_id "
                "WHERE d.key = 'north' AND u.key LIKE $1 ORDER BY u.key",
                prefix + "%",
            )
        finally:
            await connection.close()
        return [(row["id"], row["key"]) for row in rows]

    return asyncio.run(read())


def server_pid(url: str) -> int | None:
    """The pid of the `binocular serve` child of this process listening on `url`'s port."""
    port = url.rsplit(":", 1)[1]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if ppid == os.getpid() and b"serve" in argv and port.encode() in argv:
            return int(entry)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by a process (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def background_load(seconds: float = 2.0) -> float:
    """How busy the machine is before the benchmark starts anything (0..1): other work."""
    busy, total = machine_busy()
    time.sleep(seconds)
    busy_after, total_after = machine_busy()
    return round((busy_after - busy) / max(total_after - total, 1e-9), 2)
