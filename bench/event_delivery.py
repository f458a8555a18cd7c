"""Event delivery: one mutation, N WebSocket subscribers of `monitoringSessionChanged` on one
`binocular serve` process (N = 100, 500, 2,000), latency from the commit to the LAST
subscriber, p50/p99 over the events. Target: 2,000 subscribers, p99 <= 100 ms.

Subscribers are North supervisors (they see the events) speaking graphql-transport-ws with
the `websockets` library directly, spread over several client processes so that the client
side is not the bottleneck. Events are triggered one at a time (startMonitoring, then
stopMonitoring, on one interaction, over HTTP as a supervisor); the next one goes only when
every subscriber has the previous one. The main figure runs from the arrival of the
mutation's HTTP response (the commit happened before it) to the arrival at the last
subscriber; figures from `occurredAt` (read before the transaction commits) and from the
request's sending are recorded too. Every subscriber must receive every event exactly once.

    python bench/event_delivery.py [--counts 100,500,2000] [--events 40] [--processes 4]
                                   [--no-generate] [--quick]
"""

import argparse
import asyncio
import json
import queue
import resource
import sys
import time
from collections import defaultdict
from datetime import datetime

SUBSCRIPTION = """subscription { monitoringSessionChanged {
  cursor kind occurredAt session { id state monitor { name } agent { name } } } }"""
START = """mutation($input: StartMonitoringInput!) { startMonitoring(input: $input) {
  session { id state } errors { code message } } }"""
STOP = """mutation($input: StopMonitoringInput!) { stopMonitoring(input: $input) {
  session { id state } errors { code message } } }"""
CREATE = """mutation($input: CreateInteractionInput!) { createInteraction(input: $input) {
  interaction { id } errors { message field } } }"""
CONNECT = """mutation($input: AgentOnInteractionInput!) { connectAgent(input: $input) {
  interaction { id state } errors { message field } } }"""
WARMUP_EVENTS = 2


def raise_open_files(wanted: int = 65536) -> int:
    """Raise this process's open-files soft limit towards `wanted` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the subscribers: one client process holds a share of them --------------------------------


class _Subscriber:
    def __init__(self, token: str) -> None:
        self.token = token
        self.ws = None
        self.received: dict[str, int] = defaultdict(int)
        self.problems: list[str] = []


def client_process(
    index: int, ws_url: str, tokens: list[str], compression: bool, report, control
) -> None:
    """Entry point of a client process: open the subscribers, record arrivals, report."""
    raise_open_files()
    try:
        asyncio.run(_client(index, ws_url, tokens, compression, report, control))
    except BaseException as error:
        report.put(("crash", index, repr(error)))
        raise


async def _client(index, ws_url, tokens, compression, report, control) -> None:
    import websockets

    subscribers = [_Subscriber(token) for token in tokens]
    arrivals: dict[str, list[float]] = defaultdict(list)
    occurred: dict[str, str] = {}
    readers = []
    opening = asyncio.Semaphore(64)

    async def read(subscriber: _Subscriber) -> None:
        try:
            async for raw in subscriber.ws:
                arrived = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        subscriber.problems.append(f"errors: {payload['errors']}")
                        continue
                    event = payload["data"]["monitoringSessionChanged"]
                    key = f"{event['kind']}:{event['session']['id']}"
                    subscriber.received[key] += 1
                    arrivals[key].append(arrived)
                    occurred[key] = event["occurredAt"]
                    if len(arrivals[key]) == len(subscribers):
                        report.put(("done", index, key))
                elif kind == "ping":
                    await subscriber.ws.send(json.dumps({"type": "pong"}))
                elif kind != "pong":
                    subscriber.problems.append(f"unexpected message: {raw[:300]}")
        except websockets.ConnectionClosed as closed:
            subscriber.problems.append(f"closed: {closed.rcvd}")

    async def open_one(subscriber: _Subscriber) -> None:
        async with opening:
            ws = await websockets.connect(
                ws_url,
                subprotocols=["graphql-transport-ws"],
                open_timeout=120,
                ping_interval=None,
                max_queue=None,
                proxy=None,
                compression="deflate" if compression else None,
            )
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {subscriber.token}"},
                    }
                )
            )
            ack = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            )
            subscriber.ws = ws
            readers.append(asyncio.create_task(read(subscriber)))

    opened = await asyncio.gather(*(open_one(s) for s in subscribers), return_exceptions=True)
    failed = [repr(r) for r in opened if isinstance(r, BaseException)]
    deflate = any(
        s.ws is not None and s.ws.response.headers.get("Sec-WebSocket-Extensions")
        for s in subscribers
    )
    report.put(("open", index, len(subscribers) - len(failed), failed[:5], bool(deflate)))
    cpu_from = time.process_time()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, control.get)  # "stop"
    cpu = time.process_time() - cpu_from
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    async def close(subscriber):
        async with opening:
            await subscriber.ws.close()

    await asyncio.gather(
        *(close(s) for s in subscribers if s.ws is not None), return_exceptions=True
    )
    report.put(
        (
            "result",
            index,
            {
                "arrivals": dict(arrivals),
                "occurred": occurred,
                "cpu_seconds": cpu,
                "received": [dict(s.received) for s in subscribers],
                "problems": [p for s in subscribers for p in s.problems][:10],
                "subscribers_with_problems": sum(1 for s in subscribers if s.problems),
            },
        )
    )


# --- the parent: server, triggers, figures -------------------------------------------------


def active_subscriptions(url: str) -> int:
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("binocular_active_subscriptions "):
            return int(float(line.split()[1]))
    raise RuntimeError("binocular_active_subscriptions is not in /metrics")


def wait_subscriptions(url: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := active_subscriptions(url)) != expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} subscriptions are open, not {expected}")
        time.sleep(0.2)
    return count


def prepare(url: str, database: str) -> tuple[str, str, list[str]]:
    """A fresh VOICE interaction with a North agent: (its id, the triggering supervisor's key,
    the subscribing supervisors' keys)."""
    import common

    from app.graphql.ids import encode_id

    supervisors = [key for _, key in common.north_users(database, "sup")]
    agents = [pk for pk, _ in common.north_users(database, "agent")]
    if not supervisors or not agents:
        raise SystemExit("the data needs North supervisors and agents")
    queues = common.graphql(url, "{ queues(first: 100) { nodes { id key } } }", user="pbx")
    hot = next(q["id"] for q in queues["queues"]["nodes"] if q["key"] == "queue00")
    created = common.graphql(
        url,
        CREATE,
        {
            "input": {
                "externalId": f"bench-events-{int(time.time() * 1000):x}",
                "mediaType": "VOICE",
                "direction": "INBOUND",
                "queueId": hot,
                "customerName": "Events",
            }
        },
        user="pbx",
    )["createInteraction"]
    if created["errors"]:
        raise SystemExit(f"createInteraction refused: {created['errors']}")
    interaction = created["interaction"]["id"]
    connected = common.graphql(
        url,
        CONNECT,
        {"input": {"interactionId": interaction, "agentId": encode_id("User", agents[0])}},
        user="pbx",
    )["connectAgent"]
    if connected["errors"] or connected["interaction"]["state"] != "CONNECTED":
        raise SystemExit(f"connectAgent refused: {connected}")
    return interaction, supervisors[0], supervisors


class Trigger:
    """Start and stop monitoring in turn, over one keep-alive HTTP connection."""

    def __init__(self, url: str, supervisor: str, interaction: str) -> None:
        import common
        import httpx

        self.http = httpx.Client(
            base_url=url,
            timeout=60,
            headers={"Authorization": f"Bearer {common.token(supervisor)}"},
        )
        self.interaction = interaction
        self.session: str | None = None

    def next(self) -> tuple[str, float, float]:
        """One event: (its key, when the request left, when the response arrived)."""
        if self.session is None:
            field, kind, state = "startMonitoring", "STARTED", "ACTIVE"
            body = {"query": START, "variables": {"input": {"interactionId": self.interaction}}}
        else:
            field, kind, state = "stopMonitoring", "ENDED", "ENDED"
            body = {"query": STOP, "variables": {"input": {"sessionId": self.session}}}
        sent = time.time()
        response = self.http.post("/graphql", json=body)
        arrived = time.time()
        payload = (response.json().get("data") or {}).get(field)
        if (
            response.status_code != 200
            or not payload
            or payload["errors"]
            or payload["session"]["state"] != state
        ):
            raise RuntimeError(f"{field} failed: HTTP {response.status_code} {response.text}")
        session = payload["session"]["id"]
        self.session = session if kind == "STARTED" else None
        return f"{kind}:{session}", sent, arrived

    def close(self) -> None:
        if self.session is not None:
            self.next()
        self.http.close()


def measure(
    url: str,
    count: int,
    events: int,
    processes: int,
    tokens: list[str],
    trigger: Trigger,
    pid: int | None,
    compression: bool,
    timeout: float,
) -> dict:
    import multiprocessing

    import common

    context = multiprocessing.get_context("spawn")
    processes = max(1, min(processes, count))
    shares = [
        [tokens[i % len(tokens)] for i in range(p, count, processes)] for p in range(processes)
    ]
    report = context.Queue()
    controls = [context.Queue() for _ in shares]
    workers = [
        context.Process(
            target=client_process,
            daemon=True,
            args=(
                p,
                url.replace("http://", "ws://") + "/graphql",
                share,
                compression,
                report,
                controls[p],
            ),
        )
        for p, share in enumerate(shares)
    ]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    done: dict[str, set[int]] = defaultdict(set)
    results: dict[int, dict] = {}
    problems: list[str] = []
    opened, deflate = 0, False

    def receive(wait: float):
        message = report.get(timeout=wait)
        if message[0] == "done":
            done[message[2]].add(message[1])
        elif message[0] == "crash":
            raise RuntimeError(f"client process {message[1]} crashed: {message[2]}")
        return message

    try:
        waiting = set(range(len(workers)))
        while waiting:
            message = receive(timeout + count / 10)
            if message[0] == "open":
                waiting.discard(message[1])
                opened += message[2]
                deflate |= message[4]
                problems += [f"connect: {p}" for p in message[3]]
        if opened != count:
            raise RuntimeError(f"only {opened} of {count} subscribers connected: {problems[:3]}")
        wait_subscriptions(url, count, timeout)
        connect_seconds = time.monotonic() - began

        triggered: list[tuple[str, float, float]] = []
        missing: list[str] = []
        cpu = (common.cpu_seconds(pid), *common.machine_busy(), time.monotonic())
        for n in range(WARMUP_EVENTS + events):
            if n == WARMUP_EVENTS:
                cpu = (common.cpu_seconds(pid), *common.machine_busy(), time.monotonic())
            key, sent, arrived = trigger.next()
            triggered.append((key, sent, arrived))
            deadline = time.monotonic() + timeout
            try:
                while len(done[key]) < len(workers):
                    receive(max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                missing.append(key)
                break  # some subscriber lost it: no point in going on
            time.sleep(0.02)  # let the server settle between events
        cpu_after = (common.cpu_seconds(pid), *common.machine_busy(), time.monotonic())
    finally:
        for control in controls:
            control.put("stop")
    deadline = time.monotonic() + timeout + count / 10
    while len(results) < len(workers):
        try:
            message = receive(max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError("a client process did not report") from None
        if message[0] == "result":
            results[message[1]] = message[2]
    for worker in workers:
        worker.join(30)

    # Completeness: every subscriber received every triggered event exactly once.
    keys = [key for key, _, _ in triggered]
    incomplete = 0
    for result in results.values():
        for received in result["received"]:
            if any(received.get(key, 0) != 1 for key in keys) or set(received) - set(keys):
                incomplete += 1
        problems += result["problems"]
    problem_subscribers = sum(r["subscribers_with_problems"] for r in results.values())

    # Figures over the measured events.
    last_from_response, last_from_occurred, last_from_sent, first_from_response = [], [], [], []
    every_from_response = []
    for key, sent, arrived in triggered[WARMUP_EVENTS:]:
        times = [t for r in results.values() for t in r["arrivals"].get(key, [])]
        if len(times) != count:
            continue
        occurred = next(
            datetime.fromisoformat(r["occurred"][key]).timestamp()
            for r in results.values()
            if key in r["occurred"]
        )
        last = max(times)
        last_from_response.append(1000 * (last - arrived))
        last_from_occurred.append(1000 * (last - occurred))
        last_from_sent.append(1000 * (last - sent))
        first_from_response.append(1000 * (min(times) - arrived))
        every_from_response += [1000 * (t - arrived) for t in times]
    measured = len(last_from_response)
    server_cpu, busy, total, seconds = (b - a for a, b in zip(cpu, cpu_after, strict=True))

    def figures(values):
        return (
            {
                "p50_ms": round(common.percentile(values, 50), 2),
                "p99_ms": round(common.percentile(values, 99), 2),
                "max_ms": round(max(values), 2),
            }
            if values
            else None
        )

    return {
        "subscribers": count,
        "events": events,
        "events_measured": measured,
        "client_processes": len(workers),
        "permessage_deflate": deflate,
        "last_subscriber_from_response": figures(last_from_response),
        "last_subscriber_from_occurred_at": figures(last_from_occurred),
        "last_subscriber_from_request_sent": figures(last_from_sent),
        "first_subscriber_from_response": figures(first_from_response),
        "all_subscribers_from_response": figures(every_from_response),
        "each_event_last_from_response_ms": [round(v, 1) for v in last_from_response],
        "each_event_first_from_response_ms": [round(v, 1) for v in first_from_response],
        "missing_events": missing,
        "incomplete_subscribers": incomplete,
        "subscribers_with_problems": problem_subscribers,
        "problems": problems[:10],
        "connect_seconds": round(connect_seconds, 1),
        "server_cpu_ms_per_event": round(1000 * server_cpu / max(1, events), 2) if pid else None,
        "client_cpu_ms_per_event": round(
            1000 * sum(r["cpu_seconds"] for r in results.values()) / max(1, events), 2
        ),
        "machine_cpu_busy": round(busy / total, 2) if total else None,
        "events_seconds": round(seconds, 1),
        "ok": not missing and not incomplete and not problem_subscribers and measured == events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="100,500,2000", help="subscriber counts")
    parser.add_argument("--events", type=int, default=40, help="measured events per count")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for an event at every subscriber"
    )
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate (browsers do offer it)",
    )
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny data, N = 5 and 10")
    arguments = parser.parse_args()
    import common
    import generate

    sizes = generate.sizes_parser().parse_args(common.QUICK_SIZES if arguments.quick else [])
    if arguments.quick:
        arguments.counts, arguments.events = "5,10", 6
    counts = [int(c) for c in arguments.counts.split(",")]
    limit = raise_open_files(max(4096, 2 * max(counts) + 1024))
    background = common.background_load()
    common.ensure_database(common.POSTGRES)
    if not arguments.no_generate:
        generate.generate(common.POSTGRES, sizes)
    runs = []
    with common.serve(common.POSTGRES) as url:
        pid = common.server_pid(url)
        interaction, supervisor, supervisors = prepare(url, common.POSTGRES)
        tokens = [common.token(key) for key in supervisors]
        trigger = Trigger(url, supervisor, interaction)
        try:
            for count in counts:
                run = measure(
                    url,
                    count,
                    arguments.events,
                    arguments.processes,
                    tokens,
                    trigger,
                    pid,
                    not arguments.no_compression,
                    arguments.timeout,
                )
                runs.append(run)
                wait_subscriptions(url, 0, arguments.timeout + count / 10)
                last = run["last_subscriber_from_response"] or {}
                occurred = run["last_subscriber_from_occurred_at"] or {}
                every = run["all_subscribers_from_response"] or {}
                state = (
                    ""
                    if run["ok"]
                    else (
                        f"FAILED: missing {run['missing_events']}, {run['incomplete_subscribers']} "
                        f"incomplete, {run['subscribers_with_problems']} with problems "
                        f"{run['problems'][:1]}; "
                    )
                )
                common.record(
                    "event_delivery",
                    f"{state}{count} subscribers: last subscriber p50 {last.get('p50_ms')} ms, "
                    f"p99 {last.get('p99_ms')} ms (target p99 <= 100 ms at 2,000) from the "
                    f"response; from occurredAt p50 {occurred.get('p50_ms')}, p99 "
                    f"{occurred.get('p99_ms')} ms; all subscribers p50 {every.get('p50_ms')} ms; "
                    f"{run['events_measured']} events",
                    {
                        "runs": runs,
                        "subscription": SUBSCRIPTION,
                        "start": START,
                        "stop": STOP,
                        "open_files_limit": limit,
                        "machine_busy_before": background,
                        "quick": arguments.quick,
                        **common.machine(),
                    },
                )
                if not run["ok"]:
                    sys.exit(1)
        finally:
            trigger.close()


if __name__ == "__main__":
    main()
