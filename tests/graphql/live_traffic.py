"""Randomized traffic and live-view subscribers for the equivalence tests
(tests/graphql/test_live_equivalence.py, tests/e2e/test_live_processes.py).

`Traffic` drives the integration and monitoring mutations over HTTP from a seeded
random.Random, against one or several `binocular serve` processes, keeping a model of the
interactions read back from the server after each call (so that it picks mostly sensible
calls; a refused one is fine). `Subscribers` holds many live-view subscriptions of different
viewers (queueActivityChanged, interactionUpdated, interactionPanelChanged), and `settle`
waits for a quiet point and compares what each subscriber holds with a fresh query by that
same viewer.
"""

import asyncio
import copy
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import decode_cursor, encode_id
from app.models import User
from tests.conftest import DIRECTORY
from tests.graphql.live import (
    QUEUE_ACTIVITY_QUERY,
    QUEUE_ACTIVITY_SUBSCRIPTION,
    LiveClient,
    QueueActivityState,
)
from tests.support import Api

# The test directory, and more people: supervisors of North who share a group (ann, carl,
# nia, omar), one with every permission (pat: takes over, a class of its own), a supervisor
# who is also an On Queue member of support (kim: connected as an agent), an agent of two
# queues (ivy), a South agent who is a member of a North queue (tom in billing), and a South
# agent of sales (zed).
EXTRA_USERS = [
    {"key": "nia", "name": "Nia Cole", "division": "north", "roles": ["SUPERVISOR"]},
    {"key": "omar", "name": "Omar Fitz", "division": "north", "roles": ["SUPERVISOR"]},
    {
        "key": "pat",
        "name": "Pat Quinn",
        "division": "north",
        "roles": ["SUPERVISOR"],
        "permissions": ["MONITOR", "COACH", "BARGE", "TAKE_OVER"],
    },
    {
        "key": "kim",
        "name": "Kim Ito",
        "division": "north",
        "roles": ["SUPERVISOR"],
        "presence": "ON_QUEUE",
    },
    {
        "key": "ivy",
        "name": "Ivy Nash",
        "division": "north",
        "roles": ["AGENT"],
        "presence": "ON_QUEUE",
    },
    {
        "key": "zed",
        "name": "Zed Ortiz",
        "division": "south",
        "roles": ["AGENT"],
        "presence": "ON_QUEUE",
    },
]
QUEUE_MEMBERS = {
    "billing": ["bob", "dina", "ivy", "tom"],
    "support": ["eli", "kim", "ivy"],
    "sales": ["tom", "zed"],
}


async def load_people(db, directory: dict[str, str]) -> None:
    """The extra people and memberships, on top of the loaded test directory; their ids
    added to `directory`."""
    whole = copy.deepcopy(DIRECTORY)
    whole["users"] += EXTRA_USERS
    for queue in whole["queues"]:
        queue["members"] = QUEUE_MEMBERS[queue["key"]]
    await load_directory(db, DirectoryFile.model_validate(whole))
    keys = [u["key"] for u in EXTRA_USERS]
    async with db.read() as session:
        for row in (await session.exec(sa.select(User).where(User.key.in_(keys)))).scalars():
            directory[row.key] = encode_id("User", row.id)


# Who takes part in the traffic.
AGENTS = ["bob", "dina", "eli", "ivy", "tom", "zed", "kim", "carl"]
AGENT_WEIGHTS = [4, 4, 3, 3, 3, 2, 2, 1]  # carl, a supervisor, is rarely an agent
MONITORS = ["ann", "carl", "nia", "omar", "pat", "kim", "sue", "root", "sam"]
MONITORS_OF = {  # of each division (a monitor of another is refused: DIVISION_MISMATCH)
    "north": ["ann", "carl", "nia", "omar", "pat", "pat", "kim", "root"],
    "south": ["sue", "sam", "sam"],
}
SOUTH = {"tom", "zed", "sue", "sam"}
PRESENCE_USERS = ["bob", "dina", "eli", "ivy", "tom", "zed", "kim", "ann", "pat"]
PRESENCES = ["ON_QUEUE", "ON_QUEUE", "AVAILABLE", "BUSY", "AWAY", "OFFLINE"]
QUEUES = ["billing", "billing", "support", "sales"]
MEDIA = ["VOICE", "VOICE", "VOICE", "CHAT", "CHAT", "SMS", "EMAIL"]
MODES = ["MONITOR", "MONITOR", "COACH", "BARGE"]

_MODEL_QUERY = """query($id: ID!) { interaction(id: $id) {
  id state mediaType
  participants { purpose state user { id } }
  activeMonitoring { id mode monitor { id } } } }"""

_INTEGRATION = """mutation($input: {kind}!) {{
  {mutation}(input: $input) {{ interaction {{ id state }} errors {{ message field }} }} }}"""

_SET_PRESENCE = """mutation($input: SetPresenceInput!) {
  setPresence(input: $input) { user { key presence } errors { message field } } }"""


@dataclass
class Known:
    """One interaction as the traffic last read it."""

    id: str
    queue: str
    media: str
    state: str = "WAITING"
    agents: list[str] = field(default_factory=list)  # connected
    session: tuple[str, str, str] | None = None  # (id, monitor key, mode)


class Traffic:
    """Seeded random mutations, sent round-robin to the given APIs (one per process). Every
    draw of a call is made before it is sent, but calls run a few at a time and the model
    follows what the server answered: a seed replays the same traffic up to those races."""

    def __init__(self, seed: int, apis: list[Api], protected: set[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.apis = apis
        self.tag = uuid.uuid4().hex[:8]
        self.known: dict[str, Known] = {}
        self.protected = protected if protected is not None else set()  # not ended yet
        self.outcomes: Counter = Counter()
        self._sent = 0
        self._keys = {v: k for k, v in apis[0].ids.items()}

    def _api(self) -> Api:
        self._sent += 1
        return self.apis[self._sent % len(self.apis)]

    def open(self) -> list[Known]:
        return [k for k in self.known.values() if k.state != "ENDED"]

    async def create(self, queue: str, media: str = "VOICE") -> str:
        api = self._api()
        data = await api.data(
            """mutation($input: CreateInteractionInput!) {
                 createInteraction(input: $input) { interaction { id } errors { message } } }""",
            {
                "input": {
                    "externalId": f"{self.tag}-{len(self.known)}",
                    "mediaType": media,
                    "direction": "INBOUND",
                    "queueId": api.ids[queue],
                    "customerName": f"Customer {len(self.known)}",
                }
            },
            user="pbx",
        )
        assert data["createInteraction"]["errors"] == [], data
        interaction = data["createInteraction"]["interaction"]["id"]
        self.known[interaction] = Known(interaction, queue, media)
        self.outcomes["create"] += 1
        return interaction

    async def refresh(self, interaction: str) -> None:
        data = await self.apis[0].data(_MODEL_QUERY, {"id": interaction}, user="pbx")
        row = data["interaction"]
        known = self.known[interaction]
        known.state = row["state"]
        known.agents = [
            self._keys[p["user"]["id"]]
            for p in row["participants"]
            if p["purpose"] == "AGENT" and p["state"] == "CONNECTED"
        ]
        active = row["activeMonitoring"]
        known.session = (
            (active["id"], self._keys[active["monitor"]["id"]], active["mode"]) if active else None
        )

    async def _integration(self, mutation: str, **fields) -> bool:
        kind = "EndInteractionInput" if mutation == "endInteraction" else "AgentOnInteractionInput"
        api = self._api()
        data = await api.data(
            _INTEGRATION.format(kind=kind, mutation=mutation), {"input": fields}, user="pbx"
        )
        return not data[mutation]["errors"]

    def _count(self, kind: str, ok: bool) -> None:
        """Successes by kind; refusals by kind and code ("start ALREADY_MONITORED")."""
        self.outcomes[kind if ok or " " in kind else f"{kind} refused"] += 1

    async def step(self) -> None:
        """One random mutation."""
        rng = self.rng
        open_ = self.open()
        sessions = [k for k in open_ if k.session is not None]
        with_agents = [k for k in open_ if k.agents]
        choices = {
            "create": 4 if len(open_) < 8 else 1,
            "connect": 4 if open_ else 0,
            "disconnect": 2 if with_agents else 0,
            "end": 1.5 if [k for k in open_ if k.id not in self.protected] else 0,
            "presence": 3,
            "start": 4 if with_agents else 0,
            "change": 2 if sessions else 0,
            "stop": 1.5 if sessions else 0,
            "take_over": 1 if sessions else 0,
        }
        kind = rng.choices(list(choices), weights=list(choices.values()))[0]
        if kind == "create":
            await self.create(rng.choice(QUEUES), rng.choice(MEDIA))
            return
        if kind == "presence":
            user = rng.choice(PRESENCE_USERS)
            api = self._api()
            data = await api.data(
                _SET_PRESENCE,
                {"input": {"userId": api.ids[user], "presence": rng.choice(PRESENCES)}},
                user="pbx",
            )
            self._count(kind, not data["setPresence"]["errors"])
            return
        if kind == "connect":
            target = rng.choice(open_)
            agent = rng.choices(AGENTS, weights=AGENT_WEIGHTS)[0]
            ok = await self._integration(
                "connectAgent", interactionId=target.id, agentId=self.apis[0].ids[agent]
            )
        elif kind == "disconnect":
            target = rng.choice(with_agents)
            agent = rng.choice(target.agents)
            ok = await self._integration(
                "disconnectAgent", interactionId=target.id, agentId=self.apis[0].ids[agent]
            )
        elif kind == "end":
            target = rng.choice([k for k in open_ if k.id not in self.protected])
            ok = await self._integration("endInteraction", interactionId=target.id)
        elif kind == "start":
            unmonitored = [k for k in with_agents if k.session is None]
            target = rng.choice(unmonitored if unmonitored and rng.random() < 0.8 else with_agents)
            agent = rng.choice(target.agents)
            if rng.random() < 0.8:
                monitor = rng.choice(MONITORS_OF["south" if agent in SOUTH else "north"])
            else:
                monitor = rng.choice(MONITORS)
            if len(target.agents) == 1 and rng.random() < 0.7:
                agent = None
            result = await self._api().start(monitor, target.id, agent, rng.choice(MODES))
            ok = result["session"] is not None and not result["errors"]
            if not ok:
                kind = f"start {result['errors'][0]['code']}"
        else:
            target = rng.choice(sessions)
            session, owner, mode = target.session
            user = owner if rng.random() < 0.85 else rng.choice(MONITORS)
            api = self._api()
            if kind == "change":
                result = await api.change_mode(
                    user, session, rng.choice([m for m in MODES if m != mode] or MODES)
                )
            elif kind == "stop":
                result = await api.stop(user, session)
            else:
                result = await api.take_over(user, session)
            ok = not result["errors"]
            if not ok:
                kind = f"{kind} {result['errors'][0]['code']}"
        self._count(kind, ok)
        await self.refresh(target.id)

    async def burst(self, mutations: int, concurrency: int = 3) -> None:
        """`mutations` random mutations, `concurrency` at a time."""
        done = 0
        while done < mutations:
            n = min(concurrency, mutations - done)
            await asyncio.gather(*(self.step() for _ in range(n)))
            done += n
        # The model may have missed what a concurrent call did to another interaction.
        for known in self.open():
            await self.refresh(known.id)


# The selections the other two views are compared with.
ITEM = """
fragment Item on Interaction {
  id state mediaType startedAt
  participants { id purpose state name user { id name presence }
    monitorability { allowed reason modes canTakeOver currentMonitor { id } } }
  activeMonitoring { id mode monitor { id name } }
}
"""
DETAIL = """
fragment Detail on Interaction {
  id state mediaType direction startedAt endedAt queue { id name }
  participants { id purpose state name user { id name presence }
    monitorability { allowed reason message modes canTakeOver currentMonitor { id name } } }
  agents { id state user { id } }
  activeMonitoring { id mode state monitor { id name } agent { id } }
  monitoringSessions { id state mode endReason monitor { id } modeHistory { mode } }
}
"""
INTERACTION_SUBSCRIPTION = (
    "subscription($id: ID!) { interactionUpdated(id: $id) { ...Detail } }" + DETAIL
)
INTERACTION_QUERY = "query($id: ID!) { interaction(id: $id) { ...Detail } }" + DETAIL
PANEL_SELECTION = "{ monitoring session { id mode state } interaction { ...Item } }"
PANEL_SUBSCRIPTION = "subscription { interactionPanelChanged " + PANEL_SELECTION + " }" + ITEM
PANEL_QUERY = "query { interactionPanel " + PANEL_SELECTION + " }" + ITEM


def _position(cursor: str) -> tuple[int, int]:
    return tuple(decode_cursor(cursor, "event", int, int))


def without_presence(value):
    """The value with every `presence` left out (what an ended interaction's last update
    cannot follow any more)."""
    if isinstance(value, dict):
        return {k: without_presence(v) for k, v in value.items() if k != "presence"}
    if isinstance(value, list):
        return [without_presence(v) for v in value]
    return value


def describe(held, fresh, path: str = "") -> str:
    """Where two JSON values first differ (for a failure message)."""
    if isinstance(held, dict) and isinstance(fresh, dict):
        for key in sorted(set(held) | set(fresh)):
            if held.get(key) != fresh.get(key):
                return describe(held.get(key), fresh.get(key), f"{path}.{key}")
        return ""
    if isinstance(held, list) and isinstance(fresh, list):
        ids_h = [v.get("id") if isinstance(v, dict) else v for v in held]
        ids_f = [v.get("id") if isinstance(v, dict) else v for v in fresh]
        if ids_h != ids_f and all(isinstance(v, dict) for v in held + fresh):
            if all("agent" in v for v in held + fresh):
                ids_h = [v["agent"]["id"] for v in held]
                ids_f = [v["agent"]["id"] for v in fresh]
                if ids_h == ids_f:
                    ids_h = None
            if ids_h is not None:
                return f"{path}: held {ids_h}, fresh {ids_f}"
        if len(held) != len(fresh):
            return f"{path}: held {len(held)} items, fresh {len(fresh)}"
        for i, (h, f) in enumerate(zip(held, fresh, strict=True)):
            if h != f:
                return describe(h, f, f"{path}[{i}]")
        return ""
    return f"{path}: held {held!r}, fresh {fresh!r}"


class Sub:
    """One subscription on one socket: what its client holds."""

    kind = ""

    def __init__(self, client: LiveClient, op: str, viewer: str) -> None:
        self.client = client
        self.op = op
        self.viewer = viewer
        self.seen = 0  # messages applied
        self.updates = 0  # `next` payloads after the first
        self.completed = False
        self.errors: list[dict] = []
        self.last_cursor: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.viewer}:{self.op}"

    def pump(self) -> int:
        """Apply the messages that arrived; how many."""
        messages = self.client.messages.get(self.op, [])
        new = messages[self.seen :]
        self.seen = len(messages)
        for message in new:
            if message["type"] == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    self.errors.append(payload)
                    continue
                (value,) = payload["data"].values()
                self.apply(value)
            elif message["type"] == "complete":
                self.completed = True
            else:
                self.errors.append(message)
        return len(new)

    def apply(self, value) -> None:
        raise NotImplementedError

    def held(self):
        raise NotImplementedError

    async def fresh(self, api: Api):
        raise NotImplementedError


class QueueSub(Sub):
    kind = "queueActivityChanged"

    def __init__(self, client, op, viewer, queue: str) -> None:
        super().__init__(client, op, viewer)
        self.queue = queue
        self.state = QueueActivityState()
        self.with_removed = 0
        self.with_agents_changed = 0
        self.with_agents_removed = 0
        self.cursor_went_back = 0

    @property
    def label(self) -> str:
        return f"{self.kind}({self.queue}) {self.viewer}:{self.op}"

    async def subscribe(self, ids: dict[str, str]) -> None:
        await self.client.subscribe(self.op, QUEUE_ACTIVITY_SUBSCRIPTION, queueId=ids[self.queue])

    def apply(self, value) -> None:
        position = _position(value["cursor"])
        if self.last_cursor is not None and position < self.last_cursor:
            self.cursor_went_back += 1
        self.last_cursor = position
        if self.state.cursor is not None:
            self.updates += 1
        self.with_removed += bool(value["removed"])
        self.with_agents_changed += bool(value["agentsChanged"])
        self.with_agents_removed += bool(value["agentsRemoved"])
        self.state.apply(value)

    def held(self):
        return self.state.as_query_answer() if self.state.cursor is not None else None

    async def fresh(self, api: Api):
        data = await api.data(
            QUEUE_ACTIVITY_QUERY, {"queueId": api.ids[self.queue]}, user=self.viewer
        )
        return data["queueActivity"]


class InteractionSub(Sub):
    kind = "interactionUpdated"

    def __init__(self, client, op, viewer, interaction: str) -> None:
        super().__init__(client, op, viewer)
        self.interaction = interaction
        self.last = None
        self.payloads = 0

    async def subscribe(self, ids) -> None:
        await self.client.subscribe(self.op, INTERACTION_SUBSCRIPTION, id=self.interaction)

    def apply(self, value) -> None:
        self.payloads += 1
        self.updates = self.payloads - 1
        self.last = value

    def held(self):
        if self.completed:  # the final state: presence goes on changing without it
            return without_presence(self.last)
        return self.last

    async def fresh(self, api: Api):
        data = await api.data(INTERACTION_QUERY, {"id": self.interaction}, user=self.viewer)
        return without_presence(data["interaction"]) if self.completed else data["interaction"]


class PanelSub(Sub):
    kind = "interactionPanelChanged"

    def __init__(self, client, op, viewer) -> None:
        super().__init__(client, op, viewer)
        self.last = None
        self.payloads = 0

    async def subscribe(self, ids) -> None:
        await self.client.subscribe(self.op, PANEL_SUBSCRIPTION)

    def apply(self, value) -> None:
        self.payloads += 1
        self.updates = self.payloads - 1
        self.last = value

    def held(self):
        return self.last

    async def fresh(self, api: Api):
        return (await api.data(PANEL_QUERY, user=self.viewer))["interactionPanel"]


@dataclass
class Plan:
    """Who subscribes to what, and on which process (index into the servers)."""

    queues: list[tuple[str, str]]  # (viewer, queue)
    interactions: list[tuple[str, int]]  # (viewer, index of the interaction made first)
    panels: list[str]


# Several subscribers of one class per queue (ann, carl, nia, omar: North supervisors), each
# of them involved at times (monitoring, or carl connected as an agent); a class of one (pat);
# a supervisor who is an On Queue member (kim); agent-role viewers (bob, dina, eli, tom);
# admins of both divisions (root, sam); and some subscriptions twice, on two sockets.
PLAN = Plan(
    queues=[
        ("ann", "billing"),
        ("ann", "support"),
        ("ann", "billing"),  # the same again, on another socket
        ("carl", "billing"),
        ("nia", "billing"),
        ("nia", "support"),
        ("omar", "support"),
        ("omar", "billing"),
        ("pat", "billing"),
        ("kim", "support"),
        ("kim", "billing"),
        ("bob", "billing"),
        ("dina", "billing"),
        ("eli", "support"),
        ("root", "billing"),
        ("root", "sales"),
        ("sam", "sales"),
        ("sam", "billing"),
        ("sue", "sales"),
        ("tom", "sales"),
        ("ivy", "support"),
    ],
    interactions=[
        ("ann", 0),
        ("carl", 0),
        ("bob", 0),
        ("root", 0),
        ("sue", 1),
        ("sam", 1),
        ("zed", 1),
    ],
    panels=["ann", "kim", "pat", "bob", "root", "carl", "tom"],
)
# The interactions subscribed to by id, made before the traffic: (queue, media).
FIRST_INTERACTIONS = [("billing", "VOICE"), ("sales", "CHAT")]


class Subscribers:
    """The plan's subscriptions, on sockets spread over the servers' WebSocket URLs."""

    def __init__(self, ws_urls: list[str], api: Api, plan: Plan = PLAN) -> None:
        self.ws_urls = ws_urls
        self.api = api
        self.plan = plan
        self.clients: list[LiveClient] = []
        self.subs: list[Sub] = []
        self._sockets: dict[tuple[str, int], LiveClient] = {}

    def _client(self, viewer: str, nth: int) -> LiveClient:
        key = (viewer, nth)
        if key not in self._sockets:
            url = self.ws_urls[len(self._sockets) % len(self.ws_urls)]
            self._sockets[key] = LiveClient(url, self.api.token(viewer))
        return self._sockets[key]

    async def open(self, interactions: list[str]) -> None:
        """Connect every socket and subscribe; wait for each first payload."""
        ops: Counter = Counter()
        pending: list[Sub] = []

        def op(viewer: str, prefix: str) -> str:
            ops[viewer] += 1
            return f"{prefix}{ops[viewer]}"

        # A viewer's repeated subscription of one queue goes on a socket of its own.
        repeated: Counter = Counter()
        for viewer, queue in self.plan.queues:
            client = self._client(viewer, repeated[(viewer, queue)])
            repeated[(viewer, queue)] += 1
            pending.append(QueueSub(client, op(viewer, "q"), viewer, queue))
        for viewer, index in self.plan.interactions:
            client = self._client(viewer, 0)
            pending.append(InteractionSub(client, op(viewer, "i"), viewer, interactions[index]))
        for viewer in self.plan.panels:
            pending.append(PanelSub(self._client(viewer, 0), op(viewer, "p"), viewer))
        self.clients = list(self._sockets.values())
        for client in self.clients:
            await client.__aenter__()
        for sub in pending:  # one at a time: a burst of subscriptions is a burst of connections
            await sub.subscribe(self.api.ids)
            await sub.client.wait_for(sub.op, 1, timeout=10)
            sub.pump()
            assert not sub.errors, (sub.label, sub.errors)
            assert sub.held() is not None, sub.label
        self.subs = pending

    async def close(self) -> None:
        for client in self.clients:
            await client.__aexit__(None, None, None)

    def pump(self) -> int:
        return sum(sub.pump() for sub in self.subs)

    def arrived(self) -> int:
        return sum(len(m) for c in self.clients for m in c.messages.values())

    async def differences(self, apis: list[Api]) -> list[str]:
        self.pump()
        found = []
        for i, sub in enumerate(self.subs):
            fresh = await sub.fresh(apis[i % len(apis)])
            held = sub.held()
            if held != fresh:
                found.append(f"{sub.label}: {describe(held, fresh) or 'differs'}")
        return found

    async def settle(self, apis: list[Api], timeout: float = 20, quiet: float = 0.6) -> list[str]:
        """Wait for a quiet point: every subscriber holds what a fresh query by its viewer
        answers, and nothing arrived for `quiet` seconds. The differences left at the
        deadline (empty: settled)."""
        deadline = time.monotonic() + timeout
        last_count, last_change = self.arrived(), time.monotonic()
        while True:
            differences = await self.differences(apis)
            count = self.arrived()
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            elif not differences and now - last_change >= quiet:
                return []
            if now > deadline:
                return differences
            await asyncio.sleep(0.2)

    def problems(self) -> list[str]:
        """What no subscriber may see at all: errors, closed sockets, cursors going back."""
        found = [f"{s.label}: {s.errors}" for s in self.subs if s.errors]
        found += [
            f"{s.label}: completed"
            for s in self.subs
            if s.completed and not isinstance(s, InteractionSub)
        ]
        found += [  # interactionUpdated completes after the ended state only
            f"{s.label}: completed at {s.last['state']}"
            for s in self.subs
            if isinstance(s, InteractionSub) and s.completed and s.last["state"] != "ENDED"
        ]
        found += [f"socket closed: {c.closed}" for c in self.clients if c.closed is not None]
        found += [
            f"{s.label}: cursor went back {s.cursor_went_back}x"
            for s in self.subs
            if isinstance(s, QueueSub) and s.cursor_went_back
        ]
        return found

    def figures(self) -> dict:
        queues = [s for s in self.subs if isinstance(s, QueueSub)]
        return {
            "subscriptions": len(self.subs),
            "sockets": len(self.clients),
            "queue updates": sum(s.updates for s in queues),
            "with removed": sum(s.with_removed for s in queues),
            "with agentsChanged": sum(s.with_agents_changed for s in queues),
            "with agentsRemoved": sum(s.with_agents_removed for s in queues),
            "snapshots": sum(s.state.snapshots for s in queues),
            "interaction updates": sum(
                s.updates for s in self.subs if isinstance(s, InteractionSub)
            ),
            "interaction completed": sum(
                s.completed for s in self.subs if isinstance(s, InteractionSub)
            ),
            "panel updates": sum(s.updates for s in self.subs if isinstance(s, PanelSub)),
        }


async def run_rounds(
    traffic: Traffic, subscribers: Subscribers, apis: list[Api], rounds: int, mutations: int
) -> list[str]:
    """Bursts of random mutations, each followed by a quiet point at which every subscriber
    must hold what a fresh query answers; then the interactions subscribed to by id end (their
    subscriptions complete) and a last quiet point. The failures (empty: none)."""
    for round_ in range(rounds):
        await traffic.burst(mutations)
        differences = await subscribers.settle(apis)
        if differences:
            return [f"round {round_ + 1}: {d}" for d in differences]
    for interaction in sorted(traffic.protected):
        await traffic._integration("endInteraction", interactionId=interaction)
        await traffic.refresh(interaction)
    traffic.protected.clear()
    differences = await subscribers.settle(apis)
    return [f"after the end: {d}" for d in differences]


# Two agent-role viewers of one queue, eli and ivy, share a group. A monitoring event on an
# interaction the view does not show is visible to the one who took part in it (disclosed
# session), not to the other (the silent rule, by viewer id); its ex-agent kim, an On Queue
# member of the queue, then comes out in agentsChanged for the first and not the second.
FIRST_MEMBER_PLAN = Plan(
    queues=[("eli", "support"), ("ivy", "support")], interactions=[], panels=[]
)


async def first_member_decides(
    traffic: Traffic, subscribers: Subscribers, apis: list[Api]
) -> list[str]:
    """For each of eli and ivy: a sales interaction (not shown in support: neither is On
    Queue) that kim (On Queue in support) joins and leaves, and the agent joins; then a
    coached session on it, which only that agent's policy lets through. Each in a batch of
    its own (a quiet point between): whichever member of the group computes the update, one
    of the two yields a delta the other's own computation does not. The differences of the
    quiet points (empty: the clients hold fresh answers)."""
    api = apis[0]
    await api.set_presence("eli", "AVAILABLE")
    await api.set_presence("ivy", "AVAILABLE")
    found = await subscribers.settle(apis)
    for agent, monitor in (("eli", "ann"), ("ivy", "carl")):
        interaction = await traffic.create("sales", "VOICE")
        await api.connect(interaction, "kim")
        await api.connect(interaction, agent)
        await api.disconnect(interaction, "kim")
        found += await subscribers.settle(apis)
        started = await api.start(monitor, interaction, agent, "COACH")
        assert started["session"] is not None, started
        await traffic.refresh(interaction)
        found += await subscribers.settle(apis)
    return found
