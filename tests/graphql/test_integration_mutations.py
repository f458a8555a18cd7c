"""What the telephony platform reports: createInteraction, connectAgent, disconnectAgent,
endInteraction and setPresence (INTEGRATION role), and how refusals are reported."""

from datetime import datetime

import pytest

from app.graphql.ids import encode_id

INTERACTION_FIELDS = """
  id mediaType direction state startedAt endedAt
  queue { key }
  participants { id purpose state name user { key } connectedAt disconnectedAt }
  agents { id state user { key } }
"""

CREATE = """mutation($input: CreateInteractionInput!) {
  createInteraction(input: $input) { interaction { FIELDS } errors { message field } }
}""".replace("FIELDS", INTERACTION_FIELDS)

AGENT_CHANGE = """mutation($input: AgentOnInteractionInput!) {
  MUTATION(input: $input) { interaction { FIELDS } errors { message field } }
}""".replace("FIELDS", INTERACTION_FIELDS)

END = """mutation($input: EndInteractionInput!) {
  endInteraction(input: $input) { interaction { FIELDS } errors { message field } }
}""".replace("FIELDS", INTERACTION_FIELDS)

SET_PRESENCE = """mutation($input: SetPresenceInput!) {
  setPresence(input: $input) { user { id key presence } errors { message field } }
}"""

READ = "query($id: ID!) { interaction(id: $id) { FIELDS } }".replace("FIELDS", INTERACTION_FIELDS)

EVERYTHING = "{ interactions(first: 100) { totalCount nodes { FIELDS } } }".replace(
    "FIELDS", INTERACTION_FIELDS
)


# --- helpers ---------------------------------------------------------------------------------


def error_codes(body: dict) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


def create_input(api, **overrides) -> dict:
    values = {
        "externalId": "call-1",
        "mediaType": "VOICE",
        "direction": "INBOUND",
        "queueId": api.ids["billing"],
        "customerName": "Casey Customer",
    }
    return {**values, **overrides}


async def create(api, **overrides) -> dict:
    """The createInteraction payload."""
    return (await api.data(CREATE, {"input": create_input(api, **overrides)}, user="pbx"))[
        "createInteraction"
    ]


async def agent_change(api, mutation: str, interaction_id: str, agent_id: str) -> dict:
    data = await api.data(
        AGENT_CHANGE.replace("MUTATION", mutation),
        {"input": {"interactionId": interaction_id, "agentId": agent_id}},
        user="pbx",
    )
    return data[mutation]


async def connect(api, interaction_id: str, agent: str) -> dict:
    return await agent_change(api, "connectAgent", interaction_id, api.ids.get(agent, agent))


async def disconnect(api, interaction_id: str, agent: str) -> dict:
    return await agent_change(api, "disconnectAgent", interaction_id, api.ids.get(agent, agent))


async def end(api, interaction_id: str) -> dict:
    data = await api.data(END, {"input": {"interactionId": interaction_id}}, user="pbx")
    return data["endInteraction"]


async def set_presence(api, user_id: str, presence: str) -> dict:
    data = await api.data(
        SET_PRESENCE, {"input": {"userId": user_id, "presence": presence}}, user="pbx"
    )
    return data["setPresence"]


async def read(api, interaction_id: str, user: str = "root") -> dict | None:
    return (await api.data(READ, {"id": interaction_id}, user=user))["interaction"]


async def everything(api) -> dict:
    """All interactions with their participants, and users' presence, as an ADMIN sees them:
    compared before and after a refused call to show that nothing was written."""
    data = await api.data(EVERYTHING, user="root")
    presences = {}
    for key in ("ann", "bob", "dina", "eli", "sue", "tom"):
        found = await api.data(
            "query($id: ID!) { node(id: $id) { ... on User { presence } } }",
            {"id": api.ids[key]},
            user="root",
        )
        presences[key] = found["node"]["presence"]
    return {"interactions": data["interactions"], "presences": presences}


def summary(interaction: dict) -> list[tuple]:
    """(purpose, user key or name, state) of each participant, in order."""
    return [
        (p["purpose"], p["user"]["key"] if p["user"] else p["name"], p["state"])
        for p in interaction["participants"]
    ]


def one_error(payload: dict, field: list[str]) -> None:
    assert payload["interaction" if "interaction" in payload else "user"] is None, payload
    assert len(payload["errors"]) == 1, payload
    assert payload["errors"][0]["field"] == field, payload
    assert payload["errors"][0]["message"], payload


def ago(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


async def on_queue_agents(api, queue: str, user: str = "root") -> list[str]:
    data = await api.data(
        "query($id: ID!) { queueActivity(queueId: $id) { onQueueAgentCount onQueueAgents "
        "{ agent { key presence } } } }",
        {"id": api.ids[queue]},
        user=user,
    )
    activity = data["queueActivity"]
    assert activity["onQueueAgentCount"] == len(activity["onQueueAgents"])
    return sorted(a["agent"]["key"] for a in activity["onQueueAgents"])


# --- createInteraction -----------------------------------------------------------------------


async def test_create_interaction_is_waiting_with_a_customer_participant(api):
    payload = await create(
        api,
        externalId="chat-7",
        mediaType="CHAT",
        direction="OUTBOUND",
        queueId=api.ids["support"],
        customerName="Chris Client",
    )
    assert payload["errors"] == []
    created = payload["interaction"]
    assert (created["mediaType"], created["direction"], created["state"]) == (
        "CHAT",
        "OUTBOUND",
        "WAITING",
    )
    assert created["queue"] == {"key": "support"}
    assert created["startedAt"] and created["endedAt"] is None
    assert summary(created) == [("CUSTOMER", "Chris Client", "CONNECTED")]
    customer = created["participants"][0]
    assert customer["user"] is None and customer["disconnectedAt"] is None
    assert created["agents"] == []
    assert await read(api, created["id"]) == created


async def test_create_interaction_again_with_the_same_external_id_returns_the_first(api):
    first = await create(
        api,
        externalId="same",
        mediaType="VOICE",
        queueId=api.ids["billing"],
        customerName="First Caller",
    )
    again = await create(
        api,
        externalId="same",
        mediaType="SMS",
        direction="OUTBOUND",
        queueId=api.ids["support"],
        customerName="Someone Else",
    )
    assert again["errors"] == []
    assert again["interaction"] == first["interaction"]
    assert summary(again["interaction"]) == [("CUSTOMER", "First Caller", "CONNECTED")]
    listed = (await everything(api))["interactions"]
    assert listed["totalCount"] == 1


async def test_create_interaction_again_leaves_a_connected_interaction_as_it_is(api):
    first = (await create(api, externalId="ongoing"))["interaction"]
    await api.connect(first["id"], "bob")
    before = await read(api, first["id"])
    again = await create(api, externalId="ongoing", customerName="Another Name")
    assert again["errors"] == []
    assert again["interaction"] == before
    assert again["interaction"]["state"] == "CONNECTED"


async def test_create_interaction_in_an_unknown_queue_is_an_error_and_writes_nothing(api):
    before = await everything(api)
    for queue_id in (encode_id("Queue", 999999), api.ids["bob"], api.ids["north"]):
        payload = await create(api, externalId="lost", queueId=queue_id)
        one_error(payload, ["input", "queueId"])
    assert await everything(api) == before
    assert before["interactions"]["totalCount"] == 0

    # The externalId was not taken: the next good call creates the interaction.
    created = await create(api, externalId="lost", customerName="Found Caller")
    assert created["errors"] == []
    assert summary(created["interaction"]) == [("CUSTOMER", "Found Caller", "CONNECTED")]


@pytest.mark.parametrize("field", ["externalId", "customerName"])
@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "blank"])
async def test_create_interaction_without_external_id_or_customer_name_is_an_error(
    api, field, value
):
    payload = await create(api, **{field: value})
    one_error(payload, ["input", field])
    assert (await everything(api))["interactions"]["totalCount"] == 0


async def test_create_interaction_errors_are_data_not_top_level_errors(api):
    body = await api.raw(
        CREATE, {"input": create_input(api, queueId=encode_id("Queue", 999999))}, user="pbx"
    )
    assert "errors" not in body, body
    assert body["data"]["createInteraction"]["errors"][0]["field"] == ["input", "queueId"]


# --- connectAgent ----------------------------------------------------------------------------


async def test_connect_agent_joins_as_a_connected_agent(api):
    created = (await create(api))["interaction"]
    payload = await connect(api, created["id"], "bob")
    assert payload["errors"] == []
    joined = payload["interaction"]
    assert joined["state"] == "CONNECTED"
    assert summary(joined) == [
        ("CUSTOMER", "Casey Customer", "CONNECTED"),
        ("AGENT", "bob", "CONNECTED"),
    ]
    agent = joined["participants"][1]
    assert agent["name"] == "Bob Ray"
    assert agent["disconnectedAt"] is None
    assert ago(agent["connectedAt"]) >= ago(joined["participants"][0]["connectedAt"])
    assert [a["user"]["key"] for a in joined["agents"]] == ["bob"]
    assert await read(api, created["id"]) == joined


async def test_connecting_a_connected_agent_changes_nothing(api):
    created = (await create(api))["interaction"]
    first = await connect(api, created["id"], "bob")
    again = await connect(api, created["id"], "bob")
    assert again["errors"] == []
    assert again["interaction"] == first["interaction"]
    assert [p["purpose"] for p in again["interaction"]["participants"]] == ["CUSTOMER", "AGENT"]
    assert await read(api, created["id"]) == first["interaction"]


async def test_a_second_agent_joins_too(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    payload = await connect(api, created["id"], "dina")
    assert payload["errors"] == []
    assert summary(payload["interaction"]) == [
        ("CUSTOMER", "Casey Customer", "CONNECTED"),
        ("AGENT", "bob", "CONNECTED"),
        ("AGENT", "dina", "CONNECTED"),
    ]


@pytest.mark.parametrize("user", ["ann", "sue"])
async def test_a_supervisor_can_take_an_interaction(api, user):
    created = (await create(api))["interaction"]
    payload = await connect(api, created["id"], user)
    assert payload["errors"] == []
    assert payload["interaction"]["state"] == "CONNECTED"
    assert summary(payload["interaction"])[1] == ("AGENT", user, "CONNECTED")


async def test_connect_an_unknown_agent_is_an_error_and_writes_nothing(api):
    created = (await create(api))["interaction"]
    before = await everything(api)
    for agent_id in (encode_id("User", 999999), api.ids["billing"], created["id"]):
        payload = await connect(api, created["id"], agent_id)
        one_error(payload, ["input", "agentId"])
    assert await everything(api) == before
    assert (await read(api, created["id"]))["state"] == "WAITING"


async def test_connect_to_an_unknown_interaction_is_an_error(api):
    await create(api)
    before = await everything(api)
    for interaction_id in (encode_id("Interaction", 999999), api.ids["billing"]):
        payload = await connect(api, interaction_id, "bob")
        one_error(payload, ["input", "interactionId"])
    assert await everything(api) == before


async def test_connect_to_an_ended_interaction_is_an_error(api):
    created = (await create(api))["interaction"]
    ended = (await end(api, created["id"]))["interaction"]
    payload = await connect(api, created["id"], "bob")
    one_error(payload, ["input", "interactionId"])
    assert await read(api, created["id"]) == ended
    assert ended["agents"] == []


# --- disconnectAgent -------------------------------------------------------------------------


async def test_disconnect_the_last_agent_puts_the_interaction_back_to_waiting(api):
    created = (await create(api))["interaction"]
    joined = (await connect(api, created["id"], "bob"))["interaction"]
    payload = await disconnect(api, created["id"], "bob")
    assert payload["errors"] == []
    left = payload["interaction"]
    assert left["state"] == "WAITING"
    assert summary(left) == [
        ("CUSTOMER", "Casey Customer", "CONNECTED"),
        ("AGENT", "bob", "DISCONNECTED"),
    ]
    agent = left["participants"][1]
    assert agent["id"] == joined["participants"][1]["id"]
    assert agent["disconnectedAt"] is not None
    assert ago(agent["disconnectedAt"]) >= ago(agent["connectedAt"])
    assert left["endedAt"] is None
    assert await read(api, created["id"]) == left


async def test_disconnect_one_of_two_agents_keeps_the_interaction_connected(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    await connect(api, created["id"], "dina")
    payload = await disconnect(api, created["id"], "dina")
    assert payload["errors"] == []
    assert payload["interaction"]["state"] == "CONNECTED"
    assert summary(payload["interaction"]) == [
        ("CUSTOMER", "Casey Customer", "CONNECTED"),
        ("AGENT", "bob", "CONNECTED"),
        ("AGENT", "dina", "DISCONNECTED"),
    ]


async def test_disconnecting_an_agent_who_is_not_connected_changes_nothing(api):
    created = (await create(api))["interaction"]
    connected = (await connect(api, created["id"], "bob"))["interaction"]
    payload = await disconnect(api, created["id"], "dina")
    assert payload["errors"] == []
    assert payload["interaction"] == connected
    assert await read(api, created["id"]) == connected


async def test_disconnecting_twice_changes_nothing(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    first = (await disconnect(api, created["id"], "bob"))["interaction"]
    again = await disconnect(api, created["id"], "bob")
    assert again["errors"] == []
    assert again["interaction"] == first
    assert again["interaction"]["state"] == "WAITING"


async def test_disconnecting_from_a_waiting_interaction_changes_nothing(api):
    created = (await create(api))["interaction"]
    payload = await disconnect(api, created["id"], "bob")
    assert payload["errors"] == []
    assert payload["interaction"] == created


async def test_disconnect_on_an_ended_interaction_is_an_error(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    ended = (await end(api, created["id"]))["interaction"]
    payload = await disconnect(api, created["id"], "bob")
    one_error(payload, ["input", "interactionId"])
    assert await read(api, created["id"]) == ended


async def test_disconnect_an_unknown_agent_or_interaction_is_an_error(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    before = await everything(api)
    one_error(await disconnect(api, created["id"], encode_id("User", 999999)), ["input", "agentId"])
    one_error(
        await disconnect(api, encode_id("Interaction", 999999), "bob"), ["input", "interactionId"]
    )
    assert await everything(api) == before


async def test_disconnect_ends_the_session_monitoring_that_agent(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    await connect(api, created["id"], "dina")
    started = await api.start("ann", created["id"], "bob")
    assert started["errors"] == [], started
    await disconnect(api, created["id"], "bob")
    data = await api.data(
        """query($id: ID!) { interaction(id: $id) {
             activeMonitoring { id }
             monitoringSessions { id state endReason endedAt }
             participants { purpose state user { key } } } }""",
        {"id": created["id"]},
        user="ann",
    )
    found = data["interaction"]
    assert found["activeMonitoring"] is None
    [session] = found["monitoringSessions"]
    assert (session["id"], session["state"], session["endReason"]) == (
        started["session"]["id"],
        "ENDED",
        "AGENT_DISCONNECTED",
    )
    assert session["endedAt"] is not None
    monitor = [p for p in found["participants"] if p["purpose"] == "MONITOR"]
    assert monitor == [{"purpose": "MONITOR", "state": "DISCONNECTED", "user": {"key": "ann"}}]


# --- endInteraction --------------------------------------------------------------------------


async def test_end_interaction_disconnects_everyone(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    await connect(api, created["id"], "dina")
    await disconnect(api, created["id"], "dina")
    payload = await end(api, created["id"])
    assert payload["errors"] == []
    ended = payload["interaction"]
    assert ended["state"] == "ENDED"
    assert ended["endedAt"] is not None
    assert ago(ended["endedAt"]) >= ago(ended["startedAt"])
    assert summary(ended) == [
        ("CUSTOMER", "Casey Customer", "DISCONNECTED"),
        ("AGENT", "bob", "DISCONNECTED"),
        ("AGENT", "dina", "DISCONNECTED"),
    ]
    assert all(p["disconnectedAt"] is not None for p in ended["participants"])
    assert await read(api, created["id"]) == ended


async def test_end_a_waiting_interaction(api):
    created = (await create(api))["interaction"]
    ended = (await end(api, created["id"]))["interaction"]
    assert ended["state"] == "ENDED"
    assert summary(ended) == [("CUSTOMER", "Casey Customer", "DISCONNECTED")]


async def test_ending_an_ended_interaction_changes_nothing(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    first = (await end(api, created["id"]))["interaction"]
    again = await end(api, created["id"])
    assert again["errors"] == []
    assert again["interaction"] == first
    assert again["interaction"]["endedAt"] == first["endedAt"]


async def test_end_an_unknown_interaction_is_an_error(api):
    await create(api)
    before = await everything(api)
    for interaction_id in (encode_id("Interaction", 999999), api.ids["billing"]):
        one_error(await end(api, interaction_id), ["input", "interactionId"])
    assert await everything(api) == before


async def test_end_interaction_ends_the_active_monitoring_session(api):
    created = (await create(api))["interaction"]
    await connect(api, created["id"], "bob")
    started = await api.start("ann", created["id"], "bob")
    assert started["errors"] == [], started
    await end(api, created["id"])
    data = await api.data(
        """query($id: ID!) { interaction(id: $id) {
             activeMonitoring { id }
             monitoringSessions { state endReason }
             participants { purpose state } } }""",
        {"id": created["id"]},
        user="ann",
    )
    found = data["interaction"]
    assert found["activeMonitoring"] is None
    assert found["monitoringSessions"] == [{"state": "ENDED", "endReason": "INTERACTION_ENDED"}]
    assert {p["state"] for p in found["participants"]} == {"DISCONNECTED"}


# --- setPresence -----------------------------------------------------------------------------


async def test_set_presence_changes_the_users_presence(api):
    payload = await set_presence(api, api.ids["bob"], "AWAY")
    assert payload == {
        "user": {"id": api.ids["bob"], "key": "bob", "presence": "AWAY"},
        "errors": [],
    }
    viewer = await api.data("{ viewer { presence } }", user="bob")
    assert viewer == {"viewer": {"presence": "AWAY"}}


async def test_set_presence_shows_in_on_queue_agents(api):
    assert await on_queue_agents(api, "billing") == ["bob", "dina"]
    assert await on_queue_agents(api, "support") == []

    await set_presence(api, api.ids["bob"], "BUSY")
    await set_presence(api, api.ids["eli"], "ON_QUEUE")
    assert await on_queue_agents(api, "billing") == ["dina"]
    assert await on_queue_agents(api, "support") == ["eli"]

    await set_presence(api, api.ids["bob"], "ON_QUEUE")
    assert await on_queue_agents(api, "billing", user="ann") == ["bob", "dina"]


async def test_set_presence_to_the_same_value_is_fine(api):
    payload = await set_presence(api, api.ids["dina"], "ON_QUEUE")
    assert payload["errors"] == []
    assert payload["user"]["presence"] == "ON_QUEUE"


async def test_set_presence_of_an_unknown_user_is_an_error(api):
    before = await everything(api)
    for user_id in (encode_id("User", 999999), api.ids["billing"], api.ids["north"]):
        payload = await set_presence(api, user_id, "AWAY")
        one_error(payload, ["input", "userId"])
    assert await everything(api) == before


# --- malformed ids ---------------------------------------------------------------------------


MALFORMED = "not-an-id"


def malformed_calls(api, interaction_id: str) -> dict[str, tuple[str, str, dict]]:
    """(mutation, document, input) of calls with one malformed id each."""

    def agent(mutation: str) -> str:
        return AGENT_CHANGE.replace("MUTATION", mutation)

    return {
        "create-queueId": (
            "createInteraction",
            CREATE,
            create_input(api, externalId="bad", queueId=MALFORMED),
        ),
        "connect-interactionId": (
            "connectAgent",
            agent("connectAgent"),
            {"interactionId": MALFORMED, "agentId": api.ids["dina"]},
        ),
        "connect-agentId": (
            "connectAgent",
            agent("connectAgent"),
            {"interactionId": interaction_id, "agentId": MALFORMED},
        ),
        "disconnect-interactionId": (
            "disconnectAgent",
            agent("disconnectAgent"),
            {"interactionId": MALFORMED, "agentId": api.ids["bob"]},
        ),
        "disconnect-agentId": (
            "disconnectAgent",
            agent("disconnectAgent"),
            {"interactionId": interaction_id, "agentId": MALFORMED},
        ),
        "end-interactionId": ("endInteraction", END, {"interactionId": MALFORMED}),
        "presence-userId": ("setPresence", SET_PRESENCE, {"userId": MALFORMED, "presence": "AWAY"}),
    }


@pytest.mark.parametrize(
    "call",
    [
        "create-queueId",
        "connect-interactionId",
        "connect-agentId",
        "disconnect-interactionId",
        "disconnect-agentId",
        "end-interactionId",
        "presence-userId",
    ],
)
async def test_a_malformed_id_in_an_integration_input_is_bad_user_input(api, call):
    created = (await create(api, externalId="existing"))["interaction"]
    await connect(api, created["id"], "bob")
    before = await everything(api)
    mutation, document, input_fields = malformed_calls(api, created["id"])[call]
    body = await api.raw(document, {"input": input_fields}, user="pbx")
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["path"] == [mutation]
    assert body.get("data") is None or body["data"][mutation] is None, body
    assert await everything(api) == before
