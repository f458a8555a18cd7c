"""queueActivity of the hot queue, 1,000 live interactions: latency p50/p99 with one
client, and throughput with 16. Target: p50 at most 25 ms (the compiled executor, the
default).

Binocular runs twice, side by side on the same database: compiled (the default) and
graphql-core (BINOCULAR_COMPILED_EXECUTION=false). Both answers are checked equal (but for
`asOf`, the time of the read) first; then, after a warm-up of each, the latency rounds,
alternating between the two (compiled, graphql-core, then graphql-core, compiled...), then
the throughput rounds, each run waiting until the previous server is idle. The compiled
server's /metrics must count every request compiled, the graphql-core one's none.

    python bench/queue_activity.py [--seconds 10] [--rounds 3] [--no-generate] [--quick]
"""

import common

QUERY = """query($q: ID!) { queueActivity(queueId: $q) {
  asOf waitingCount interactingCount onQueueAgentCount
  waiting { id mediaType startedAt participants { name } }
  interacting {
    id mediaType startedAt
    agents { name monitorability { allowed reason } }
    activeMonitoring { monitor { name } }
  }
  onQueueAgents { agent { id name presence } interactions { id } }
} }"""
TARGET_P50_MS = 25


def main() -> None:
    arguments = common.prepare(__doc__)
    user = "sup001"
    headers = {"Authorization": f"Bearer {common.token(user)}", "Content-Type": "application/json"}
    with common.serve_executors(common.POSTGRES) as binocular:
        pids = {name: common.server_pid(url) for name, url in binocular.items()}
        queues = common.graphql(
            binocular["compiled"], "{ queues(first: 100) { nodes { id key } } }", user=user
        )
        hot = next(q["id"] for q in queues["queues"]["nodes"] if q["key"] == "queue00")
        body = {"query": QUERY, "variables": {"q": hot}}
        answers = {
            name: common.graphql(url, QUERY, body["variables"], user=user)["queueActivity"]
            for name, url in binocular.items()
        }
        compiled, core = ({k: v for k, v in a.items() if k != "asOf"} for a in answers.values())
        if compiled != core:
            raise SystemExit(f"the two executors answer differently:\n{compiled}\n{core}")
        activity = answers["compiled"]
        live = activity["waitingCount"] + activity["interactingCount"]

        def run(side: str, connections: int, threads: int, what: str) -> dict:
            executions = common.Executions(binocular[side], side)
            result = common.wrk(
                f"{binocular[side]}/graphql",
                body,
                headers,
                arguments.seconds,
                connections=connections,
                threads=threads,
            )
            result["idle_wait_s"] = common.wait_idle(pids[side])
            result["executions"] = executions.check(result["requests"], what)
            return result

        # Warm each (connections, pools, the caches of the document) before anything counts.
        for side, url in binocular.items():
            common.wrk(f"{url}/graphql", body, headers, min(2, arguments.seconds), 1, 1)
            common.wait_idle(pids[side])
        # Latency rounds first: a throughput round leaves requests queued in the server when
        # wrk stops, and a latency round right after it measured them too (and each run waits
        # for the previous server to be idle).
        latency = {side: [] for side in binocular}
        for _, side in common.alternating(list(binocular), arguments.rounds):
            latency[side].append(run(side, 1, 1, "a latency run"))
        throughput = {side: [] for side in binocular}
        for _, side in common.alternating(list(binocular), arguments.rounds):
            throughput[side].append(run(side, 16, 2, "a throughput run"))

    figures = {
        side: {
            "p50_ms": common.median([r["p50_ms"] for r in latency[side]]),
            "p99_ms": common.median([r["p99_ms"] for r in latency[side]]),
            "requests_per_s_16_clients": common.median(
                [r["requests_per_s"] for r in throughput[side]]
            ),
        }
        for side in binocular
    }
    ours, theirs = figures["compiled"], figures["graphql-core"]
    ratios = {
        name: common.ratio(ours[name], theirs[name])
        for name in ("p50_ms", "p99_ms", "requests_per_s_16_clients")
    }
    executed = {
        side: common.executions_total(latency[side] + throughput[side]) for side in binocular
    }
    common.record(
        "queue_activity",
        f"{live} live interactions: compiled p50 {ours['p50_ms']:.1f} ms, p99 "
        f"{ours['p99_ms']:.1f} ms (1 client, target p50 <= {TARGET_P50_MS} ms), "
        f"{ours['requests_per_s_16_clients']:.0f} req/s with 16 clients; graphql-core p50 "
        f"{theirs['p50_ms']:.1f} ms, p99 {theirs['p99_ms']:.1f} ms, "
        f"{theirs['requests_per_s_16_clients']:.0f} req/s; compiled/graphql-core: p50 "
        f"{ratios['p50_ms']}, p99 {ratios['p99_ms']}, req/s "
        f"{ratios['requests_per_s_16_clients']} ({executed['compiled']['compiled']} executions "
        "compiled)",
        {
            "live_interactions": live,
            # The compiled side, as the figures before it.
            **ours,
            "graphql_core": theirs,
            "compiled_over_graphql_core": ratios,
            "target": f"compiled p50 <= {TARGET_P50_MS} ms",
            "target_met": ours["p50_ms"] <= TARGET_P50_MS,
            "executions": executed,
            "latency_runs": latency,
            "throughput_runs": throughput,
            "order": "latency rounds then throughput rounds, each alternating the executors",
            "query": QUERY,
            "seconds": arguments.seconds,
            "rounds": arguments.rounds,
            **common.machine(),
        },
    )


if __name__ == "__main__":
    main()
