"""Integration writes per second on PostgreSQL: 32 concurrent clients replay simulated
contact-center traffic through the integration mutations, as the INTEGRATION user `pbx`,
with 1 and with 2 `binocular serve` processes on one database; the current code side by
side with a reference revision (`common.Reference`: BENCH_REFERENCE, else a48890e), each on
its own database with the same data, in alternating rounds.

Each client has its own keep-alive HTTP/1.1 connection to one of the servers (the clients are
split evenly over them) and loops over interactions of its own: createInteraction (a unique
externalId, a queue, VOICE, CHAT or SMS), connectAgent, in 3 of 10 a second agent's
connectAgent and the first agent's disconnectAgent, endInteraction; then a setPresence of
one of its agents to the next of ON_QUEUE, BUSY, AVAILABLE. The agents who connect are drawn
from all of them, shared by the clients; each agent's presence is reported by one client (as
a platform reports one agent's changes in order), so that every setPresence changes it.
Every response is checked (HTTP 200, no `errors`, empty payload `errors`, the state or the
presence expected); any failure fails the benchmark.

Measured after a warm-up: writes per second (each mutation call is one write), the latency
of a write (p50, p99), and the CPU seconds per write of the serve processes and of
PostgreSQL (all its processes), from /proc.

    python bench/integration_writes.py [--seconds 8] [--warmup 2] [--rounds 2] [--clients 32]
                                       [--no-generate] [--no-reference] [--quick]
"""

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import common
import httpx

CREATE, CONNECT, DISCONNECT, END = (
    common.CREATE,
    common.CONNECT,
    common.DISCONNECT,
    common.END,
)
PRESENCE = """mutation($input: SetPresenceInput!) { setPresence(input: $input) {
  user { id presence } errors { message field } } }"""

MEDIA = ["VOICE"] * 5 + ["CHAT"] * 3 + ["SMS"] * 2
CYCLE = ["ON_QUEUE", "BUSY", "AVAILABLE"]
SECOND_AGENT = 0.3  # the share of interactions transferred to a second agent
PROCESSES = (1, 2)
MEASURES = {1: "integration_writes", 2: "integration_writes_2proc"}


def next_presence(presence: str) -> str:
    return CYCLE[(CYCLE.index(presence) + 1) % len(CYCLE)] if presence in CYCLE else CYCLE[0]


# --- the plan: what the clients write about ---------------------------------------------------


@dataclass
class Plan:
    queues: list[str]  # Queue ids
    agents: list[str]  # User ids of every agent: who connects is drawn from them all
    owned: list[list[str]]  # for each client, the agents whose presence it reports
    presence: dict[str, str]  # each agent's presence now
    run: str  # unique in externalIds


def plan_for(url: str, database: str, clients: int, tag: str) -> Plan:
    from app.graphql.ids import encode_id

    rows = agent_rows(database)
    if len(rows) < clients:
        raise SystemExit(
            f"{clients} clients need {clients} agents (one presence each at least); the data "
            f"has {len(rows)}: generate more (--agents)"
        )
    body = httpx.post(
        f"{url}/graphql",
        json={"query": "{ queues(first: 100) { nodes { id } } }"},
        headers={"Authorization": f"Bearer {common.token('pbx')}"},
        timeout=60,
    ).json()
    if body.get("errors"):
        raise SystemExit(f"the integration call failed: {body['errors']}")
    queues = [q["id"] for q in body["data"]["queues"]["nodes"]]
    if not queues:
        raise SystemExit("the integration user sees no queue")
    agents = [encode_id("User", pk) for pk, _ in rows]
    return Plan(
        queues=queues,
        agents=agents,
        owned=[agents[c::clients] for c in range(clients)],
        presence={encode_id("User", pk): presence for pk, presence in rows},
        run=f"{int(time.time() * 1000):x}-{tag}",
    )


def agent_rows(url: str) -> list[tuple[int, str]]:
    """(id, presence) of every agent, by key."""
    import asyncpg

    async def read():
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT id, presence FROM users WHERE key LIKE 'agent%' ORDER BY key"
            )
        finally:
            await connection.close()
        return [(row["id"], row["presence"]) for row in rows]

    return asyncio.run(read())


# --- the load ---------------------------------------------------------------------------------


class Failures:
    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.first) < 10:
            self.first.append(what)


@dataclass
class Clock:
    start_at: float
    measure_from: float
    until: float


@dataclass
class Stats:
    failures: Failures = field(default_factory=Failures)
    latencies: list[float] = field(default_factory=list)
    writes: Counter = field(default_factory=Counter)  # measured, by mutation


class Refused(Exception):
    pass


async def write(http, clock: Clock, stats: Stats, query: str, field_: str, values: dict, expect):
    """One mutation; its payload, checked with `expect(payload)` (a problem or None). Any
    failure is counted and raises Refused: the client goes on with a new interaction."""
    began = time.perf_counter()
    try:
        response = await http.post(
            "/graphql", json={"query": query, "variables": {"input": values}}
        )
    except httpx.HTTPError as error:
        stats.failures.add(f"{field_}: {type(error).__name__}: {error}")
        raise Refused from None
    finished = time.perf_counter()
    try:
        body = response.json()
    except ValueError:
        stats.failures.add(
            f"{field_}: HTTP {response.status_code}, not JSON: {response.text[:200]}"
        )
        raise Refused from None
    payload = (body.get("data") or {}).get(field_)
    problem = (
        f"HTTP {response.status_code}"
        if response.status_code != 200
        else "errors"
        if body.get("errors") or not payload or payload["errors"]
        else expect(payload)
    )
    if problem:
        stats.failures.add(f"{field_} {values}: {problem}: {str(body)[:300]}")
        raise Refused
    if clock.measure_from <= finished <= clock.until:
        stats.writes[field_] += 1
        stats.latencies.append(finished - began)
    return payload


def interaction_state(state: str):
    def expect(payload):
        found = (payload.get("interaction") or {}).get("state")
        return None if found == state else f"state {found}, expected {state}"

    return expect


async def client(number: int, url: str, plan: Plan, clock: Clock, stats: Stats) -> None:
    rnd = random.Random(number)
    owned = plan.owned[number]
    headers = {"Authorization": f"Bearer {common.token('pbx')}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=1)
    ) as http:
        await http.get("/healthz")  # open the connection before the clock starts
        await asyncio.sleep(max(0.0, clock.start_at - time.perf_counter()))
        n = 0
        while time.perf_counter() < clock.until:
            n += 1
            try:
                await lifecycle(http, clock, stats, plan, rnd, f"{number}-{n}")
                if owned:
                    agent = owned[n % len(owned)]
                    presence = next_presence(plan.presence[agent])
                    await write(
                        http,
                        clock,
                        stats,
                        PRESENCE,
                        "setPresence",
                        {"userId": agent, "presence": presence},
                        lambda p, a=agent, v=presence: (
                            None
                            if p.get("user") == {"id": a, "presence": v}
                            else f"expected {a} {v}"
                        ),
                    )
                    plan.presence[agent] = presence
            except Refused:
                continue


async def lifecycle(http, clock: Clock, stats: Stats, plan: Plan, rnd: random.Random, key: str):
    """One interaction from its arrival to its end (4 writes, or 6 with a second agent)."""
    created = await write(
        http,
        clock,
        stats,
        CREATE,
        "createInteraction",
        {
            "externalId": f"bench-writes-{plan.run}-{key}",
            "mediaType": rnd.choice(MEDIA),
            "direction": "INBOUND" if rnd.random() < 0.85 else "OUTBOUND",
            "queueId": rnd.choice(plan.queues),
            "customerName": f"Customer {key}",
        },
        interaction_state("WAITING"),
    )
    interaction = created["interaction"]["id"]
    first, second = rnd.sample(plan.agents, 2)
    await write(
        http,
        clock,
        stats,
        CONNECT,
        "connectAgent",
        {"interactionId": interaction, "agentId": first},
        interaction_state("CONNECTED"),
    )
    if rnd.random() < SECOND_AGENT:
        await write(
            http,
            clock,
            stats,
            CONNECT,
            "connectAgent",
            {"interactionId": interaction, "agentId": second},
            interaction_state("CONNECTED"),
        )
        await write(
            http,
            clock,
            stats,
            DISCONNECT,
            "disconnectAgent",
            {"interactionId": interaction, "agentId": first},
            interaction_state("CONNECTED"),
        )
    await write(
        http,
        clock,
        stats,
        END,
        "endInteraction",
        {"interactionId": interaction},
        interaction_state("ENDED"),
    )


async def load(
    urls: list[str], database: str, plan: Plan, clients: int, warmup: float, seconds: float
) -> dict:
    pids = [common.server_pid(url) for url in urls]
    stats = Stats()
    start_at = time.perf_counter() + 0.5  # every client connected by then
    clock = Clock(start_at, start_at + warmup, start_at + warmup + seconds)
    tasks = [
        asyncio.create_task(client(c, urls[c % len(urls)], plan, clock, stats))
        for c in range(clients)
    ]

    async def snapshot(postgres: common.PostgresUsage):
        return (
            time.process_time(),
            sum(common.cpu_seconds(pid) for pid in pids),
            *await postgres.read(),
            *common.machine_busy(),
        )

    async with common.PostgresUsage(database) as postgres:
        await asyncio.sleep(max(0.0, clock.measure_from - time.perf_counter()))
        before = await snapshot(postgres)
        await asyncio.sleep(max(0.0, clock.until - time.perf_counter()))
        after = await snapshot(postgres)
    await asyncio.gather(*tasks)
    client_cpu, server_cpu, postgres_cpu, postgres_live_cpu, sessions, busy, total = (
        b - a for a, b in zip(before, after, strict=True)
    )
    writes = sum(stats.writes.values())
    latencies = [1000 * s for s in stats.latencies]
    return {
        "writes_per_s": round(writes / seconds, 1),
        "writes": writes,
        "by_mutation": dict(sorted(stats.writes.items())),
        "p50_ms": round(common.percentile(latencies, 50), 2) if latencies else None,
        "p90_ms": round(common.percentile(latencies, 90), 2) if latencies else None,
        "p99_ms": round(common.percentile(latencies, 99), 2) if latencies else None,
        "server_cpu_ms_per_write": round(1000 * server_cpu / writes, 3)
        if writes and all(pids)
        else None,
        "postgres_cpu_ms_per_write": round(1000 * postgres_cpu / writes, 3) if writes else None,
        "postgres_live_db_cpu_ms_per_write": round(1000 * postgres_live_cpu / writes, 3)
        if writes
        else None,
        "postgres_sessions_opened": sessions,
        "server_cpu_share": round(server_cpu / seconds, 2) if all(pids) else None,
        "postgres_cpu_share": round(postgres_cpu / seconds, 2),
        "postgres_live_db_cpu_share": round(postgres_live_cpu / seconds, 2),
        "client_cpu_share": round(client_cpu / seconds, 2),
        "machine_cpu_busy": round(busy / total, 2) if total else None,
        "failures": stats.failures.count,
        "first_failures": stats.failures.first,
    }


# --- rounds, sides, results -------------------------------------------------------------------

FIGURES = (
    "writes_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_ms_per_write",
    "postgres_cpu_ms_per_write",
    "postgres_live_db_cpu_ms_per_write",
    "postgres_sessions_opened",
)
# The figures compared with the reference, as the summary line words them.
RATIOS = {
    "writes_per_s": "writes/s",
    "server_cpu_ms_per_write": "CPU/write server",
    "postgres_cpu_ms_per_write": "PostgreSQL",
}


def describe(figures: dict) -> str:
    return (
        f"{figures['writes_per_s']:.0f} writes/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, CPU/write server "
        f"{figures['server_cpu_ms_per_write']:.2f} ms, PostgreSQL "
        f"{figures['postgres_cpu_ms_per_write']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8, help="measured duration of a run")
    parser.add_argument("--warmup", type=float, default=2, help="load before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side and count")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="the current code only")
    parser.add_argument("--quick", action="store_true", help="tiny data, one short round")
    arguments = parser.parse_args()
    # 32 clients report the presence of 32 agents at least.
    sizes = [*common.QUICK_SIZES, "--agents", "64"] if arguments.quick else []
    if arguments.quick:
        # A warm-up of 2 s: on a slow machine, the first writes of 32 cold clients took more
        # than the 1 s of a shorter one, and none completed within the 1 s measured.
        arguments.seconds, arguments.warmup, arguments.rounds = 1, 2, 1
    background = common.background_load()

    def measure(side, urls: list[str], number: int) -> dict:
        tag = f"{side.name}{len(urls)}r{number}"
        plan = plan_for(urls[0], side.database, arguments.clients, tag)
        run = asyncio.run(
            load(urls, side.database, plan, arguments.clients, arguments.warmup, arguments.seconds)
        )
        if run["failures"] or not run["writes"]:
            why = (
                f"{run['failures']} calls failed ({side.name}, {len(urls)} serve processes); "
                f"first: {run['first_failures'][0]}"
                if run["failures"]
                else f"no write completed within the {arguments.seconds:g} s measured"
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
            "seconds": arguments.seconds,
            "warmup_seconds": arguments.warmup,
            "rounds": arguments.rounds,
            "machine_busy_before": background,
            "quick": arguments.quick,
            "mutations": [CREATE, CONNECT, DISCONNECT, END, PRESENCE],
        },
    )


if __name__ == "__main__":
    main()
