"""Shared by the benchmarks: servers, load with wrk, results.

Every measure runs against real processes on this machine: `binocular serve` (one uvicorn
worker, uvloop and httptools), and wrk as the load generator, as the issue's baselines did.

The write benchmarks also measure a reference revision of the code side by side (`Reference`,
`sides`): a git worktree of it, served with the same virtual environment from its own
database, migrated by its own migrations.

The read benchmarks measure both GraphQL executors side by side (`EXECUTORS`,
`serve_executors`, `Executions`): the compiled one (the default) and graphql-core
(`BINOCULAR_COMPILED_EXECUTION=false`), each a `binocular serve` of this working tree on the
same database, with `/metrics` read to check that each side ran on its executor.
"""

import asyncio
import contextlib
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

# The integration mutations the write benchmarks send, as the telephony platform would.
CREATE = """mutation($input: CreateInteractionInput!) { createInteraction(input: $input) {
  interaction { id state } errors { message field } } }"""
CONNECT = """mutation($input: AgentOnInteractionInput!) { connectAgent(input: $input) {
  interaction { id state } errors { message field } } }"""
DISCONNECT = """mutation($input: AgentOnInteractionInput!) { disconnectAgent(input: $input) {
  interaction { id state } errors { message field } } }"""
END = """mutation($input: EndInteractionInput!) { endInteraction(input: $input) {
  interaction { id state } errors { message field } } }"""

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
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


def code_environment(code: Path | None, env: dict | None = None) -> dict:
    """The environment of a `binocular` process that runs the code at `code` (a worktree,
    see `Reference`): its `app` package comes first on the path, before the editable
    install of this working tree. None: this working tree's code."""
    environment = {**os.environ, **(env or {})}
    if code is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(code), *filter(None, [environment.get("PYTHONPATH")])]
        )
    return environment


@contextmanager
def serve(database_url: str, env: dict | None = None, code: Path | None = None):
    """A `binocular serve` process (of the worktree `code`, else of this working tree);
    yields its base URL."""
    with serve_many(database_url, 1, env, code) as urls:
        yield urls[0]


@contextmanager
def serve_many(database_url: str, count: int, env: dict | None = None, code: Path | None = None):
    """`count` `binocular serve` processes on one database, each on its own port, started
    together; yields their base URLs."""
    environment = code_environment(
        code,
        {
            "BINOCULAR_DATABASE_URL": database_url,
            "BINOCULAR_JWT_SECRET": SECRET,
            "BINOCULAR_LOG_LEVEL": "WARNING",
            **(env or {}),
        },
    )
    processes, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [BINOCULAR, "serve", "--port", str(port), "--no-migrate"],
                    env=environment,
                    cwd=code,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(f"{url}/healthz", process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)


# --- the two GraphQL executors, side by side -------------------------------------------------

# Each executor's serve environment: compiled (app/graphql/compiled, the default), and every
# document on graphql-core, as before it.
EXECUTORS = {"compiled": {}, "graphql-core": {"BINOCULAR_COMPILED_EXECUTION": "false"}}


@contextmanager
def serve_executors(database_url: str, env: dict | None = None):
    """One `binocular serve` of this working tree per executor, on the same database, both
    up for the whole measure (an idle one waits on PostgreSQL's LISTEN); yields {executor:
    base URL}."""
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(serve(database_url, {**(env or {}), **overrides}))
            for name, overrides in EXECUTORS.items()
        }


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def graphql_executions(url: str) -> dict[tuple[str, str], float]:
    """`binocular_graphql_executions_total` of the server's /metrics, by (executor, reason)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = {}
    for line in text.splitlines():
        if line.startswith("binocular_graphql_executions_total{"):
            labels, value = line.rsplit(" ", 1)
            named = dict(_LABEL.findall(labels))
            found[(named.get("executor", ""), named.get("reason", ""))] = float(value)
    return found


def executions_since(before: dict, after: dict) -> dict:
    """What ran between two readings of `graphql_executions`: {"compiled": n, "graphql-core":
    {reason: n}}."""
    compiled, core = 0, {}
    for (executor, reason), value in after.items():
        n = int(value - before.get((executor, reason), 0.0))
        if not n:
            continue
        if executor == "compiled":
            compiled += n
        else:
            core[reason] = core.get(reason, 0) + n
    return {"compiled": compiled, "graphql-core": core}


def executor_problem(executor: str, counts: dict, at_least: int, allowed=()) -> str:
    """Why `counts` (of `executions_since`) are not what a server of `executor` runs, or "":
    a compiled side must have run at least `at_least` executions compiled and none on
    graphql-core but for the reasons in `allowed` (a mutation never compiles); a graphql-core
    side none compiled and at least `at_least` on graphql-core ("disabled")."""
    compiled, core = counts["compiled"], counts["graphql-core"]
    if executor == "compiled":
        others = {reason: n for reason, n in core.items() if reason not in allowed}
        if others:
            return f"ran on graphql-core ({others})"
        if compiled < at_least:
            return f"ran {compiled} executions compiled, not at least {at_least}"
        return ""
    if compiled:
        return f"ran {compiled} executions compiled"
    if sum(core.values()) < at_least:
        return f"ran {sum(core.values())} executions on graphql-core, not at least {at_least}"
    return ""


class Executions:
    """What one server executed between two readings of its /metrics, checked against the
    executor it was started with (see `executor_problem`): `Executions(url, executor)`
    before the measure, then `.check(at_least)` after it, which exits when the server did
    not run on its executor and returns the counts."""

    def __init__(self, url: str, executor: str, allowed: tuple[str, ...] = ()) -> None:
        self.url, self.executor, self.allowed = url, executor, allowed
        self.before = graphql_executions(url)

    def check(self, at_least: int, what: str = "the measure") -> dict:
        counts = executions_since(self.before, graphql_executions(self.url))
        wrong = executor_problem(self.executor, counts, at_least, self.allowed)
        if wrong:
            raise SystemExit(f"the {self.executor} server {wrong} during {what}: {self.url}")
        return counts


def executions_total(runs: list[dict]) -> dict:
    """The executions of runs (each with its `executions`, from `Executions.check`), summed."""
    total = {"compiled": 0, "graphql-core": {}}
    for run in runs:
        counts = run.get("executions")
        if not counts:
            continue
        total["compiled"] += counts["compiled"]
        for reason, n in counts["graphql-core"].items():
            total["graphql-core"][reason] = total["graphql-core"].get(reason, 0) + n
    return total


def wait_idle(pid: int | None, timeout: float = 15) -> float:
    """Wait until the process at `pid` stops using CPU (none over 0.3 s; a clock tick allowed):
    after wrk stops, a server still answers the requests it had queued, which would take CPU
    from the next run. Returns the seconds waited."""
    began = time.monotonic()
    if pid is None:
        return 0.0
    last = cpu_seconds(pid)
    while time.monotonic() - began < timeout:
        time.sleep(0.3)
        now = cpu_seconds(pid)
        if now - last <= 0.011:
            break
        last = now
    return round(time.monotonic() - began, 2)


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    return round(numerator / denominator, digits) if numerator and denominator else None


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


def postgres_cpu_seconds(database: str | None = None) -> float:
    """User + system CPU seconds used so far by PostgreSQL (it must run on this machine),
    from /proc. Without `database`: every process named `postgres` (the postmaster, its
    backends and workers) with what the postmaster's exited children used (its cutime +
    cstime), so that a backend or worker that ends in between still counts. With a
    database's name: its backends and the cluster's background processes (checkpointer,
    WAL writer, autovacuum...) only, so that other databases' work on the machine (a test
    suite running meanwhile) is left out."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
            if database is not None:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    title = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
            continue
        fields = text.rsplit(")", 1)[1].split()
        if database is None:
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
            continue
        # A backend's title: "postgres: 15/main: USER DATABASE HOST(PORT) ACTIVITY"; an
        # autovacuum worker's "postgres: 15/main: autovacuum worker DATABASE".
        words = title.split(": ", 2)[-1].split()
        if words[:2] == ["autovacuum", "worker"]:
            of = words[2] if len(words) > 2 else None
        elif len(words) >= 3 and ("(" in words[2] or words[2] == "[local]"):
            of = words[1]
        else:
            of = None  # the cluster's own: checkpointer, WAL writer, launchers...
        if of is None or of == database:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class PostgresUsage:
    """What PostgreSQL did between readings, for the database at `url`: the CPU seconds of
    all its processes (`postgres_cpu_seconds()`: the figure; the machine should be otherwise
    idle), those of the database's live backends and the cluster's own processes (a check when
    other work runs meanwhile; it misses backends that exit in between), and the sessions
    opened on the database (pg_stat_database: a pool that opens and closes connections costs
    PostgreSQL a backend start each). `async with PostgresUsage(url) as usage`, then
    `await usage.read()` before and after."""

    def __init__(self, url: str) -> None:
        self.url, self.name = url, database_name(url)

    async def __aenter__(self):
        import asyncpg

        self.connection = await asyncpg.connect(self.url)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.connection.close()

    async def read(self) -> tuple[float, float, int]:
        await self.connection.execute("SELECT pg_stat_clear_snapshot()")
        sessions = await self.connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        return postgres_cpu_seconds(), postgres_cpu_seconds(self.name), sessions or 0


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database


# --- a reference revision, side by side ------------------------------------------------------

DEFAULT_REFERENCE = "a48890e"


class Reference:
    """A detached git worktree of a reference revision in a temporary directory, removed at
    the end (`with Reference.open() as reference`: None when the revision is not in this
    clone, e.g. a shallow one; the reason is in `Reference.missing`)."""

    missing = ""

    def __init__(self, revision: str, commit: str, path: Path) -> None:
        self.revision, self.commit, self.path = revision, commit, path

    @classmethod
    @contextmanager
    def open(cls, revision: str | None = None):
        revision = revision or os.environ.get("BENCH_REFERENCE") or DEFAULT_REFERENCE
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            cls.missing = (
                f"the reference revision {revision!r} is not in this clone "
                f"(shallow: {git_output('rev-parse', '--is-shallow-repository') or '?'})"
            )
            yield None
            return
        commit = found.stdout.strip()
        path = Path(tempfile.mkdtemp(prefix="binocular-reference-")) / "code"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), commit],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise RuntimeError(f"git worktree add {commit} failed: {added.stderr.strip()}")
        try:
            reference = cls(revision, commit, path)
            reference.check_code()
            yield reference
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)],
                cwd=REPO,
                capture_output=True,
                check=False,
            )
            shutil.rmtree(path.parent, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True, check=False)

    def check_code(self) -> None:
        """The worktree's `app` is what a process started with `code_environment` imports
        (with -P, like the `binocular` entry point, the working directory is not on the
        path)."""
        imported = subprocess.run(
            [sys.executable, "-P", "-c", "import app; print(app.__file__)"],
            env=code_environment(self.path),
            cwd=self.path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(imported).resolve().is_relative_to(self.path.resolve()):
            raise RuntimeError(f"the reference's processes would import {imported}, not its code")
        self.imported = imported

    def prepare_database(self, url: str, sizes: list[str]) -> dict:
        """Create the reference's database, migrate it with the reference's own migrations
        (`binocular migrate` of the worktree) and fill it with the reference's own
        generate.py (the one that knows its models), with the same sizes and seed as the
        current side; returns the row count of each table, for `sides` to compare."""
        ensure_database(url)
        environment = code_environment(self.path, {"BINOCULAR_DATABASE_URL": url})
        subprocess.run(
            [BINOCULAR, "migrate"],
            env=environment,
            cwd=self.path,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        filled = subprocess.run(
            [sys.executable, "generate.py", *sizes, url],
            env=environment,
            cwd=self.path / "bench",
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(filled.stdout.strip().splitlines()[-1])


def git_output(*arguments: str) -> str:
    found = subprocess.run(
        ["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False
    )
    return found.stdout.strip() if found.returncode == 0 else ""


class Side:
    """One version of the code under measure: this working tree ("current"), or the
    reference's worktree; each with its own database."""

    def __init__(self, name: str, database: str, code: Path | None, commit: str) -> None:
        self.name, self.database, self.code, self.commit = name, database, code, commit


def reference_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_reference").render_as_string(hide_password=False)


@contextmanager
def sides(generate_data: bool, sizes: list[str], with_reference: bool = True):
    """The sides to measure, current first: this working tree on POSTGRES, and (unless
    `with_reference` is false, or its revision is missing: then a note is printed) the
    reference on POSTGRES + "_reference". Both databases are filled with the same data
    (`sizes`: generate.py's options) unless `generate_data` is false."""
    import generate

    ensure_database(POSTGRES)
    counts = (
        generate.generate(POSTGRES, generate.sizes_parser().parse_args(sizes))
        if generate_data
        else None
    )
    current = Side("current", POSTGRES, None, git_output("rev-parse", "HEAD"))
    # Uncommitted changes to the code are measured too: say so in the results.
    current.dirty = bool(git_output("status", "--porcelain", "--", "app", "alembic"))
    if not with_reference:
        yield [current]
        return
    with Reference.open() as reference:
        if reference is None:
            print(f"note: {Reference.missing}; measuring the current code only", flush=True)
            yield [current]
            return
        side = Side("reference", reference_database(POSTGRES), reference.path, reference.commit)
        side.dirty, side.imported = False, reference.imported
        if generate_data:
            theirs = reference.prepare_database(side.database, sizes)
            # Tables the reference does not have yet (an audit trail of the same sessions)
            # are not data the workload reads: compare what both sides have.
            if theirs != {table: n for table, n in counts.items() if table in theirs}:
                raise SystemExit(
                    f"the reference's generate.py made other data than the current one "
                    f"(rows {theirs} against {counts}): the comparison would not be fair; "
                    "choose another reference (BENCH_REFERENCE)"
                )
        else:
            ensure_database(side.database)
        yield [current, side]


def alternating(sides_: list, rounds: int):
    """(round, side) in the order that cancels drift: A B, B A, A B..."""
    for number in range(rounds):
        for side in sides_ if number % 2 == 0 else reversed(sides_):
            yield number, side


def side_by_side(sides_: list, rounds: int, process_counts, measure) -> dict:
    """Every side with each number of serve processes (on its database), in alternating
    rounds: `measure(side, urls, round)` -> a run's figures. Returns the runs by (side name,
    process count)."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for number, side in alternating(sides_, rounds):
        for count in process_counts:
            with serve_many(side.database, count, code=side.code) as urls:
                run = measure(side, urls, number)
            run.update(side=side.name, serve_processes=count, round=number)
            runs.setdefault((side.name, count), []).append(run)
    return runs


def compare(runs: dict, count: int, figures, ratio_of) -> dict:
    """The medians over the rounds of `figures` for the current side and the reference (None
    without one), and current / reference of the `ratio_of` figures."""

    def medians(side: str) -> dict | None:
        if (side, count) not in runs:
            return None
        return {
            name: round(median(values), 3)
            if (values := [r[name] for r in runs[(side, count)] if r.get(name) is not None])
            else None
            for name in figures
        }

    current, reference = medians("current"), medians("reference")
    ratios = (
        {
            name: round(current[name] / reference[name], 2)
            if current[name] and reference[name]
            else None
            for name in ratio_of
        }
        if reference
        else None
    )
    return {"current": current, "reference": reference, "current_over_reference": ratios}


def sides_record(sides_: list) -> dict:
    """What the results say about the sides measured."""
    reference = next((side for side in sides_ if side.name == "reference"), None)
    return {
        "commits": {side.name: side.commit for side in sides_},
        "current_has_uncommitted_changes": sides_[0].dirty,
        "reference_code": str(reference.imported) if reference else None,
        "reference_missing": Reference.missing or None,
    }


def record_side_by_side(
    runs: dict,
    about: dict,
    measures: dict[int, str],
    figures,
    ratios: dict[str, str],
    describe,
    settings: dict,
    target: str = "",
) -> None:
    """One record per process count (`measures`: count -> measure name): the current side's
    medians, the comparison with the reference, every run, the settings and the machine.
    `ratios` names the figures compared, as the summary line words them."""
    for processes, measure in measures.items():
        compared = compare(runs, processes, figures, tuple(ratios))
        current, reference = compared["current"], compared["reference"]
        result = {
            **current,
            **compared,
            "serve_processes": processes,
            **settings,
            **about,
            "runs": [
                run
                for (_, count), each in sorted(runs.items())
                if count == processes
                for run in each
            ],
            **machine(),
        }
        summary = (
            f"{processes} serve process{'es' if processes > 1 else ''}, "
            f"{settings['clients']} clients: {describe(current)}{target}"
        )
        if reference:
            of = compared["current_over_reference"]
            summary += (
                f"; reference {about['commits']['reference'][:7]}: {describe(reference)}; "
                "current/reference: "
                + ", ".join(f"{words} {of[name]}" for name, words in ratios.items())
            )
        record(measure, summary, result)
