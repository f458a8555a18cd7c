"""A live view client for tests: graphql-transport-ws spoken with `websockets`, message by
message, and the client-side application of queue activity deltas, as a frontend does it."""

import asyncio
import contextlib
import json
from typing import Self

import websockets

QUEUE_ACTIVITY_FIELDS = """
fragment Item on Interaction {
  id state mediaType startedAt
  participants { id purpose state name user { id name presence }
    monitorability { allowed reason modes canTakeOver currentMonitor { id } } }
  activeMonitoring { id mode monitor { id name } }
}
fragment Agent on QueueAgent { agent { id name presence } interactions { ...Item } }
"""

QUEUE_ACTIVITY_QUERY = (
    """query($queueId: ID!) { queueActivity(queueId: $queueId) {
  waiting { ...Item } interacting { ...Item } onQueueAgents { ...Agent }
  waitingCount interactingCount onQueueAgentCount } }"""
    + QUEUE_ACTIVITY_FIELDS
)

QUEUE_ACTIVITY_SUBSCRIPTION = (
    """subscription($queueId: ID!) { queueActivityChanged(queueId: $queueId) {
  cursor
  snapshot { waiting { ...Item } interacting { ...Item } onQueueAgents { ...Agent }
    waitingCount interactingCount onQueueAgentCount }
  changed { ...Item } removed agentsChanged { ...Agent } agentsRemoved
  waitingCount interactingCount onQueueAgentCount } }"""
    + QUEUE_ACTIVITY_FIELDS
)


class QueueActivityState:
    """What a client holds: the snapshot with every update applied in order."""

    def __init__(self) -> None:
        self.interactions: dict[str, dict] = {}
        self.agents: dict[str, dict] = {}
        self.counts: tuple[int, int, int] | None = None
        self.cursor: str | None = None
        self.snapshots = 0

    def apply(self, update: dict) -> None:
        self.cursor = update["cursor"]
        if update["snapshot"] is not None:
            snapshot = update["snapshot"]
            self.snapshots += 1
            self.interactions = {i["id"]: i for i in snapshot["waiting"] + snapshot["interacting"]}
            self.agents = {a["agent"]["id"]: a for a in snapshot["onQueueAgents"]}
        for interaction in update["changed"]:
            self.interactions[interaction["id"]] = interaction
        for removed in update["removed"]:
            self.interactions.pop(removed, None)
        for agent in update["agentsChanged"]:
            self.agents[agent["agent"]["id"]] = agent
        for removed in update["agentsRemoved"]:
            self.agents.pop(removed, None)
        self.counts = (
            update["waitingCount"],
            update["interactingCount"],
            update["onQueueAgentCount"],
        )

    def as_query_answer(self) -> dict:
        """In queueActivity's shape: sections by state, oldest first; agents by name."""
        ordered = sorted(self.interactions.values(), key=lambda i: i["startedAt"])
        return {
            "waiting": [i for i in ordered if i["state"] == "WAITING"],
            "interacting": [i for i in ordered if i["state"] == "CONNECTED"],
            "onQueueAgents": sorted(self.agents.values(), key=lambda a: a["agent"]["name"]),
            "waitingCount": self.counts[0],
            "interactingCount": self.counts[1],
            "onQueueAgentCount": self.counts[2],
        }


class LiveClient:
    """One WebSocket: subscribe operations by id, collect each one's messages."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url = ws_url
        self.token = token
        self.messages: dict[str, list[dict]] = {}
        self.arrived = asyncio.Condition()
        self.closed: tuple[int, str] | None = None
        self._socket = None
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> Self:
        self._socket = await websockets.connect(
            self.ws_url, subprotocols=["graphql-transport-ws"], max_size=None
        )
        await self._socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}
            )
        )
        ack = json.loads(await self._socket.recv())
        assert ack["type"] == "connection_ack", ack
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._socket.close()

    async def _read(self) -> None:
        try:
            async for text in self._socket:
                message = json.loads(text)
                async with self.arrived:
                    self.messages.setdefault(message.get("id"), []).append(message)
                    self.arrived.notify_all()
        except websockets.ConnectionClosed as closed:
            async with self.arrived:
                self.closed = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (0, "")
                self.arrived.notify_all()

    async def subscribe(self, operation_id: str, query: str, **variables) -> None:
        self.messages[operation_id] = []
        await self._socket.send(
            json.dumps(
                {
                    "id": operation_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )

    async def complete(self, operation_id: str) -> None:
        await self._socket.send(json.dumps({"id": operation_id, "type": "complete"}))

    async def wait_for(self, operation_id: str, count: int, timeout: float = 10) -> list[dict]:
        """The operation's first `count` messages (next, error, complete)."""
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(
                    lambda: (
                        len(self.messages.get(operation_id, [])) >= count or self.closed is not None
                    )
                ),
                timeout,
            )
        return self.messages[operation_id]

    def payloads(self, operation_id: str) -> list[dict]:
        """The `next` payloads' data of the operation's one field."""
        found = []
        for message in self.messages.get(operation_id, []):
            if message["type"] == "next":
                assert "errors" not in message["payload"], message
                (value,) = message["payload"]["data"].values()
                found.append(value)
        return found
