"""startMonitoring + stopMonitoring pairs per second on PostgreSQL, 16 concurrent clients.
Target: 500 pairs/s.

Each client is a different North supervisor with its own keep-alive connection
(httpx.AsyncClient) and its own interactions (VOICE or CHAT, created for the run through the
integration mutations as `pbx`, each with one connected North agent), so that no start is
refused: it loops start + stop over them for the duration. Every response is checked; any
error or refusal fails the benchmark.

    python bench/monitoring_pairs.py [--seconds 20] [--clients 16] [--per-client 4]
                                     [--no-generate] [--quick]
"""

import argparse
import asyncio
import sys
import time

import common
import generate
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


async def load(url: str, plan, warmup: float, seconds: float, pid: int | None) -> dict:
    latencies: list[float] = []
    failures = Failures()
    start_at = time.perf_counter() + 0.5  # every client connected by then
    measure_from = start_at + warmup
    until = measure_from + seconds
    tasks = [
        asyncio.create_task(
            client(
                url, supervisor, interactions, start_at, measure_from, until, latencies, failures
            )
        )
        for supervisor, interactions in plan
    ]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu = (time.process_time(), common.cpu_seconds(pid), *common.machine_busy())
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    cpu_after = (time.process_time(), common.cpu_seconds(pid), *common.machine_busy())
    pairs = sum(await asyncio.gather(*tasks))
    client_cpu, server_cpu, busy, total = (b - a for a, b in zip(cpu, cpu_after, strict=True))
    return {
        "pairs": pairs,
        "latencies": latencies,
        "failures": failures,
        "client_cpu_share": round(client_cpu / seconds, 2),
        "server_cpu_share": round(server_cpu / seconds, 2) if pid else None,
        "machine_cpu_busy": round(busy / total, 2) if total else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3, help="load before measuring")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--per-client", type=int, default=4, help="interactions each client cycles through"
    )
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny data, 2 s")
    arguments = parser.parse_args()
    # 16 clients need 16 North supervisors: 3 in 4 supervisors are North.
    quick_sizes = [*common.QUICK_SIZES, "--supervisors", "24"]
    sizes = generate.sizes_parser().parse_args(quick_sizes if arguments.quick else [])
    if arguments.quick:
        arguments.seconds, arguments.warmup = 2, 1
    background = common.background_load()
    common.ensure_database(common.POSTGRES)
    if not arguments.no_generate:
        generate.generate(common.POSTGRES, sizes)
    with common.serve(common.POSTGRES) as url:
        plan = prepare(url, common.POSTGRES, arguments.clients, arguments.per_client)
        pid = common.server_pid(url)
        run = asyncio.run(load(url, plan, arguments.warmup, arguments.seconds, pid))
    latencies = [1000 * s for s in run["latencies"]]
    failures: Failures = run["failures"]
    rate = run["pairs"] / arguments.seconds
    result = {
        "pairs_per_s": round(rate, 1),
        "pairs": run["pairs"],
        "p50_ms": round(common.percentile(latencies, 50), 2) if latencies else None,
        "p90_ms": round(common.percentile(latencies, 90), 2) if latencies else None,
        "p99_ms": round(common.percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "clients": arguments.clients,
        "interactions_per_client": arguments.per_client,
        "seconds": arguments.seconds,
        "warmup_seconds": arguments.warmup,
        "failures": failures.count,
        "first_failures": failures.first,
        "client_cpu_share": run["client_cpu_share"],
        "server_cpu_share": run["server_cpu_share"],
        "machine_cpu_busy": run["machine_cpu_busy"],
        "machine_busy_before": background,
        "quick": arguments.quick,
        "start": START,
        "stop": STOP,
        **common.machine(),
    }
    if failures.count or not latencies:
        why = (
            f"{failures.count} calls failed ({run['pairs']} pairs done); first: {failures.first[0]}"
            if failures.count
            else f"no pair completed within the {arguments.seconds:g} s measured"
        )
        common.record("monitoring_pairs", f"FAILED: {why}", result)
        sys.exit(1)
    common.record(
        "monitoring_pairs",
        f"{rate:.0f} pairs/s (target 500), pair p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms; {arguments.clients} clients, {arguments.seconds:g} s",
        result,
    )


if __name__ == "__main__":
    main()
