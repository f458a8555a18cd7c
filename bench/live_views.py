"""Live views: 2,000 supervisors watching `queueActivityChanged` on one `binocular serve` process
while a simulator changes the floor 20 times a second; side by side, what polling
`queueActivity` every second would cost the same server for the same supervisors.

Data: `generate.py`'s directory and history (500 agents, 50 supervisors of two divisions, 20
queues), then 1,000 live interactions spread evenly over the 20 queues, created through the
integration mutations as the telephony platform would: 40% waiting, 60% with an On Queue
member of their queue (a tenth with a second one), about 5% monitored.

Subscribers: 2,000 WebSocket connections (graphql-transport-ws, `websockets`, spread over
several client processes so that the client side is not the bottleneck), each a supervisor
(a few of them the admin) subscribing `queueActivityChanged` for 1 to 3 queues of their own
division (any for the admin), all with one document whose interactions (in `snapshot` and
`changed`) select `participants { ... monitorability { allowed reason modes canTakeOver
currentMonitor { id } } }`, and whose On Queue agents list each agent's interactions by id,
state, media type and start (the README's frontend document: the details of those that
are in the queue are in its own lists, normalised by id). Two supervisors of each division
do the monitoring and watch nothing (a viewer who monitors an interaction of the view gets an
answer of its own: the watchers stay in their division's group).

Changes: a simulator over HTTP, open loop at 20 changes a second (a change every 50 ms,
several in flight when responses are slow): createInteraction, endInteraction, connectAgent,
disconnectAgent (as `pbx`), startMonitoring, stopMonitoring (as a monitoring supervisor);
never the same interaction twice within `--cooldown` seconds, so that each arrival belongs to
one change. Every response is checked.

Figures, over `--seconds` after `--warmup` seconds of changes:
- latency: from the mutation's HTTP response (the commit happened before it) to the arrival at
  the LAST subscription of the changed interaction's queue of an update that shows the change
  (the interaction in `changed` as the change left it, or in `removed` for an end); p50, p99;
  every subscription of that queue must get it;
- server CPU: utime + stime of the serve process (/proc) over the window, in cores;
- executions per change: `binocular_live_view_executions{view="queueActivity"}` over the
  window, against the bound computed from what the bench subscribed: per change, the number
  of distinct viewer groups (division and role) watching the changed interaction's queue,
  plus those watching each other queue whose view the change touches (a queue where an
  agent of the interaction is an On Queue member: that agent's `interactions` changed);
- bytes per delta per subscriber: `binocular_live_view_bytes` / `deliveries` over the
  window, and the size of each frame received whose `changed` has exactly one interaction;
- the reference, polling: `--poll-sample` `queueActivity` queries with the same selection,
  as sampled (supervisor, queue) pairs of the subscriptions, one at a time over HTTP against
  the same server (subscribers connected, no changes): the server's CPU seconds per query,
  times the number of (supervisor, queue) subscriptions, times one poll a second, in cores.
  The headline is polling cores / live cores.
Checks: every subscription's first update is a snapshot; after the changes, each client
process's state (snapshot with every delta applied) of one subscription per queue equals a
fresh `queueActivity` of the same supervisor.

Both GraphQL executors, one run each, one after the other (`--executors`, compiled first by
default): the server runs compiled (the default), then with BINOCULAR_COMPILED_EXECUTION=false
(graphql-core), each run on data generated again (the same seed) unless --no-generate. Each
run checks from the server's /metrics (`binocular_graphql_executions_total`) that the live
views' executions of the window, and the polling sample's queries, ran on its executor (on
the compiled side, only the simulator's mutations on graphql-core); and, after its checks,
that a server of the other executor, started on the same database, answers the checked
(supervisor, queue) pairs' `queueActivity` with the same JSON. The figures of the compiled
run are the record's own, those of the graphql-core run under `graphql_core`, and their
ratios under `compiled_over_graphql_core`.

    python bench/live_views.py [--subscribers 2000] [--queues 20] [--interactions 1000]
        [--rate 20] [--seconds 30] [--processes 4] [--profile] [--no-generate] [--quick]
        [--executors compiled,graphql-core]
"""

import argparse
import asyncio
import hashlib
import json
import os
import queue as queues_module
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict

import common

ITEM = """
fragment Item on Interaction {
  id state mediaType startedAt
  participants { id purpose state name user { id name presence }
    monitorability { allowed reason modes canTakeOver currentMonitor { id } } }
  activeMonitoring { id mode monitor { id name } }
}
fragment Agent on QueueAgent { agent { id name presence } interactions { id state mediaType startedAt } }
"""
SUBSCRIPTION = (
    """subscription($queueId: ID!) { queueActivityChanged(queueId: $queueId) {
  cursor
  snapshot { waiting { ...Item } interacting { ...Item } onQueueAgents { ...Agent }
    waitingCount interactingCount onQueueAgentCount }
  changed { ...Item } removed agentsChanged { ...Agent } agentsRemoved
  waitingCount interactingCount onQueueAgentCount } }"""
    + ITEM
)
POLL = (
    """query($queueId: ID!) { queueActivity(queueId: $queueId) {
  waiting { ...Item } interacting { ...Item } onQueueAgents { ...Agent }
  waitingCount interactingCount onQueueAgentCount } }"""
    + ITEM
)
CREATE, CONNECT, DISCONNECT, END = (
    common.CREATE,
    common.CONNECT,
    common.DISCONNECT,
    common.END,
)
START = """mutation($input: StartMonitoringInput!) { startMonitoring(input: $input) {
  session { id state } errors { code message } } }"""
STOP = """mutation($input: StopMonitoringInput!) { stopMonitoring(input: $input) {
  session { id state } errors { code message } } }"""

MONITORABLE = {"VOICE", "CHAT", "SMS"}
# The simulator's mix: creates and ends, connects and disconnects, starts and stops balance.
MIX = {
    "create": 15,
    "end": 15,
    "connect": 22.5,
    "disconnect": 22.5,
    "start": 12.5,
    "stop": 12.5,
}
ADMIN_EVERY = 50  # one connection in 50 is the admin's


def raise_open_files(wanted: int = 65536) -> int:
    """Raise this process's open-files soft limit towards `wanted` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- what a subscriber holds and reads of an update ------------------------------------------


def signature(item: dict) -> tuple:
    """What the simulator's changes alter of an interaction: (state, connected agents' user
    ids, active session id)."""
    agents = tuple(
        sorted(
            p["user"]["id"]
            for p in item["participants"]
            if p["purpose"] == "AGENT" and p["state"] == "CONNECTED" and p["user"]
        )
    )
    monitoring = item["activeMonitoring"]
    return item["state"], agents, monitoring["id"] if monitoring else None


def shows(change: dict, sig: tuple | None) -> bool:
    """Whether an interaction as a subscriber got it (None: not in the view) shows the change."""
    kind, expected = change["kind"], change["expect"]
    if kind == "end":
        return sig is None
    if sig is None:
        return False
    state, agents, session = sig
    if kind == "create":
        return state == "WAITING"
    if kind == "connect":
        return state == "CONNECTED" and expected in agents
    if kind == "disconnect":
        return expected not in agents
    if kind == "start":
        return session == expected
    return session != expected  # stop


class ActivityState:
    """A client's queue activity: the snapshot with every update applied in order."""

    def __init__(self) -> None:
        self.interactions: dict[str, dict] = {}
        self.agents: dict[str, dict] = {}
        self.counts = None

    def apply(self, update: dict) -> None:
        if update["snapshot"] is not None:
            snapshot = update["snapshot"]
            self.interactions = {i["id"]: i for i in snapshot["waiting"] + snapshot["interacting"]}
            self.agents = {a["agent"]["id"]: a for a in snapshot["onQueueAgents"]}
        for item in update["changed"]:
            self.interactions[item["id"]] = item
        for gone in update["removed"]:
            self.interactions.pop(gone, None)
        for agent in update["agentsChanged"]:
            self.agents[agent["agent"]["id"]] = agent
        for gone in update["agentsRemoved"]:
            self.agents.pop(gone, None)
        self.counts = [
            update["waitingCount"],
            update["interactingCount"],
            update["onQueueAgentCount"],
        ]

    def answer(self) -> dict:
        return {"interactions": self.interactions, "agents": self.agents, "counts": self.counts}


def as_state(activity: dict) -> dict:
    """A queueActivity answer in ActivityState's terms (order aside: ids key everything)."""
    return {
        "interactions": {i["id"]: i for i in activity["waiting"] + activity["interacting"]},
        "agents": {a["agent"]["id"]: a for a in activity["onQueueAgents"]},
        "counts": [
            activity["waitingCount"],
            activity["interactingCount"],
            activity["onQueueAgentCount"],
        ],
    }


# --- the subscribers: one client process holds a share of the connections --------------------


def client_process(index: int, ws_url: str, connections: list, report, control) -> None:
    """Entry point of a client process: `connections` is [(user key, token, [queue id])]."""
    raise_open_files()
    try:
        asyncio.run(_client(index, ws_url, connections, report, control))
    except BaseException as error:
        report.put(("crash", index, repr(error)))
        raise


class _Subscription:
    def __init__(self, user: str, queue_id: str, checked: bool) -> None:
        self.user = user
        self.queue_id = queue_id
        self.ready = asyncio.get_running_loop().create_future()
        # Per interaction id: [(arrival, signature)] from deltas (None: removed).
        self.seen: dict[str, list] = defaultdict(list)
        # [(arrival, {id: signature})]: snapshots after the first.
        self.snapshots: list = []
        self.state = ActivityState() if checked else None


async def _client(index, ws_url, connections, report, control) -> None:
    import orjson
    import websockets

    subscriptions: list[_Subscription] = []
    sockets = []
    problems: list[str] = []
    frames: list[tuple] = []  # (arrival, bytes, len(changed), len(agentsChanged)) of deltas
    counts = Counter()
    opening = asyncio.Semaphore(32)
    checked_queues: set[str] = set()
    stopping = False

    def on_update(subscription: _Subscription, update: dict, size: int, arrived: float) -> None:
        if subscription.state is not None:
            subscription.state.apply(update)
        if not subscription.ready.done():
            if update["snapshot"] is None:
                problems.append(f"first update without a snapshot: {subscription.queue_id}")
            subscription.ready.set_result(arrived)
            counts["first_snapshots"] += 1
            return
        if update["snapshot"] is not None:
            counts["later_snapshots"] += 1
            snapshot = update["snapshot"]
            subscription.snapshots.append(
                (
                    arrived,
                    {i["id"]: signature(i) for i in snapshot["waiting"] + snapshot["interacting"]},
                )
            )
            return
        changed = update["changed"]
        frames.append((arrived, size, len(changed), len(update["agentsChanged"])))
        for item in changed:
            subscription.seen[item["id"]].append((arrived, signature(item)))
        for gone in update["removed"]:
            subscription.seen[gone].append((arrived, None))

    async def connection(token: str, mine: list[_Subscription]) -> None:
        while True:
            async with opening:
                ws = await websockets.connect(
                    ws_url,
                    subprotocols=["graphql-transport-ws"],
                    open_timeout=300,
                    ping_interval=None,
                    max_queue=None,
                    max_size=None,
                    proxy=None,
                    compression=None,
                )
                await ws.send(
                    orjson.dumps(
                        {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                    ).decode()
                )
                ack = orjson.loads(await asyncio.wait_for(ws.recv(), 300))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {ack}")
                for number, subscription in enumerate(mine):
                    await ws.send(
                        orjson.dumps(
                            {
                                "id": str(number),
                                "type": "subscribe",
                                "payload": {
                                    "query": SUBSCRIPTION,
                                    "variables": {"queueId": subscription.queue_id},
                                },
                            }
                        ).decode()
                    )
            sockets.append(ws)
            try:
                while True:
                    raw = await ws.recv(decode=False)
                    arrived = time.time()
                    message = orjson.loads(raw)
                    kind = message.get("type")
                    if kind == "next":
                        payload = message["payload"]
                        subscription = mine[int(message["id"])]
                        if payload.get("errors"):
                            problems.append(f"errors: {payload['errors']}"[:300])
                            continue
                        on_update(
                            subscription, payload["data"]["queueActivityChanged"], len(raw), arrived
                        )
                    elif kind == "ping":
                        await ws.send('{"type":"pong"}')
                    elif kind == "error":
                        problems.append(f"error: {raw[:300]!r}")
                    elif kind != "pong":
                        problems.append(f"unexpected message: {raw[:300]!r}")
            except websockets.ConnectionClosed as closed:
                if stopping:
                    return
                code = closed.rcvd.code if closed.rcvd else None
                counts[f"closed_{code}"] += 1
                if code != 4008:  # only a slow subscriber's close is to be followed by a retry
                    problems.append(f"closed: {closed.rcvd}")
                    return
                # Too slow to keep up: subscribe again, as a client does (a new snapshot).
            finally:
                if ws in sockets:
                    sockets.remove(ws)

    tasks = []
    for user, token, queue_ids in connections:
        mine = []
        for queue_id in queue_ids:
            # One subscription per queue and process holds the whole state, to check it.
            checked = queue_id not in checked_queues and user != "admin"
            checked_queues.add(queue_id)
            mine.append(_Subscription(user, queue_id, checked))
            subscriptions.append(mine[-1])
        tasks.append(asyncio.create_task(connection(token, mine)))
    waiting = [s.ready for s in subscriptions]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 600
    while not all(f.done() for f in waiting) and loop.time() < deadline:
        if any(t.done() for t in tasks):  # a connection failed or was closed: no point waiting
            break
        await asyncio.sleep(0.1)
    failed = [
        repr(t.exception()) if t.exception() else "a connection ended" for t in tasks if t.done()
    ]
    opened = sum(1 for f in waiting if f.done())
    report.put(("open", index, opened, len(subscriptions), failed[:5] + problems[:5]))
    cpu_from = time.process_time()
    message = await loop.run_in_executor(None, control.get)  # ("stop", changes, window)
    cpu = time.process_time() - cpu_from
    stopping = True
    _, changes, (window_from, window_to) = message

    # Per change: the arrival at each subscription of its queue of the first update after the
    # request was sent that shows it (a delta, or a snapshot the server started it over with).
    by_queue: dict[str, list[_Subscription]] = defaultdict(list)
    for subscription in subscriptions:
        by_queue[subscription.queue_id].append(subscription)
    arrivals = {}
    for change in changes:
        times = []
        for subscription in by_queue.get(change["queue"], []):
            first = next(
                (
                    at
                    for at, sig in subscription.seen.get(change["id"], ())
                    if at >= change["sent"] and shows(change, sig)
                ),
                None,
            )
            again = next(
                (
                    at
                    for at, snapshot in subscription.snapshots
                    if at >= change["sent"] and shows(change, snapshot.get(change["id"]))
                ),
                None,
            )
            candidates = [t for t in (first, again) if t is not None]
            if candidates:
                times.append(min(candidates))
        arrivals[change["number"]] = (
            len(times),
            len(by_queue.get(change["queue"], [])),
            max(times) if times else None,
            min(times) if times else None,
        )
    one_interaction = [
        (size, agents)
        for at, size, changed, agents in frames
        if window_from <= at <= window_to and changed == 1
    ]
    in_window = [f for f in frames if window_from <= f[0] <= window_to]
    states = [
        {"user": s.user, "queue": s.queue_id, "state": s.state.answer()}
        for s in subscriptions
        if s.state is not None and s.ready.done()
    ]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    async def close(ws):
        async with opening:
            await ws.close()

    await asyncio.gather(*(close(ws) for ws in list(sockets)), return_exceptions=True)
    report.put(
        (
            "result",
            index,
            {
                "arrivals": arrivals,
                "one_interaction_frames": one_interaction,
                "delta_frames_in_window": len(in_window),
                "delta_bytes_in_window": sum(f[1] for f in in_window),
                "counts": dict(counts),
                "states": states,
                "cpu_seconds": cpu,
                "problems": problems[:10],
                "problem_count": len(problems),
            },
        )
    )


# --- the server's side: metrics, CPU, the floor ------------------------------------------------


def metrics(url: str) -> dict[str, float]:
    """The live view figures of /metrics (counters without their `_total`)."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = {}
    for line in text.splitlines():
        if not line.startswith("binocular_live_view") and not line.startswith(
            "binocular_active_subscriptions"
        ):
            continue
        name, value = line.rsplit(" ", 1)
        name = name.replace("_total{", "{").removesuffix("_total")
        found[name] = float(value)
    return found


def counter(values: dict, name: str, view: str = "queueActivity") -> float:
    return values.get(f'{name}{{view="{view}"}}', 0.0)


class Floor:
    """What the simulator knows of the floor, from its own calls and the data it started from."""

    def __init__(self, database: str, queues: int, monitors: int, seed: int) -> None:

        self.rnd = random.Random(seed)
        rows = asyncio.run(_directory(database))
        from app.graphql.ids import encode_id

        self.queue_ids = [encode_id("Queue", q["id"]) for q in rows["queues"]][:queues]
        self.queue_division = {
            encode_id("Queue", q["id"]): q["division_id"] for q in rows["queues"]
        }
        self.division = {encode_id("User", u["id"]): u["division_id"] for u in rows["users"]}
        on_queue = {
            encode_id("User", u["id"]) for u in rows["users"] if u["presence"] == "ON_QUEUE"
        }
        self.members: dict[str, list[str]] = defaultdict(list)
        self.on_queue_member_of: dict[str, set[str]] = defaultdict(set)
        for m in rows["members"]:
            queue, user = encode_id("Queue", m["queue_id"]), encode_id("User", m["user_id"])
            self.members[queue].append(user)
            if user in on_queue:
                self.on_queue_member_of[user].add(queue)
        self.on_queue = on_queue
        supervisors = [u for u in rows["users"] if u["roles"] == ["SUPERVISOR"]]
        # The first `monitors` supervisors of each division monitor, and watch nothing.
        self.monitors: dict[int, list[str]] = defaultdict(list)
        watchers = []
        for user in supervisors:
            if len(self.monitors[user["division_id"]]) < monitors:
                self.monitors[user["division_id"]].append(user["key"])
            else:
                watchers.append(user)
        self.watchers = watchers
        self.tokens = {
            u["key"]: common.token(u["key"])
            for u in rows["users"]
            if u["key"] in {"pbx", "admin"} or u["roles"] == ["SUPERVISOR"]
        }
        # The live interactions: id -> what the simulator did to it (queue, media, agents on
        # it now and ever, its session).
        self.live: dict[str, dict] = {}
        self.touched: dict[str, float] = {}
        self.busy: set[str] = set()
        self.created = 0

    def agents_for(self, queue: str) -> list[str]:
        members = self.members.get(queue, [])
        return [a for a in members if a in self.on_queue] or members

    def reach(self, interaction: dict) -> set[str]:
        """The queues whose view a change of this interaction may touch: its own, and those
        where one of its agents (connected now or before) is an On Queue member."""
        queues = {interaction["queue"]}
        for agent in interaction["ever"]:
            queues |= self.on_queue_member_of.get(agent, set())
        return queues


async def _directory(database: str) -> dict:
    import asyncpg

    connection = await asyncpg.connect(database)
    try:
        queues = await connection.fetch("SELECT id, division_id FROM queue ORDER BY id")
        users = await connection.fetch(
            "SELECT id, key, division_id, roles, presence FROM users ORDER BY key"
        )
        members = await connection.fetch("SELECT queue_id, user_id FROM queue_member")
    finally:
        await connection.close()

    def roles(value):
        return json.loads(value) if isinstance(value, str) else list(value)

    return {
        "queues": [dict(r) for r in queues],
        "users": [
            {**dict(r), "roles": roles(r["roles"]), "presence": str(r["presence"])} for r in users
        ],
        "members": [dict(r) for r in members],
    }


class Simulator:
    """The floor's changes, over HTTP, each checked."""

    def __init__(self, url: str, floor: Floor, cooldown: float) -> None:
        import httpx

        self.floor = floor
        self.cooldown = cooldown
        self.http = httpx.AsyncClient(
            base_url=url, timeout=120, limits=httpx.Limits(max_connections=16)
        )
        self.changes: list[dict] = []
        self.latencies: list[float] = []

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, query: str, variables: dict, user: str, field: str) -> dict:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.floor.tokens[user]}"},
        )
        body = response.json()
        payload = (body.get("data") or {}).get(field)
        if response.status_code != 200 or body.get("errors") or not payload or payload["errors"]:
            raise RuntimeError(f"{field} failed: HTTP {response.status_code} {response.text[:500]}")
        return payload

    # The changes: each returns (kind, interaction, what the update must show).

    async def create(self, queue: str, media: str | None = None) -> tuple:
        floor = self.floor
        floor.created += 1
        media = media or floor.rnd.choice(_media())
        payload = await self.call(
            CREATE,
            {
                "input": {
                    "externalId": f"bench-live-{os.getpid()}-{time.time_ns():x}-{floor.created}",
                    "mediaType": media,
                    "direction": "INBOUND",
                    "queueId": queue,
                    "customerName": f"Live {floor.created}",
                }
            },
            "pbx",
            "createInteraction",
        )
        gid = payload["interaction"]["id"]
        assert payload["interaction"]["state"] == "WAITING", payload
        interaction = {
            "id": gid,
            "queue": queue,
            "media": media,
            "agents": [],
            "ever": set(),
            "session": None,
            "monitored_once": False,
        }
        floor.live[gid] = interaction
        return "create", interaction, None

    async def connect(self, interaction: dict, agent: str) -> tuple:
        payload = await self.call(
            CONNECT,
            {"input": {"interactionId": interaction["id"], "agentId": agent}},
            "pbx",
            "connectAgent",
        )
        assert payload["interaction"]["state"] == "CONNECTED", payload
        interaction["ever"].add(agent)  # before the change's reach: the agent is on it now
        interaction["agents"].append(agent)
        return "connect", interaction, agent

    async def disconnect(self, interaction: dict, agent: str) -> tuple:
        payload = await self.call(
            DISCONNECT,
            {"input": {"interactionId": interaction["id"], "agentId": agent}},
            "pbx",
            "disconnectAgent",
        )
        interaction["agents"].remove(agent)
        expected = "CONNECTED" if interaction["agents"] else "WAITING"
        assert payload["interaction"]["state"] == expected, payload
        if interaction["session"] and interaction["session"]["agent"] == agent:
            interaction["session"] = None  # ended with AGENT_DISCONNECTED
        return "disconnect", interaction, agent

    async def start(self, interaction: dict) -> tuple:
        agent = interaction["agents"][0]
        monitor = self.floor.rnd.choice(self.floor.monitors[self.floor.division[agent]])
        payload = await self.call(
            START,
            {"input": {"interactionId": interaction["id"], "agentId": agent}},
            monitor,
            "startMonitoring",
        )
        assert payload["session"]["state"] == "ACTIVE", payload
        interaction["session"] = {
            "id": payload["session"]["id"],
            "monitor": monitor,
            "agent": agent,
        }
        interaction["monitored_once"] = True
        return "start", interaction, payload["session"]["id"]

    async def stop(self, interaction: dict) -> tuple:
        session = interaction["session"]
        payload = await self.call(
            STOP, {"input": {"sessionId": session["id"]}}, session["monitor"], "stopMonitoring"
        )
        assert payload["session"]["state"] == "ENDED", payload
        interaction["session"] = None
        return "stop", interaction, session["id"]

    async def end(self, interaction: dict) -> tuple:
        payload = await self.call(
            END, {"input": {"interactionId": interaction["id"]}}, "pbx", "endInteraction"
        )
        assert payload["interaction"]["state"] == "ENDED", payload
        del self.floor.live[interaction["id"]]
        return "end", interaction, None

    # The population, before anyone subscribes.

    async def populate(self, count: int, queues: list[str], concurrency: int = 16) -> None:
        floor = self.floor
        gate = asyncio.Semaphore(concurrency)

        async def limited(coroutine):
            async with gate:
                return await coroutine

        await asyncio.gather(*(limited(self.create(queues[n % len(queues)])) for n in range(count)))
        interactions = list(floor.live.values())
        connected = [i for i in interactions if floor.rnd.random() < 0.6]
        await asyncio.gather(
            *(
                limited(self.connect(i, floor.rnd.choice(floor.agents_for(i["queue"]))))
                for i in connected
                if floor.agents_for(i["queue"])
            )
        )
        seconds = []
        for i in connected:
            others = [a for a in floor.agents_for(i["queue"]) if a not in i["agents"]]
            if i["agents"] and others and floor.rnd.random() < 0.1:
                seconds.append(limited(self.connect(i, floor.rnd.choice(others))))
        await asyncio.gather(*seconds)
        monitored = [
            i
            for i in connected
            if i["agents"]
            and i["media"] in MONITORABLE
            and floor.monitors.get(floor.division[i["agents"][0]])
            and floor.rnd.random() < 0.05 / 0.6 / 0.85
        ]
        await asyncio.gather(*(limited(self.start(i)) for i in monitored))

    # The simulator: one change every 1/rate seconds, open loop.

    def pick(self) -> tuple | None:
        """The next change: (method, arguments), on an interaction nobody changes now nor
        changed within the cooldown."""
        floor, now = self.floor, time.monotonic()
        free = [
            i
            for gid, i in floor.live.items()
            if gid not in floor.busy and now - floor.touched.get(gid, -1e9) >= self.cooldown
        ]
        kinds = list(MIX)
        for _ in range(10):
            kind = floor.rnd.choices(kinds, weights=[MIX[k] for k in kinds])[0]
            if kind == "create":
                return self.create, (floor.rnd.choice(floor.queue_ids),), None
            if kind == "end" and free:
                chosen = floor.rnd.choice(free)
                return self.end, (chosen,), chosen
            if kind == "connect":
                waiting = [i for i in free if not i["agents"] and floor.agents_for(i["queue"])]
                if waiting:
                    chosen = floor.rnd.choice(waiting)
                    return (
                        self.connect,
                        (chosen, floor.rnd.choice(floor.agents_for(chosen["queue"]))),
                        chosen,
                    )
            if kind == "disconnect":
                talking = [i for i in free if i["agents"]]
                if talking:
                    chosen = floor.rnd.choice(talking)
                    return self.disconnect, (chosen, floor.rnd.choice(chosen["agents"])), chosen
            if kind == "start":
                startable = [
                    i
                    for i in free
                    if i["agents"]
                    and not i["session"]
                    and i["media"] in MONITORABLE
                    and not (i["media"] == "SMS" and i["monitored_once"])
                    and floor.monitors.get(floor.division[i["agents"][0]])
                ]
                if startable:
                    chosen = floor.rnd.choice(startable)
                    return self.start, (chosen,), chosen
            if kind == "stop":
                stoppable = [i for i in free if i["session"]]
                if stoppable:
                    chosen = floor.rnd.choice(stoppable)
                    return self.stop, (chosen,), chosen
        return self.create, (floor.rnd.choice(floor.queue_ids),), None

    async def run(self, seconds: float, rate: float, phase: str) -> None:
        floor = self.floor
        began = time.monotonic()
        tasks = []
        problems = []

        async def one(method, arguments, chosen) -> None:
            try:
                reach = floor.reach(chosen) if chosen is not None else None
                sent = time.time()
                kind, interaction, expect = await method(*arguments)
                responded = time.time()
                if reach is None:
                    reach = floor.reach(interaction)
                else:
                    reach |= floor.reach(interaction)
                self.latencies.append(responded - sent)
                self.changes.append(
                    {
                        "number": len(self.changes),
                        "phase": phase,
                        "kind": kind,
                        "id": interaction["id"],
                        "queue": interaction["queue"],
                        "expect": expect,
                        "sent": sent,
                        "responded": responded,
                        "reach": sorted(reach),
                    }
                )
                floor.touched[interaction["id"]] = time.monotonic()
            except Exception as error:  # noqa: BLE001 - reported, and the run fails
                problems.append(repr(error))
            finally:
                if chosen is not None:
                    floor.busy.discard(chosen["id"])

        n = 0
        while True:
            at = began + n / rate
            if at - began >= seconds:
                break
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            method, arguments, chosen = self.pick()
            if chosen is not None:
                floor.busy.add(chosen["id"])
            tasks.append(asyncio.create_task(one(method, arguments, chosen)))
            n += 1
        await asyncio.gather(*tasks)
        if problems:
            raise RuntimeError(f"{len(problems)} changes failed: {problems[:3]}")


def _media() -> list[str]:
    import generate

    return generate.MEDIA


def assign(floor: Floor, subscribers: int, seed: int) -> list[tuple[str, list[str]]]:
    """Each connection: (user key, the 1 to 3 queues of its division it watches)."""
    rnd = random.Random(seed)
    by_division: dict[int, list[str]] = defaultdict(list)
    for queue in floor.queue_ids:
        by_division[floor.queue_division[queue]].append(queue)
    watchers = [w for w in floor.watchers if by_division.get(w["division_id"])]
    connections = []
    for n in range(subscribers):
        if n % ADMIN_EVERY == ADMIN_EVERY - 1:
            user, choices = "admin", floor.queue_ids
        else:
            watcher = watchers[n % len(watchers)]
            user, choices = watcher["key"], by_division[watcher["division_id"]]
        connections.append((user, rnd.sample(choices, min(len(choices), rnd.randint(1, 3)))))
    return connections


def groups_of(floor: Floor, connections) -> dict[str, set]:
    """Per queue, the distinct viewer groups watching it: (division, role) of each watcher."""
    division = {w["key"]: w["division_id"] for w in floor.watchers}
    groups: dict[str, set] = defaultdict(set)
    for user, queue_ids in connections:
        group = ("admin",) if user == "admin" else (division[user], "SUPERVISOR")
        for queue in queue_ids:
            groups[queue].add(group)
    return groups


# --- the reference: polling ------------------------------------------------------------------


def poll_sample(
    url: str, floor: Floor, pairs: list, pid: int, database: str, executor: str
) -> dict:
    """`queueActivity` of each sampled (user, queue), one at a time: server CPU per query
    (and the executions, which must be the server's executor's)."""
    import httpx

    def one(client, user, queue):
        response = client.post(
            "/graphql",
            json={"query": POLL, "variables": {"queueId": queue}},
            headers={"Authorization": f"Bearer {floor.tokens[user]}"},
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors") or not body["data"]["queueActivity"]:
            raise RuntimeError(f"queueActivity failed: {response.text[:300]}")
        return len(response.content)

    with httpx.Client(base_url=url, timeout=120) as client:
        one(client, *pairs[0])  # a warm connection and caches, as a poller's would be
        executions = common.graphql_executions(url)
        before = (common.cpu_seconds(pid), common.postgres_cpu_seconds(database), time.monotonic())
        sizes, times = [], []
        for user, queue in pairs:
            sent = time.monotonic()
            sizes.append(one(client, user, queue))
            times.append(time.monotonic() - sent)
        after = (common.cpu_seconds(pid), common.postgres_cpu_seconds(database), time.monotonic())
        counts = common.executions_since(executions, common.graphql_executions(url))
    server, postgres, seconds = (b - a for a, b in zip(before, after, strict=True))
    return {
        "queries": len(pairs),
        "server_cpu_seconds": round(server, 3),
        "server_cpu_ms_per_query": round(1000 * server / len(pairs), 2),
        "postgres_cpu_ms_per_query": round(1000 * postgres / len(pairs), 2),
        "latency_p50_ms": round(1000 * common.percentile(times, 50), 1),
        "latency_max_ms": round(1000 * max(times), 1),
        "answer_bytes_mean": round(sum(sizes) / len(sizes)),
        "wall_seconds": round(seconds, 2),
        "executions": counts,
        "executor_problem": common.executor_problem(executor, counts, len(pairs)),
    }


# --- what holds the event log's horizon back ------------------------------------------------


class HorizonWatch:
    """Samples, every 50 ms in a thread of its own, the oldest transaction of the PostgreSQL
    cluster that holds a transaction id: events are delivered once every transaction with a
    smaller id has ended (app/events/log.py), and that horizon is the cluster's, so a long
    write transaction of any database (another program's, other work on the machine) holds
    delivery back."""

    def __init__(self, url: str, database: str) -> None:
        import threading

        self.url, self.database = url, database
        self.samples: list[tuple[float, str | None, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.url)
        try:
            while not self._stop.is_set():
                row = await connection.fetchrow(
                    "SELECT datname, extract(epoch FROM clock_timestamp() - xact_start) AS age "
                    "FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                    "ORDER BY age(backend_xid) DESC LIMIT 1"
                )
                self.samples.append(
                    (time.time(), row["datname"], float(row["age"]))
                    if row
                    else (time.time(), None, 0.0)
                )
                await asyncio.sleep(0.05)
        finally:
            await connection.close()

    def figures(self) -> dict:
        samples = self.samples
        others = [s for s in samples if s[1] is not None and s[1] != self.database]
        return {
            "samples": len(samples),
            "share_held_by_other_database_over_100ms": round(
                sum(1 for s in others if s[2] > 0.1) / max(len(samples), 1), 3
            ),
            "share_held_by_this_database_over_100ms": round(
                sum(1 for s in samples if s[1] == self.database and s[2] > 0.1)
                / max(len(samples), 1),
                3,
            ),
            "oldest_other_database_transaction_s": round(max((s[2] for s in others), default=0), 2),
            "other_databases": dict(Counter(s[1] for s in others if s[2] > 0.1).most_common(5)),
        }


# --- profiling -------------------------------------------------------------------------------


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(os.path.join(os.path.dirname(sys.executable), "py-spy"))
    return found if os.path.exists(found) else None


def summarize_profile(path: str, top: int = 25) -> dict:
    """py-spy's raw (collapsed) stacks: the share of samples by innermost function, and by
    function anywhere on the stack (`name (package/module.py)`, without line numbers)."""
    inner, anywhere, total = Counter(), Counter(), 0

    def frame(text: str) -> str:
        name, _, where = text.partition(" (")
        where = where.rsplit(":", 1)[0].rstrip(")")
        return f"{name} ({'/'.join(where.split('/')[-2:])})" if where else name

    with open(path) as file:
        for line in file:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            samples = int(count)
            total += samples
            frames = [frame(f) for f in stack.split(";")]
            inner[frames[-1]] += samples
            for name in set(frames):
                anywhere[name] += samples

    def share(counts: Counter) -> list:
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in counts.most_common(top)]

    return {"samples": total, "innermost_pct": share(inner), "inclusive_pct": share(anywhere)}


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=2000, help="WebSocket connections")
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--interactions", type=int, default=1000, help="live interactions")
    parser.add_argument("--rate", type=float, default=20, help="changes per second")
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds of changes")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of changes before")
    parser.add_argument(
        "--cooldown", type=float, default=3, help="seconds between two changes of one interaction"
    )
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--poll-sample", type=int, default=40, help="queueActivity queries sampled")
    parser.add_argument(
        "--timeout", type=float, default=30, help="seconds to wait for the last update"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measure, py-spy records the server for --profile-seconds more of changes",
    )
    parser.add_argument("--profile-seconds", type=float, default=15)
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny data, 20 subscribers, seconds")
    parser.add_argument(
        "--executors",
        default=",".join(common.EXECUTORS),
        help="the executors measured, in this order, one run each (comma-separated)",
    )
    arguments = parser.parse_args()
    executors = [e.strip() for e in arguments.executors.split(",") if e.strip()]
    if (
        not executors
        or len(set(executors)) < len(executors)
        or any(e not in common.EXECUTORS for e in executors)
    ):
        parser.error(f"--executors: some of {', '.join(common.EXECUTORS)}")
    import generate

    sizes = generate.sizes_parser().parse_args(common.QUICK_SIZES if arguments.quick else [])
    if arguments.quick:
        # Five queues: queue04 is the first of the South division.
        arguments.queues, arguments.interactions, arguments.subscribers = 5, 20, 20
        arguments.seconds, arguments.warmup, arguments.rate = 4, 1, 5
        arguments.cooldown, arguments.processes, arguments.poll_sample = 1, 2, 10
        arguments.profile_seconds = 2
    sizes.queues, sizes.live = arguments.queues, 0  # the live ones: below, spread
    limit = raise_open_files(max(4096, 2 * arguments.subscribers + 1024))
    background = common.background_load()
    common.ensure_database(common.POSTGRES)
    database = common.POSTGRES.rsplit("/", 1)[1]
    code = code_state()  # what the servers import now
    runs = {}
    for executor in executors:
        if not arguments.no_generate:
            generate.generate(common.POSTGRES, sizes)
        runs[executor] = run_executor(executor, database, arguments)
    first = runs.get("compiled") or runs[executors[0]]
    result = {
        **first,
        "executor": "compiled" if "compiled" in runs else executors[0],
        "graphql_core": runs.get("graphql-core") if "compiled" in runs else None,
        "compiled_over_graphql_core": compare_executors(runs),
        "executors_order": executors,
        "ok_by_executor": {executor: run["ok"] for executor, run in runs.items()},
        "ok": all(run["ok"] for run in runs.values()),
    }
    result.update(
        code=code,
        open_files_limit=limit,
        machine_busy_before=background,
        quick=arguments.quick,
        settings={k: v for k, v in vars(arguments).items()},
        subscription=SUBSCRIPTION,
        poll_query=POLL,
        **common.machine(),
    )
    report(result)
    if not result["ok"]:
        sys.exit(1)


def run_executor(executor: str, database: str, arguments) -> dict:
    """One run on a server of `executor` (see common.EXECUTORS): its figures, checked."""
    began = time.monotonic()
    with common.serve(common.POSTGRES, common.EXECUTORS[executor]) as url:
        pid = common.server_pid(url)
        floor = Floor(common.POSTGRES, arguments.queues, 1 if arguments.quick else 2, seed=7)
        simulator = Simulator(url, floor, arguments.cooldown)
        loop = asyncio.new_event_loop()
        try:
            # Interactions of earlier runs (--no-generate) end first: the floor is ours.
            leftovers = asyncio.run(_in_progress(common.POSTGRES))
            loop.run_until_complete(_end_all(simulator, leftovers))
            loop.run_until_complete(simulator.populate(arguments.interactions, floor.queue_ids))
            populated = time.monotonic()
            connections = assign(floor, arguments.subscribers, seed=11)
            groups = groups_of(floor, connections)
            result = measure(
                url, pid, database, floor, simulator, loop, connections, groups, arguments, executor
            )
        finally:
            loop.run_until_complete(simulator.close())
            loop.close()
        result["executors_agree"] = same_answers(url, executor, floor, result["checked_pairs"])
    problems = [f"executions: {p}" for p in result["executor_problems"]]
    agree = result["executors_agree"]
    if agree["differing"]:
        problems.append(f"{agree['differing']} answers differ from {agree['other']}'s")
    result["problems"] = problems + result["problems"]
    result["ok"] = result["ok"] and not problems
    result.update(executor=executor, populate_seconds=round(populated - began, 1))
    print(
        f"live_views: {executor}: {'ok' if result['ok'] else 'FAILED'}, "
        f"{result['executions_in_window']['compiled']} executions compiled in the window",
        flush=True,
    )
    return result


def same_answers(url: str, executor: str, floor: Floor, pairs: list) -> dict:
    """`queueActivity` (POLL) of each (supervisor, queue) pair from the server at `url` and
    from one of the other executor on the same database (nothing changes meanwhile)."""
    other = next(name for name in common.EXECUTORS if name != executor)
    differing = []
    with common.serve(common.POSTGRES, common.EXECUTORS[other]) as other_url:
        executions = common.Executions(other_url, other)
        for user, queue in pairs:
            ours = common.graphql(url, POLL, {"queueId": queue}, user=user)
            theirs = common.graphql(other_url, POLL, {"queueId": queue}, user=user)
            if ours != theirs:
                differing.append([user, queue])
        counts = executions.check(len(pairs), "the answers' comparison")
    return {
        "other": other,
        "compared": len(pairs),
        "differing": len(differing),
        "differing_pairs": differing[:5],
        "other_executions": counts,
    }


def compare_executors(runs: dict) -> dict | None:
    """compiled / graphql-core of the figures that the executor moves."""
    if "compiled" not in runs or "graphql-core" not in runs:
        return None
    ours, theirs = runs["compiled"], runs["graphql-core"]

    def get(run, *path):
        for key in path:
            run = (run or {}).get(key)
        return run

    figures = {
        "last_subscriber_p50_ms": ("last_subscriber_from_response", "p50_ms"),
        "last_subscriber_p99_ms": ("last_subscriber_from_response", "p99_ms"),
        "first_subscriber_p50_ms": ("first_subscriber_from_response", "p50_ms"),
        "mutation_p50_ms": ("mutation_latency", "p50_ms"),
        "server_cores": ("server_cores",),
        "server_cpu_ms_per_change": ("server_cpu_ms_per_change",),
        "open_server_cpu_seconds": ("open_server_cpu_seconds",),
        "polling_server_cpu_ms_per_query": ("polling_sample", "server_cpu_ms_per_query"),
        "polling_over_live": ("polling_over_live",),
    }
    return {
        name: common.ratio(get(ours, *path), get(theirs, *path)) for name, path in figures.items()
    }


def code_state() -> dict:
    """The commit measured, and whether app/ had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=common.REPO, capture_output=True, text=True, check=False
        ).stdout.rstrip()

    changed = git("status", "--porcelain", "app")
    return {
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s")[:120],
        "app_uncommitted": [line[3:] for line in changed.splitlines()],
        # Which uncommitted code was measured: the hash of its diff.
        "app_diff_sha1": hashlib.sha1(git("diff", "HEAD", "--", "app").encode()).hexdigest()
        if changed
        else None,
    }


async def _in_progress(database: str) -> list[int]:
    import asyncpg

    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch("SELECT id FROM interaction WHERE state <> 'ENDED'")
    finally:
        await connection.close()
    return [r["id"] for r in rows]


async def _end_all(simulator: Simulator, pks: list[int]) -> None:
    from app.graphql.ids import encode_id

    gate = asyncio.Semaphore(16)

    async def end(pk):
        async with gate:
            await simulator.call(
                END,
                {"input": {"interactionId": encode_id("Interaction", pk)}},
                "pbx",
                "endInteraction",
            )

    await asyncio.gather(*(end(pk) for pk in pks))


def measure(
    url, pid, database, floor, simulator, loop, connections, groups, arguments, executor
) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    processes = max(1, min(arguments.processes, len(connections)))
    shares = [
        [(user, floor.tokens[user], queue_ids) for user, queue_ids in connections[p::processes]]
        for p in range(processes)
    ]
    subscriptions = sum(len(q) for _, q in connections)
    report_queue = context.Queue()
    controls = [context.Queue() for _ in shares]
    workers = [
        context.Process(
            target=client_process,
            daemon=True,
            args=(
                p,
                url.replace("http://", "ws://") + "/graphql",
                share,
                report_queue,
                controls[p],
            ),
        )
        for p, share in enumerate(shares)
    ]
    opening = time.monotonic()
    cpu_opening = common.cpu_seconds(pid)
    for worker in workers:
        worker.start()
    results: dict[int, dict] = {}
    problems: list[str] = []
    opened = 0

    def receive(wait: float):
        message = report_queue.get(timeout=wait)
        if message[0] == "crash":
            raise RuntimeError(f"client process {message[1]} crashed: {message[2]}")
        return message

    stopped = False
    try:
        waiting = set(range(len(workers)))
        while waiting:
            message = receive(900)
            if message[0] == "open":
                waiting.discard(message[1])
                opened += message[2]
                problems += [f"open: {p}" for p in message[4]]
        if opened != subscriptions:
            raise RuntimeError(
                f"only {opened} of {subscriptions} subscriptions got their snapshot: {problems[:3]}"
            )
        deadline = time.monotonic() + 60
        while (gauge := metrics(url).get("binocular_live_view_subscribers", 0)) != subscriptions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gauge} live view subscribers, not {subscriptions}")
            time.sleep(0.2)
        open_seconds = time.monotonic() - opening
        open_cpu = common.cpu_seconds(pid) - cpu_opening
        idle_from = (common.cpu_seconds(pid), time.monotonic())
        time.sleep(2)
        idle = (common.cpu_seconds(pid) - idle_from[0]) / (time.monotonic() - idle_from[1])

        loop.run_until_complete(simulator.run(arguments.warmup, arguments.rate, "warmup"))
        settle(url, arguments.timeout)  # the warm-up's updates are not the window's
        with HorizonWatch(common.POSTGRES, database) as horizon:
            clients = [worker.pid for worker in workers]
            before = snapshot_usage(url, pid, database, clients)
            window_from = time.time()
            loop.run_until_complete(simulator.run(arguments.seconds, arguments.rate, "measured"))
            settle(url, arguments.timeout)
            after = snapshot_usage(url, pid, database, clients)
            window_to = time.time()

        profile = None
        if arguments.profile:
            profile = profile_server(pid, simulator, loop, arguments, executor)
            settle(url, arguments.timeout)

        # The reference: polling, on a sample of the same (supervisor, queue) pairs.
        rnd = random.Random(5)
        pairs = [(user, queue) for user, queue_ids in connections for queue in queue_ids]
        sample = [rnd.choice(pairs) for _ in range(arguments.poll_sample)]
        polling = poll_sample(url, floor, sample, pid, database, executor)

        for control in controls:
            control.put(("stop", simulator.changes, (window_from, window_to)))
        stopped = True
        deadline = time.monotonic() + 300
        while len(results) < len(workers):
            try:
                message = receive(max(0.0, deadline - time.monotonic()))
            except queues_module.Empty:
                raise RuntimeError("a client process did not report") from None
            if message[0] == "result":
                results[message[1]] = message[2]
        for worker in workers:
            worker.join(30)
        # What each checked subscription holds (its snapshot with every update applied) must
        # be what a query of the same supervisor answers now (nothing changes any more).
        answers, checks = {}, []
        for result in results.values():
            for held in result["states"]:
                key = (held["user"], held["queue"])
                if key not in answers:
                    data = common.graphql(url, POLL, {"queueId": key[1]}, user=key[0])
                    answers[key] = as_state(data["queueActivity"])
                checks.append((key, answers[key] == held["state"], held["state"], answers[key]))
    finally:
        if not stopped:
            for control in controls:
                control.put(("stop", [], (0, 0)))

    result = figures(
        floor,
        connections,
        groups,
        simulator,
        results,
        before,
        after,
        polling,
        profile,
        checks,
        horizon.figures(),
        problems,
        subscriptions,
        open_seconds,
        open_cpu,
        idle,
        len(workers),
        arguments,
    )
    # The live views' executions of the window ran on the server's executor (on the compiled
    # side, only the simulator's mutations on graphql-core), and so did the polling sample.
    counts = common.executions_since(before["executions"], after["executions"])
    result["executions_in_window"] = counts
    in_window = common.executor_problem(executor, counts, int(result["executions"]), ("mutation",))
    result["executor_problems"] = [
        f"{what}: {wrong}"
        for what, wrong in (
            ("the window", in_window),
            ("the polling sample", polling["executor_problem"]),
        )
        if wrong
    ]
    result["checked_pairs"] = [list(key) for key in answers]
    return result


def snapshot_usage(url: str, pid: int, database: str, clients: list[int]) -> dict:

    own = os.times()
    return {
        # The load generator: the client processes, and this one (the simulator).
        "load_cpu": sum(common.cpu_seconds(c) for c in clients) + own.user + own.system,
        "metrics": metrics(url),
        "executions": common.graphql_executions(url),
        "server_cpu": common.cpu_seconds(pid),
        "server_runqueue_wait": runqueue_wait(pid),
        "postgres_cpu": common.postgres_cpu_seconds(database),
        "transactions": asyncio.run(_transactions(common.POSTGRES)),
        "machine": common.machine_busy(),
        "at": time.monotonic(),
    }


def runqueue_wait(pid: int) -> float:
    """Seconds the process's threads have spent ready to run but waiting for a CPU
    (/proc/PID/task/*/schedstat): other work on the machine delays the server that long."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


async def _transactions(database: str) -> int:
    """Transactions committed or rolled back on the benchmark's database so far (each read
    the server makes is one, as each mutation is)."""
    import asyncpg

    connection = await asyncpg.connect(database)
    try:
        return await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = "
            "current_database()"
        )
    finally:
        await connection.close()


def settle(url: str, timeout: float) -> None:
    """Wait until the updates stop: deliveries unchanged for half a second."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = counter(metrics(url), "binocular_live_view_deliveries")
        if now == last:
            return
        last = now
        time.sleep(0.5)


def profile_server(pid: int, simulator: Simulator, loop, arguments, executor: str) -> dict | None:
    """py-spy on the server while the simulator goes on: where the time goes."""

    tool = py_spy()
    if tool is None:
        print("live_views: py-spy is not installed (pip install py-spy): no profile", flush=True)
        return None
    path = str(common.RESULTS / f"live_views_profile_{executor}.txt")
    common.RESULTS.mkdir(exist_ok=True)
    spy = subprocess.Popen(
        [
            tool,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            path,
            "--duration",
            str(int(arguments.profile_seconds)),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1)
    cpu_from = (common.cpu_seconds(pid), time.monotonic())
    loop.run_until_complete(
        simulator.run(arguments.profile_seconds - 1, arguments.rate, "profiled")
    )
    cores = (common.cpu_seconds(pid) - cpu_from[0]) / (time.monotonic() - cpu_from[1])
    _, error = spy.communicate(timeout=arguments.profile_seconds + 60)
    if spy.returncode != 0 or not os.path.exists(path):
        print(f"live_views: py-spy failed: {error.decode()[-500:]}", flush=True)
        return None
    return {"file": path, "server_cores_while_profiled": round(cores, 2), **summarize_profile(path)}


def figures(
    floor,
    connections,
    groups,
    simulator,
    results,
    before,
    after,
    polling,
    profile,
    checks,
    horizon,
    problems,
    subscriptions,
    open_seconds,
    open_cpu,
    idle,
    client_processes,
    arguments,
) -> dict:

    measured = [c for c in simulator.changes if c["phase"] == "measured"]
    arrivals: dict[int, list] = defaultdict(list)
    for result in results.values():
        for number, entry in result["arrivals"].items():
            arrivals[number].append(entry)
        problems += result["problems"]
    last_ms, first_ms, missing, by_kind = [], [], [], defaultdict(list)
    for change in measured:
        entries = arrivals.get(change["number"], [])
        got = sum(e[0] for e in entries)
        expected = sum(e[1] for e in entries)
        if got < expected or expected == 0:
            missing.append((change["kind"], change["id"], got, expected))
            continue
        last = max(e[2] for e in entries if e[2] is not None)
        first = min(e[3] for e in entries if e[3] is not None)
        last_ms.append(1000 * (last - change["responded"]))
        first_ms.append(1000 * (first - change["responded"]))
        by_kind[change["kind"]].append(1000 * (last - change["responded"]))

    def spread(values):
        if not values:
            return None
        return {
            "p50_ms": round(common.percentile(values, 50), 1),
            "p99_ms": round(common.percentile(values, 99), 1),
            "max_ms": round(max(values), 1),
            "n": len(values),
        }

    m0, m1 = before["metrics"], after["metrics"]
    seconds = after["at"] - before["at"]
    server_cpu = after["server_cpu"] - before["server_cpu"]
    postgres_cpu = after["postgres_cpu"] - before["postgres_cpu"]
    busy = (after["machine"][0] - before["machine"][0]) / max(
        after["machine"][1] - before["machine"][1], 1e-9
    )
    executions = counter(m1, "binocular_live_view_executions") - counter(
        m0, "binocular_live_view_executions"
    )
    deliveries = counter(m1, "binocular_live_view_deliveries") - counter(
        m0, "binocular_live_view_deliveries"
    )
    sent_bytes = counter(m1, "binocular_live_view_bytes") - counter(m0, "binocular_live_view_bytes")
    # The bound: per change, the groups watching each queue its change may touch.
    own_groups = [len(groups.get(c["queue"], ())) for c in measured]
    bound = [sum(len(groups.get(q, ())) for q in c["reach"]) for c in measured]
    one = [size for result in results.values() for size, _ in result["one_interaction_frames"]]
    one_alone = [
        s
        for result in results.values()
        for s, agents in result["one_interaction_frames"]
        if agents == 0
    ]
    one_with_agents = [
        s
        for result in results.values()
        for s, agents in result["one_interaction_frames"]
        if agents > 0
    ]
    client_counts = Counter()
    for result in results.values():
        client_counts.update(result["counts"])
    live_cores = server_cpu / seconds
    poll_cores = polling["server_cpu_ms_per_query"] / 1000 * subscriptions  # one poll a second each
    poll_pg_cores = polling["postgres_cpu_ms_per_query"] / 1000 * subscriptions
    mismatched = [entry for entry in checks if not entry[1]]
    lag = [1000 * x for x in simulator.latencies]

    def size_figures(values):
        if not values:
            return None
        return {
            "p50_bytes": common.percentile(values, 50),
            "p99_bytes": common.percentile(values, 99),
            "max_bytes": max(values),
            "n": len(values),
        }

    per_queue = Counter(q for _, queue_ids in connections for q in queue_ids)
    result = {
        "subscribers": len(connections),
        "subscriptions": subscriptions,
        "subscriptions_per_queue": {"min": min(per_queue.values()), "max": max(per_queue.values())},
        "admin_connections": sum(1 for user, _ in connections if user == "admin"),
        "distinct_watchers": len({user for user, _ in connections}),
        "groups_per_queue": {q: sorted(map(str, g)) for q, g in groups.items()},
        "client_processes": client_processes,
        "queues": arguments.queues,
        "live_interactions_at_end": len(floor.live),
        "changes_measured": len(measured),
        "changes_by_kind": dict(Counter(c["kind"] for c in measured)),
        "rate_achieved_per_s": round(len(measured) / arguments.seconds, 1),
        "mutation_latency": spread(lag),
        "last_subscriber_from_response": spread(last_ms),
        "first_subscriber_from_response": spread(first_ms),
        "last_subscriber_by_kind": {k: spread(v) for k, v in by_kind.items()},
        "each_change_last_ms": [round(v, 1) for v in last_ms],
        "missing_changes": missing[:20],
        "missing_count": len(missing),
        "window_seconds": round(seconds, 2),
        "server_cpu_seconds": round(server_cpu, 2),
        "server_cores": round(live_cores, 3),
        "server_cpu_ms_per_change": round(1000 * server_cpu / max(len(measured), 1), 2),
        "server_idle_cores_before": round(idle, 3),
        "postgres_cores": round(postgres_cpu / seconds, 3),
        "server_runqueue_wait_share": round(
            (after["server_runqueue_wait"] - before["server_runqueue_wait"]) / seconds, 3
        ),
        "database_transactions_per_change": round(
            (after["transactions"] - before["transactions"]) / max(len(measured), 1), 1
        ),
        "machine_busy": round(busy, 2),
        "client_cores": round((after["load_cpu"] - before["load_cpu"]) / seconds, 3),
        # What the machine did besides the server, PostgreSQL and the load generator: other
        # work (it competes with them for the two cores).
        "other_work_cores": round(
            busy * (os.cpu_count() or 1)
            - (server_cpu + postgres_cpu + after["load_cpu"] - before["load_cpu"]) / seconds,
            2,
        ),
        "executions": executions,
        "executions_per_change": round(executions / max(len(measured), 1), 3),
        "groups_of_changed_queue_per_change": round(sum(own_groups) / max(len(own_groups), 1), 3),
        "bound_per_change": round(sum(bound) / max(len(bound), 1), 3),
        "bound_total": sum(bound),
        "deliveries": deliveries,
        "deliveries_per_change": round(deliveries / max(len(measured), 1), 1),
        "bytes": sent_bytes,
        "bytes_per_delivery": round(sent_bytes / deliveries) if deliveries else None,
        "client_delta_frames_in_window": sum(r["delta_frames_in_window"] for r in results.values()),
        "client_delta_bytes_in_window": sum(r["delta_bytes_in_window"] for r in results.values()),
        "one_interaction_frames": size_figures(one),
        "one_interaction_frames_without_agents": size_figures(one_alone),
        "one_interaction_frames_with_agents": size_figures(one_with_agents),
        "client_counts": dict(client_counts),
        "client_cpu_seconds": round(sum(r["cpu_seconds"] for r in results.values()), 1),
        "open_seconds": round(open_seconds, 1),
        "open_server_cpu_seconds": round(open_cpu, 1),
        "polling_sample": polling,
        "polling_server_cores": round(poll_cores, 2),
        "polling_postgres_cores": round(poll_pg_cores, 2),
        "polling_over_live": round(poll_cores / live_cores, 1) if live_cores else None,
        "state_checks": len(checks),
        "state_mismatches": [
            {
                "user": e[0][0],
                "queue": e[0][1],
                "client": e[2]["state"]["counts"],
                "query": e[3]["counts"],
            }
            for e in mismatched[:5]
        ],
        "state_mismatch_count": len(mismatched),
        "problems": problems[:10],
        "profile": profile,
        "horizon": horizon,
    }
    # A new snapshot instead of a delta is allowed (the contract's "at any time"): counted,
    # and an update it carries counts as arrived; a change some subscriber never got is not.
    result["ok"] = bool(not missing and not mismatched and not problems and measured)
    return result


def report(result: dict) -> None:

    last = result["last_subscriber_from_response"] or {}
    one = result["one_interaction_frames"] or {}
    alone = result["one_interaction_frames_without_agents"] or {}
    failed = [
        f"{run['executor']}: {run['missing_count']} changes missing at some subscriber, "
        f"{run['state_mismatch_count']} state mismatches, "
        f"{run['client_counts'].get('later_snapshots', 0)} new snapshots, problems "
        f"{run['problems'][:2]}"
        for run in (result, result["graphql_core"])
        if run and not result["ok_by_executor"][run["executor"]]
    ]
    state = f"FAILED: {'; '.join(failed)}; " if failed else ""

    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    p99 = last.get("p99_ms")
    summary = (
        f"{state}{result['executor']}: {result['subscribers']} subscribers "
        f"({result['subscriptions']} queue views), "
        f"{result['changes_measured']} changes at {result['rate_achieved_per_s']}/s: "
        f"last subscriber p50 {last.get('p50_ms')} ms, p99 {p99} ms "
        f"(target <= 100 ms: {met(p99 is not None and p99 <= 100)}); "
        f"server {result['server_cores']} cores ({result['server_cpu_ms_per_change']} ms a "
        f"change; target <= 1: {met(result['server_cores'] <= 1)}); "
        f"{result['executions_per_change']} executions per change (bound "
        f"{result['bound_per_change']}, {result['groups_of_changed_queue_per_change']} groups on "
        f"the changed queue: {met(result['executions'] <= result['bound_total'])}); "
        f"{result['bytes_per_delivery']} bytes per delivery, one-interaction deltas p50 "
        f"{one.get('p50_bytes')} / p99 {one.get('p99_bytes')} / max {one.get('max_bytes')} "
        f"bytes (target p99 <= 2 KB: {met(bool(one) and one['p99_bytes'] <= 2048)}; without "
        f"agentsChanged p50 {alone.get('p50_bytes')}); polling at 1 s would need "
        f"{result['polling_server_cores']} cores "
        f"({result['polling_sample']['server_cpu_ms_per_query']} ms x {result['subscriptions']}/s): "
        f"polling / live = {result['polling_over_live']}; "
        f"{result['executions_in_window']['compiled']} executions compiled in the window"
    )
    other, ratios = result["graphql_core"], result["compiled_over_graphql_core"]
    if other:
        last = other["last_subscriber_from_response"] or {}
        summary += (
            f"; graphql-core: last subscriber p50 {last.get('p50_ms')} ms, p99 "
            f"{last.get('p99_ms')} ms, server {other['server_cores']} cores "
            f"({other['server_cpu_ms_per_change']} ms a change), polling "
            f"{other['polling_sample']['server_cpu_ms_per_query']} ms a query, polling / live = "
            f"{other['polling_over_live']}; compiled/graphql-core: last subscriber p50 "
            f"{ratios['last_subscriber_p50_ms']}, p99 {ratios['last_subscriber_p99_ms']}, server "
            f"cores {ratios['server_cores']}, polling CPU a query "
            f"{ratios['polling_server_cpu_ms_per_query']}"
        )
    common.record("live_views", summary, result)


if __name__ == "__main__":
    main()
