"""startMonitoring + stopMonitoring pairs per second on PostgreSQL, 32 concurrent clients,
with 1 and with 2 `binocular serve` processes on one database; the current code side by side
with a reference revision (`common.Reference`: BENCH_REFERENCE, else a48890e), each on its
own database with the same data, in alternating rounds. Target: 500 pairs/s.

Each client is a different North supervisor with its own keep-alive connection
(httpx.AsyncClient, to one of the servers: the clients are split evenly over them) and its
own interactions (VOICE or CHAT, created for the run through the integration mutations as
`pbx`, each with one connected North agent), so that no start is refused: it loops start +
stop over them for the duration. Every response is checked; any error or refusal fails the
benchmark. Measured after a warm-up: pairs per second, pair latency, and the CPU seconds per
pair of the serve processes and of PostgreSQL (all its processes), from /proc.

    python bench/monitoring_pairs.py [--seconds 8] [--warmup 2] [--rounds 2] [--clients 32]
                                     [--per-client 4] [--no-generate] [--no-reference]
                                     [--quick]
"""

import argparse
import asyncio
import sys
import time

import common
import httpx

START = """mutation($input: StartMonitoringInput!) { startMonitoring(input: $input) {
  session { id state } errors { code message } } }"""
STOP = """mutation($input: StopMonitoringInput!) { stopMonitoring(input: $input) {
  session { id state endReason } errors { code message } } }"""
CREATE = """mutation($input: CreateInteractionInput!) { createInteraction(input: $input) {
  interaction { id } errors { message field } } }"""
CONNECT = """mutation($input: AgentOnInteractionInput!) { connectAgent(input: $input) {
  interaction { id state } errors { message field } } }"""


# --- the benchmark ---------------------------------------------------------------------------


def prepare(url: str, database: str, clients: int, per_client: int) -> list[tuple[str, list]]:
    """(supervisor key, interaction ids) for each client: fresh interactions for this run."""
    supervisors = [key for _, key in common.north_users(database, "sup")]
    agents = [pk for pk, _ in common.north_users(database, "agent")]
    if len(supervisors) < clients:
        raise SystemExit(
            f"{clients} clients need {clients} North supervisors; the data has "
            f"{len(supervisors)}: generate more (--supervisors)"
        )
    if not agents:
        raise SystemExit("the data has no North agent")
    from app.graphql.ids import encode_id

    http = httpx.Client(
        base_url=url, timeout=60, headers={"Authorization": f"Bearer {common.token('pbx')}"}
    )

    def as_pbx(query: str, variables: dict | None = None) -> dict:
        body = http.post("/graphql", json={"query": query, "variables": variables or {}}).json()
        if body.get("errors"):
            raise SystemExit(f"the integration call failed: {body['errors']}")
        return body["data"]

    queues = as_pbx("{ queues(first: 100) { nodes { id key } } }")
    hot = next(q["id"] for q in queues["queues"]["nodes"] if q["key"] == "queue00")
    run = f"{int(time.time() * 1000):x}"
    plan = []
    for c in range(clients):
        interactions = []
        for i in range(per_client):
            n = c * per_client + i
            created = as_pbx(
                CREATE,
                {
                    "input": {
                        "externalId": f"bench-pairs-{run}-{n}",
                        "mediaType": ("VOICE", "CHAT")[n % 2],
                        "direction": "INBOUND",
                        "queueId": hot,
                        "customerName": f"Pairs {n}",
                    }
                },
            )["createInteraction"]
            if created["errors"]:
                raise SystemExit(f"createInteraction refused: {created['errors']}")
            interaction = created["interaction"]["id"]
            connected = as_pbx(
                CONNECT,
                {
                    "input": {
                        "interactionId": interaction,
                        "agentId": encode_id("User", agents[n % len(agents)]),
                    }
                },
            )["connectAgent"]
            if connected["errors"] or connected["interaction"]["state"] != "CONNECTED":
                raise SystemExit(f"connectAgent refused: {connected}")
            interactions.append(interaction)
        plan.append((supervisors[c], interactions))
    http.close()
    return plan


class Failures:
    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.first) < 10:
            self.first.append(what)


def _payload(response: httpx.Response, field: str, state: str, failures: Failures):
    """The session of a start/stop payload, or None (and a failure) for anything unexpected."""
    try:
        body = response.json()
    except ValueError:
        failures.add(f"{field}: HTTP {response.status_code}, not JSON: {response.text[:200]}")
        return None
    payload = (body.get("data") or {}).get(field)
    if (
        response.status_code != 200
        or body.get("errors")
        or not payload
        or payload["errors"]
        or not payload["session"]
        or payload["session"]["state"] != state
    ):
        failures.add(f"{field}: HTTP {response.status_code}: {str(body)[:300]}")
        return None
    return payload["session"]


async def client(
    url: str,
    supervisor: str,
    interactions: list[str],
    start_at: float,
    measure_from: float,
    until: float,
    latencies: list[float],
    failures: Failures,
) -> int:
    """Start + stop in a loop; returns the pairs done. Latencies of the measured ones."""
    headers = {"Authorization": f"Bearer {common.token(supervisor)}"}
    done = 0
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=1)
    ) as http:
        await http.get("/healthz")  # open the connection before the clock starts
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        n = 0
        while time.perf_counter() < until:
            interaction = interactions[n % len(interactions)]
            n += 1
            began = time.perf_counter()
            response = await http.post(
                "/graphql",
                json={"query": START, "variables": {"input": {"interactionId": interaction}}},
            )
            session = _payload(response, "startMonitoring", "ACTIVE", failures)
            if session is None:
                continue
            response = await http.post(
                "/graphql",
                json={"query": STOP, "variables": {"input": {"sessionId": session["id"]}}},
            )
            stopped = _payload(response, "stopMonitoring", "ENDED", failures)
            if stopped is None:
                continue
            if stopped["endReason"] != "STOPPED" or stopped["id"] != session["id"]:
                failures.add(f"stopMonitoring: unexpected {stopped}")
                continue
            finished = time.perf_counter()
            if measure_from <= finished <= until:
                done += 1
                latencies.append(finished - began)
    return done


async def load(urls: list[str], database: str, plan, warmup: float, seconds: float) -> dict:
    pids = [common.server_pid(url) for url in urls]
    latencies: list[float] = []
    failures = Failures()
    start_at = time.perf_counter() + 0.5  # every client connected by then
    measure_from = start_at + warmup
    until = measure_from + seconds
    tasks = [
        asyncio.create_task(
            client(
                urls[c % len(urls)],
                supervisor,
                interactions,
                start_at,
                measure_from,
                until,
                latencies,
                failures,
            )
        )
        for c, (supervisor, interactions) in enumerate(plan)
    ]

    async def snapshot(postgres: common.PostgresUsage):
        return (
            time.process_time(),
            sum(common.cpu_seconds(pid) for pid in pids),
            *await postgres.read(),
            *common.machine_busy(),
        )

    async with common.PostgresUsage(database) as postgres:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        before = await snapshot(postgres)
        await asyncio.sleep(max(0.0, until - time.perf_counter()))
        after = await snapshot(postgres)
    pairs = sum(await asyncio.gather(*tasks))
    client_cpu, server_cpu, postgres_cpu, postgres_live_cpu, sessions, busy, total = (
        b - a for a, b in zip(before, after, strict=True)
    )
    latencies = [1000 * s for s in latencies]
    return {
        "pairs_per_s": round(pairs / seconds, 1),
        "pairs": pairs,
        "p50_ms": round(common.percentile(latencies, 50), 2) if latencies else None,
        "p90_ms": round(common.percentile(latencies, 90), 2) if latencies else None,
        "p99_ms": round(common.percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "server_cpu_ms_per_pair": round(1000 * server_cpu / pairs, 3)
        if pairs and all(pids)
        else None,
        "postgres_cpu_ms_per_pair": round(1000 * postgres_cpu / pairs, 3) if pairs else None,
        "postgres_live_db_cpu_ms_per_pair": round(1000 * postgres_live_cpu / pairs, 3)
        if pairs
        else None,
        "postgres_sessions_opened": sessions,
        "server_cpu_share": round(server_cpu / seconds, 2) if all(pids) else None,
        "postgres_cpu_share": round(postgres_cpu / seconds, 2),
        "postgres_live_db_cpu_share": round(postgres_live_cpu / seconds, 2),
        "client_cpu_share": round(client_cpu / seconds, 2),
        "machine_cpu_busy": round(busy / total, 2) if total else None,
        "failures": failures.count,
        "first_failures": failures.first,
    }


PROCESSES = (1, 2)
MEASURES = {1: "monitoring_pairs", 2: "monitoring_pairs_2proc"}
FIGURES = (
    "pairs_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "server_cpu_ms_per_pair",
    "postgres_cpu_ms_per_pair",
    "postgres_live_db_cpu_ms_per_pair",
    "postgres_sessions_opened",
)
# The figures compared with the reference, as the summary line words them.
RATIOS = {
    "pairs_per_s": "pairs/s",
    "server_cpu_ms_per_pair": "CPU/pair server",
    "postgres_cpu_ms_per_pair": "PostgreSQL",
}


def describe(figures: dict) -> str:
    return (
        f"{figures['pairs_per_s']:.0f} pairs/s, pair p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, CPU/pair server "
        f"{figures['server_cpu_ms_per_pair']:.2f} ms, PostgreSQL "
        f"{figures['postgres_cpu_ms_per_pair']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8, help="measured duration of a run")
    parser.add_argument("--warmup", type=float, default=2, help="load before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side and count")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--per-client", type=int, default=4, help="interactions each client cycles through"
    )
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="the current code only")
    parser.add_argument("--quick", action="store_true", help="tiny data, one short round")
    arguments = parser.parse_args()
    # 32 clients need 32 North supervisors: 3 in 4 supervisors are North.
    sizes = [*common.QUICK_SIZES, "--supervisors", "44"] if arguments.quick else []
    if arguments.quick:
        arguments.seconds, arguments.warmup, arguments.rounds = 2, 1, 1
    background = common.background_load()
    plans: dict[str, list] = {}  # each side's interactions, made once, used by every run

    def measure(side, urls: list[str], number: int) -> dict:
        if side.name not in plans:
            plans[side.name] = prepare(
                urls[0], side.database, arguments.clients, arguments.per_client
            )
        run = asyncio.run(
            load(urls, side.database, plans[side.name], arguments.warmup, arguments.seconds)
        )
        if run["failures"] or not run["pairs"]:
            why = (
                f"{run['failures']} calls failed ({run['pairs']} pairs done; {side.name}, "
                f"{len(urls)} serve processes); first: {run['first_failures'][0]}"
                if run["failures"]
                else f"no pair completed within the {arguments.seconds:g} s measured"
            )
            common.record(MEASURES[len(urls)], f"FAILED: {why}", {"run": run})
            sys.exit(1)
        return run

    with_reference = not (arguments.quick or arguments.no_reference)
    with common.sides(not arguments.no_generate, sizes, with_reference) as sides:
        runs = common.side_by_side(sides, arguments.rounds, PROCESSES, measure)
        about = common.sides_record(sides)
    common.record_side_by_side(
        runs,
        about,
        MEASURES,
        FIGURES,
        RATIOS,
        describe,
        {
            "clients": arguments.clients,
            "interactions_per_client": arguments.per_client,
            "seconds": arguments.seconds,
            "warmup_seconds": arguments.warmup,
            "rounds": arguments.rounds,
            "machine_busy_before": background,
            "quick": arguments.quick,
            "start": START,
            "stop": STOP,
        },
        target=" (target 500 pairs/s)",
    )


if __name__ == "__main__":
    main()
