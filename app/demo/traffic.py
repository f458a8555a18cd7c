"""A telephony platform, simulated: interactions arrive, wait, get agents, end; agents
change presence. It speaks only GraphQL, through the integration mutations, exactly as a
real integration would, so it drives any running server (`binocular simulate`) as well as
the demo's own."""

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

MEDIA_MIX = {"VOICE": 50, "CHAT": 20, "SMS": 15, "EMAIL": 10, "CALLBACK": 5}
# An agent takes one call, or up to three written conversations at once.
LOAD = {"VOICE": 3, "CALLBACK": 3, "CHAT": 1, "SMS": 1, "EMAIL": 1}
CAPACITY = 3
PRESENCE_MIX = {"ON_QUEUE": 70, "AVAILABLE": 10, "BUSY": 10, "AWAY": 10}
CUSTOMERS = [
    "Zoe Adams",
    "Liam Chen",
    "Maya Patel",
    "Noah Kim",
    "Ava Rossi",
    "Omar Haddad",
    "Ines Duarte",
    "Kofi Mensah",
    "Sara Lind",
    "Yuki Sato",
    "+1 555 0100",
    "+44 20 7946 0958",
    "lea@example.com",
]

DIRECTORY = """{ queues(first: 100) { nodes { id name members { id name presence } } } }"""
CREATE = """mutation($input: CreateInteractionInput!) {
  createInteraction(input: $input) { interaction { id } errors { message } } }"""
CONNECT = """mutation($input: AgentOnInteractionInput!) {
  connectAgent(input: $input) { interaction { id } errors { message } } }"""
DISCONNECT = """mutation($input: AgentOnInteractionInput!) {
  disconnectAgent(input: $input) { interaction { id } errors { message } } }"""
END = """mutation($input: EndInteractionInput!) {
  endInteraction(input: $input) { interaction { id } errors { message } } }"""
LEFTOVERS = """{ interactions(first: 100, filter: {states: [WAITING, CONNECTED]}) {
  nodes { id } } }"""
PRESENCE = """mutation($input: SetPresenceInput!) {
  setPresence(input: $input) { user { id } errors { message } } }"""


@dataclass
class Pace:
    """Seconds each phase lasts, drawn uniformly from these ranges."""

    ring: tuple[float, float] = (2, 8)  # before the first agent could answer
    patience: tuple[float, float] = (30, 120)  # how long a customer waits for a free agent
    talk: tuple[float, float] = (15, 90)
    second_agent_after: tuple[float, float] = (5, 20)
    presence_every: tuple[float, float] = (5, 20)
    abandon_ratio: float = 0.05  # customers who hang up at once, whatever the queue
    second_agent_ratio: float = 0.15


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    created: int = 0
    ended: int = 0
    calls: int = 0
    errors: int = 0
    refusals: Counter = field(default_factory=Counter)  # message -> how many
    states: Counter = field(default_factory=Counter)  # WAITING / CONNECTED of live ones


class Traffic:
    def __init__(
        self, url: str, token: str, rate: float, pace: Pace | None = None, seed: int | None = None
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.rate = rate
        self.pace = pace or Pace()
        self.random = random.Random(seed)
        self.stats = Stats()
        self.queues: list[dict] = []
        self.presence: dict[str, str] = {}
        self.load: Counter = Counter()  # agent id -> load units taken
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._external_ids = (f"sim-{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count())

    async def call(self, query: str, **input_fields) -> dict | None:
        """One GraphQL call; refusals and failures are counted, never raised."""
        self.stats.calls += 1
        try:
            response = await self.client.post(
                "/graphql", json={"query": query, "variables": {"input": input_fields}}
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            return self._refused(type(error).__name__)
        payload = next(iter((body.get("data") or {}).values()), None)
        if body.get("errors") or not payload or payload.get("errors"):
            errors = body.get("errors") or (payload or {}).get("errors") or [{"message": "?"}]
            return self._refused(errors[0]["message"])
        return payload

    def _refused(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.refusals[message] += 1

    async def end_leftovers(self) -> int:
        """End the interactions a previous run left in progress (the demo's, after Ctrl+C)."""
        response = await self.client.post("/graphql", json={"query": LEFTOVERS})
        ids = [
            n["id"]
            for n in (response.json().get("data") or {}).get("interactions", {}).get("nodes", [])
        ]
        for interaction in ids:
            await self.call(END, interactionId=interaction)
        return len(ids)

    async def load_directory(self) -> None:
        response = await self.client.post("/graphql", json={"query": DIRECTORY})
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"cannot read the directory: {body['errors'][0]['message']}")
        self.queues = [q for q in body["data"]["queues"]["nodes"] if q["members"]]
        if not self.queues:
            raise RuntimeError("no queue with members: load a directory first")
        for queue in self.queues:
            for member in queue["members"]:
                self.presence[member["id"]] = member["presence"]

    async def run(self, duration: float | None = None) -> Stats:
        """Generate traffic for `duration` seconds (forever if None), then wind down."""
        await self.load_directory()
        self._spawn(self._presence_changes())
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while deadline is None or time.monotonic() < deadline:
                self._spawn(self._interaction())
                await asyncio.sleep(self.random.expovariate(self.rate))
        finally:
            # Wind down: pauses end at once, so every interaction in progress finishes its
            # course (and ends) before the client closes.
            self._stopping.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.client.aclose()
        return self.stats

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless the run is winding down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pick(self, weights: dict[str, int]) -> str:
        return self.random.choices(list(weights), weights=list(weights.values()))[0]

    async def _interaction(self) -> None:
        queue = self.random.choice(self.queues)
        media = self._pick(MEDIA_MIX)
        created = await self.call(
            CREATE,
            externalId=next(self._external_ids),
            mediaType=media,
            direction="INBOUND" if self.random.random() < 0.85 else "OUTBOUND",
            queueId=queue["id"],
            customerName=self.random.choice(CUSTOMERS),
        )
        if created is None:
            return
        self.stats.created += 1
        interaction = created["interaction"]["id"]
        load = LOAD[media]
        agents: list[str] = []
        state = "WAITING"
        self.stats.states[state] += 1
        try:
            agent = await self._wait_for_agent(queue, load)
            if agent and await self._connect(interaction, agent, load, agents):
                self.stats.states[state] -= 1
                state = "CONNECTED"
                self.stats.states[state] += 1
                await self._talk(queue, interaction, agents, load)
        finally:
            self.stats.states[state] -= 1
            await self._end(interaction, agents, load)

    async def _wait_for_agent(self, queue: dict, load: int) -> str | None:
        """Ring, then wait for an On Queue agent with room, as long as the customer's
        patience lasts; None when the customer abandons."""
        await self._pause(self.random.uniform(*self.pace.ring))
        if self.random.random() < self.pace.abandon_ratio:
            return None
        give_up = time.monotonic() + self.random.uniform(*self.pace.patience)
        while not self._stopping.is_set():
            agent = self._available_agent(queue, load)
            if agent or time.monotonic() >= give_up:
                return agent
            await self._pause(min(1.0, give_up - time.monotonic()))
        return None

    async def _connect(self, interaction: str, agent: str, load: int, agents: list) -> bool:
        self.load[agent] += load  # taken before the call, so that no one else takes the room
        if await self.call(CONNECT, interactionId=interaction, agentId=agent):
            agents.append(agent)
            return True
        self.load[agent] -= load
        return False

    async def _talk(self, queue: dict, interaction: str, agents: list[str], load: int) -> None:
        talk = self.random.uniform(*self.pace.talk)
        if self.random.random() < self.pace.second_agent_ratio:
            joins = min(talk, self.random.uniform(*self.pace.second_agent_after))
            await self._pause(joins)
            talk -= joins
            second = self._available_agent(queue, load, besides=agents)
            if second:
                await self._connect(interaction, second, load, agents)
        await self._pause(talk)

    async def _end(self, interaction: str, agents: list[str], load: int) -> None:
        for agent in reversed(agents):
            await self.call(DISCONNECT, interactionId=interaction, agentId=agent)
            self.load[agent] -= load
        if await self.call(END, interactionId=interaction):
            self.stats.ended += 1

    def _available_agent(self, queue: dict, load: int, besides: list[str] = ()) -> str | None:
        ready = [
            m["id"]
            for m in queue["members"]
            if self.presence.get(m["id"]) == "ON_QUEUE"
            and m["id"] not in besides
            and self.load[m["id"]] + load <= CAPACITY
        ]
        return self.random.choice(ready) if ready else None

    async def _presence_changes(self) -> None:
        members = sorted(self.presence)
        while True:
            await self._pause(self.random.uniform(*self.pace.presence_every))
            if self._stopping.is_set():
                return
            user = self.random.choice(members)
            presence = self._pick(PRESENCE_MIX)
            if await self.call(PRESENCE, userId=user, presence=presence):
                self.presence[user] = presence
