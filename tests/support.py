"""Helpers for tests: a GraphQL client bound to the test directory."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings


class GraphQLFailure(AssertionError):
    pass


@dataclass
class Api:
    client: httpx.AsyncClient
    ids: dict[str, str]
    token_for: Callable[[str], str]
    # The application, when the API is called in process.
    app: Any = None
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = self.token_for(user)
        return self._tokens[user]

    async def raw(
        self,
        query: str,
        variables: dict | None = None,
        user: str | None = None,
        headers: dict | None = None,
    ) -> dict:
        """The whole response body, errors included."""
        headers = dict(headers or {})
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    async def data(self, query: str, variables: dict | None = None, user: str = "ann") -> dict:
        """`data` of a response that must have no top-level error."""
        body = await self.raw(query, variables, user)
        if body.get("errors"):
            raise GraphQLFailure(body["errors"])
        return body["data"]

    # The integration's calls, as the telephony platform makes them.

    async def create(
        self,
        queue: str = "billing",
        media: str = "VOICE",
        external_id: str | None = None,
        customer: str = "Casey Customer",
    ) -> str:
        self._counter = getattr(self, "_counter", 0) + 1
        data = await self.data(
            """mutation($input: CreateInteractionInput!) {
                 createInteraction(input: $input) { interaction { id } errors { message field } }
               }""",
            {
                "input": {
                    "externalId": external_id or f"ext-{self._counter}",
                    "mediaType": media,
                    "direction": "INBOUND",
                    "queueId": self.ids[queue],
                    "customerName": customer,
                }
            },
            user="pbx",
        )
        assert data["createInteraction"]["errors"] == [], data
        return data["createInteraction"]["interaction"]["id"]

    async def integration(self, mutation: str, **input_fields) -> dict:
        kind = "EndInteractionInput" if mutation == "endInteraction" else "AgentOnInteractionInput"
        data = await self.data(
            f"""mutation($input: {kind}!) {{
                 {mutation}(input: $input) {{ interaction {{ id state }} errors {{ message field }} }}
               }}""",
            {"input": input_fields},
            user="pbx",
        )
        return data[mutation]

    async def connect(self, interaction: str, agent: str) -> dict:
        result = await self.integration(
            "connectAgent", interactionId=interaction, agentId=self.ids[agent]
        )
        assert result["errors"] == [], result
        return result

    async def disconnect(self, interaction: str, agent: str) -> dict:
        return await self.integration(
            "disconnectAgent", interactionId=interaction, agentId=self.ids[agent]
        )

    async def end(self, interaction: str) -> dict:
        return await self.integration("endInteraction", interactionId=interaction)

    async def set_presence(self, user: str, presence: str) -> dict:
        data = await self.data(
            """mutation($input: SetPresenceInput!) {
                 setPresence(input: $input) { user { key presence } errors { message field } }
               }""",
            {"input": {"userId": self.ids[user], "presence": presence}},
            user="pbx",
        )
        assert data["setPresence"]["errors"] == [], data
        return data["setPresence"]

    async def start(
        self, user: str, interaction: str, agent: str | None = None, mode: str | None = None
    ) -> dict:
        input_fields = {"interactionId": interaction}
        if agent is not None:
            input_fields["agentId"] = self.ids.get(agent, agent)
        if mode is not None:
            input_fields["mode"] = mode
        data = await self.data(
            """mutation($input: StartMonitoringInput!) {
                 startMonitoring(input: $input) {
                   session { id state mode monitor { key } agent { key } endReason }
                   errors { code message field currentMonitor { key } }
                 }
               }""",
            {"input": input_fields},
            user=user,
        )
        return data["startMonitoring"]

    async def stop(self, user: str, session: str) -> dict:
        data = await self.data(
            """mutation($input: StopMonitoringInput!) {
                 stopMonitoring(input: $input) {
                   session { id state endReason endedAt }
                   errors { code message field }
                 }
               }""",
            {"input": {"sessionId": session}},
            user=user,
        )
        return data["stopMonitoring"]

    async def change_mode(self, user: str, session: str, mode: str) -> dict:
        data = await self.data(
            """mutation($input: ChangeMonitoringModeInput!) {
                 changeMonitoringMode(input: $input) {
                   session { id state mode modeHistory { mode at } }
                   errors { code message field }
                 }
               }""",
            {"input": {"sessionId": session, "mode": mode}},
            user=user,
        )
        return data["changeMonitoringMode"]

    async def take_over(self, user: str, session: str) -> dict:
        data = await self.data(
            """mutation($input: TakeOverInteractionInput!) {
                 takeOverInteraction(input: $input) {
                   interaction {
                     id state
                     participants { purpose state user { key } }
                   }
                   session { id state endReason mode }
                   errors { code message field }
                 }
               }""",
            {"input": {"sessionId": session}},
            user=user,
        )
        return data["takeOverInteraction"]


def explore(strategy, max_examples: int, act) -> None:
    """Draw `max_examples` values of a hypothesis strategy and act on each: reproducibly, with
    no shrinking and no example database (the fuzz and visibility tests)."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(value=strategy)
    def draw(value) -> None:
        act(value)

    draw()
