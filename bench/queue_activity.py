"""queueActivity of the hot queue, 1,000 live interactions: latency p50/p99 with one
client, and throughput with 16. Target: p50 at most 50 ms.

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


def main() -> None:
    arguments = common.prepare(__doc__)
    user = "sup001"
    headers = {"Authorization": f"Bearer {common.token(user)}", "Content-Type": "application/json"}
    with common.serve(common.POSTGRES) as binocular:
        queues = common.graphql(binocular, "{ queues(first: 100) { nodes { id key } } }", user=user)
        hot = next(q["id"] for q in queues["queues"]["nodes"] if q["key"] == "queue00")
        body = {"query": QUERY, "variables": {"q": hot}}
        activity = common.graphql(binocular, QUERY, body["variables"], user=user)["queueActivity"]
        live = activity["waitingCount"] + activity["interactingCount"]
        # Latency rounds first: a throughput round leaves requests queued in the server when
        # wrk stops, and a latency round right after it measured them too.
        latency = [
            common.wrk(
                f"{binocular}/graphql",
                body,
                headers,
                arguments.seconds,
                connections=1,
                threads=1,
            )
            for _ in range(arguments.rounds)
        ]
        throughput = [
            common.wrk(f"{binocular}/graphql", body, headers, arguments.seconds)
            for _ in range(arguments.rounds)
        ]
        p50 = common.median([r["p50_ms"] for r in latency])
        p99 = common.median([r["p99_ms"] for r in latency])
        rps = common.median([r["requests_per_s"] for r in throughput])
        common.record(
            "queue_activity",
            f"{live} live interactions: p50 {p50:.1f} ms, p99 {p99:.1f} ms (1 client, target "
            f"p50 <= 50 ms); {rps:.0f} req/s with 16 clients",
            {
                "live_interactions": live,
                "p50_ms": p50,
                "p99_ms": p99,
                "requests_per_s_16_clients": rps,
                "latency_runs": latency,
                "throughput_runs": throughput,
                "query": QUERY,
                **common.machine(),
            },
        )


if __name__ == "__main__":
    main()
