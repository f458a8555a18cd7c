"""Small queries: `interaction(id)` with participants and sessions, and `viewer`, through
Binocular vs the hand-written reference endpoint (reference_app.py) running the same SQL
and returning the same JSON. Target: Binocular (its compiled executor, the default) at least
80% of the reference's throughput.

Binocular runs twice, side by side on the same database: compiled (the default) and
graphql-core (BINOCULAR_COMPILED_EXECUTION=false). The three servers' answers are checked
equal first; then, after a warm-up of each, wrk loads each in turn, in alternating rounds
(compiled, graphql-core, reference, then the other way round), each run waiting until the
previous server is idle. The compiled server's /metrics must count every request compiled,
the graphql-core one's none.

    python bench/small_queries.py [--seconds 10] [--rounds 3] [--no-generate] [--quick]
"""

import sys

import common

INTERACTION = """query($id: ID!) { interaction(id: $id) {
  id state mediaType startedAt
  participants { id purpose state name connectedAt user { id name } }
  monitoringSessions { id state startedAt monitor { id name } agent { id name } }
} }"""
VIEWER = "{ viewer { id key name roles presence } }"
TARGET = 0.80  # compiled / reference, requests per second


def main() -> None:
    arguments = common.prepare(__doc__)
    user = "sup001"
    headers = {"Authorization": f"Bearer {common.token(user)}", "Content-Type": "application/json"}
    port = common.free_port()
    reference = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "reference_app:create",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {"BINOCULAR_DATABASE_URL": common.POSTGRES, "BINOCULAR_JWT_SECRET": common.SECRET}
    with (
        common.serve_executors(common.POSTGRES) as binocular,
        common.background(
            reference, f"http://127.0.0.1:{port}/healthz", env=env, cwd=common.BENCH
        ) as reference_process,
    ):
        pids = {name: common.server_pid(url) for name, url in binocular.items()}
        pids["reference"] = reference_process.pid
        interaction = _monitored_interaction(binocular["compiled"], user)
        cases = {
            "interaction": (INTERACTION, {"id": interaction}, "/interaction"),
            "viewer": (VIEWER, {}, "/viewer"),
        }
        for name, (query, variables, path) in cases.items():
            body = {"query": query, "variables": variables}
            urls = {executor: f"{url}/graphql" for executor, url in binocular.items()}
            urls["reference"] = f"http://127.0.0.1:{port}{path}"
            theirs = common.httpx.post(urls["reference"], json=body, headers=headers).json()
            for executor, url in binocular.items():
                ours = common.graphql(url, query, variables, user=user)
                if ours != theirs["data"]:
                    raise SystemExit(
                        f"{name}: {executor} and the reference answer differently:\n"
                        f"{ours}\n{theirs['data']}"
                    )
            # Warm each (connections, pools, the caches of the document) before anything counts.
            for side, url in urls.items():
                common.wrk(url, body, headers, min(2, arguments.seconds))
                common.wait_idle(pids[side])
            runs = {side: [] for side in urls}
            for _, side in common.alternating(list(urls), arguments.rounds):
                executions = common.Executions(binocular[side], side) if side in binocular else None
                run = common.wrk(urls[side], body, headers, arguments.seconds)
                run["idle_wait_s"] = common.wait_idle(pids[side])
                if executions is not None:
                    run["executions"] = executions.check(run["requests"], f"{name}'s run")
                runs[side].append(run)
            _record(name, query, runs, arguments)


def _record(name: str, query: str, runs: dict, arguments) -> None:
    rps = {side: common.median([r["requests_per_s"] for r in each]) for side, each in runs.items()}
    compiled, core, reference = rps["compiled"], rps["graphql-core"], rps["reference"]
    ratios = {
        "compiled_over_reference": common.ratio(compiled, reference),
        "graphql_core_over_reference": common.ratio(core, reference),
        "compiled_over_graphql_core": common.ratio(compiled, core),
    }
    executed = common.executions_total(runs["compiled"])
    common.record(
        f"small_{name}",
        f"compiled {compiled:.0f} req/s, graphql-core {core:.0f} req/s, reference "
        f"{reference:.0f} req/s; compiled/reference {ratios['compiled_over_reference']:.2f} "
        f"(target >= {TARGET:.2f}), graphql-core/reference "
        f"{ratios['graphql_core_over_reference']:.2f}, compiled/graphql-core "
        f"{ratios['compiled_over_graphql_core']:.2f} ({executed['compiled']} executions "
        "compiled)",
        {
            # The compiled side, as the figures before it (binocular_requests_per_s, ratio).
            "binocular_requests_per_s": compiled,
            "graphql_core_requests_per_s": core,
            "reference_requests_per_s": reference,
            "ratio": ratios["compiled_over_reference"],
            **ratios,
            "target": f"compiled / reference >= {TARGET}",
            "target_met": (ratios["compiled_over_reference"] or 0) >= TARGET,
            "executions": {
                "compiled": executed,
                "graphql-core": common.executions_total(runs["graphql-core"]),
            },
            "runs": runs,
            "order": "alternating rounds: compiled, graphql-core, reference, then reversed",
            "query": query,
            "connections": 16,
            "seconds": arguments.seconds,
            "rounds": arguments.rounds,
            **common.machine(),
        },
    )


def _monitored_interaction(url: str, user: str) -> str:
    """A live interaction of the hot queue with participants and a session."""
    data = common.graphql(
        url,
        """{ interactions(first: 100, filter: {states: [CONNECTED]}) {
        nodes { id monitoringSessions { id } participants { id } } } }""",
        user=user,
    )
    nodes = data["interactions"]["nodes"]
    return max(nodes, key=lambda n: (len(n["monitoringSessions"]), len(n["participants"])))["id"]


if __name__ == "__main__":
    main()
