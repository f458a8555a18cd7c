"""queueActivity of the hot queue, 1,000 live interactions: latency p50/p99 with one
client, and throughput with 16. Target: p50 at most 50 ms.

    python bench/queue_activity.py [--seconds 10] [--rounds 3] [--no-generate] [--quick]
"""

import argparse

import common
import generate

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny data, one short round")
    arguments = parser.parse_args()
    sizes = generate.sizes_parser().parse_args(common.QUICK_SIZES if arguments.quick else [])
    if arguments.quick:
        arguments.seconds, arguments.rounds = 1, 1
    common.ensure_database(common.POSTGRES)
    if not arguments.no_generate:
        generate.generate(common.POSTGRES, sizes)
    user = "sup001"
    headers = {"Authorization": f"Bearer {common.token(user)}", "Content-Type": "application/json"}
    with common.serve(common.POSTGRES) as binocular:
        queues = common.graphql(binocular, "{ queues(first: 100) { nodes { id key } } }", user=user)
        hot = next(q["id"] for q in queues["queues"]["nodes"] if q["key"] == "queue00")
        body = {"query": QUERY, "variables": {"q": hot}}
        activity = common.graphql(binocular, QUERY, body["variables"], user=user)["queueActivity"]
        live = activity["waitingCount"] + activity["interactingCount"]
        latency, throughput = [], []
        for _ in range(arguments.rounds):
            latency.append(common.wrk(f"{binocular}/graphql", body, headers, arguments.seconds,
                                      connections=1, threads=1))
            throughput.append(common.wrk(f"{binocular}/graphql", body, headers,
                                         arguments.seconds))
        p50 = common.median([r["p50_ms"] for r in latency])
        p99 = common.median([r["p99_ms"] for r in latency])
        rps = common.median([r["requests_per_s"] for r in throughput])
        common.record(
            "queue_activity",
            f"{live} live interactions: p50 {p50:.1f} ms, p99 {p99:.1f} ms (1 client, target "
            f"p50 <= 50 ms); {rps:.0f} req/s with 16 clients",
            {"live_interactions": live, "p50_ms": p50, "p99_ms": p99,
             "requests_per_s_16_clients": rps, "latency_runs": latency,
             "throughput_runs": throughput, "query": QUERY, **common.machine()},
        )


if __name__ == "__main__":
    main()
