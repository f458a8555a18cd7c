"""The live queue activity `binocular demo` prints, used as a newcomer uses it: the
subscription, pasted as printed, over a real graphql-transport-ws connection with the token
in `connection_init` as GraphiQL sends it, against a real demo process. Its first update is
the whole view of the queue it names; later ones, applied as a frontend applies them, follow
an interaction placed, connected and ended as the telephony platform would."""

import re
import time
import uuid

import httpx
import pytest
from graphql import OperationDefinitionNode, OperationType, StringValueNode, parse

from tests.demo.test_demo_process import printed_address, running_demo
from tests.graphql.live import LiveClient, QueueActivityState

HEADING = re.compile(
    r"^Live queue activity: paste this subscription of (?P<queue>.+) "
    r"into (?P<user>.+)'s GraphiQL\.$",
    re.MULTILINE,
)
PRINT_SECONDS = 10  # for the subscription to be printed once /healthz answers
UPDATE_SECONDS = 20  # for the update that shows a change


@pytest.fixture
def demo(tmp_path):
    with running_demo(tmp_path) as running:
        yield running


def printed_subscription(demo) -> tuple[str, str, str, str]:
    """(queue name, user name, the instructions, the document) as printed: the document runs
    from its `subscription` line to the first blank line."""
    deadline = time.monotonic() + PRINT_SECONDS
    while True:
        text = demo.output.read_text()
        heading = HEADING.search(text)
        if heading:
            rest = text[heading.start() :]
            found = re.search(r"^(.*?)\n\n(subscription .*?\n)\n", rest, re.DOTALL | re.MULTILINE)
            if found:
                return heading["queue"], heading["user"], found[1], found[2]
        assert time.monotonic() < deadline, f"no live subscription printed:\n{text}"
        time.sleep(0.2)


def graphql(demo, token: str, query: str, **variables) -> dict:
    answer = httpx.post(
        f"{demo.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert "errors" not in answer, answer
    return answer["data"]


def printed_queue_id(document: str) -> str:
    (operation,) = [
        d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)
    ]
    assert operation.operation == OperationType.SUBSCRIPTION
    (field,) = operation.selection_set.selections
    assert field.name.value == "queueActivityChanged"
    (argument,) = field.arguments
    assert argument.name.value == "queueId" and isinstance(argument.value, StringValueNode)
    return argument.value.value


def check_consistent(update: dict, state: QueueActivityState) -> None:
    """What the client holds agrees with the counts the server sent with it."""
    held = state.as_query_answer()
    assert (len(held["waiting"]), len(held["interacting"]), len(held["onQueueAgents"])) == (
        update["waitingCount"],
        update["interactingCount"],
        update["onQueueAgentCount"],
    ), (update, held)


async def test_the_printed_subscription_runs_as_printed_on_the_demo(demo):
    queue_name, user, instructions, document = printed_subscription(demo)
    assert '{"Authorization": "Bearer ..."}' in instructions and "connection_init" in instructions
    token = printed_address(demo, user).split("#token=", 1)[1]
    pbx = printed_address(demo, "Telephony").split("#token=", 1)[1]

    # A real queue of the floor, by its id as the API gives it.
    queue_id = printed_queue_id(document)
    queues = graphql(demo, token, "{ queues { nodes { id name members { id } } } }")
    queue = next(q for q in queues["queues"]["nodes"] if q["id"] == queue_id)
    assert queue["name"] == queue_name

    ws_url = demo.url.replace("http://", "ws://") + "/graphql"
    async with LiveClient(ws_url, token) as client:
        await client.subscribe("live", document)  # as printed: no variables
        state = QueueActivityState()
        seen = 0

        async def next_update(timeout: float) -> dict:
            nonlocal seen
            await client.wait_for("live", seen + 1, timeout)
            messages = client.messages["live"]
            assert messages[seen]["type"] == "next", messages[seen]
            update = client.payloads("live")[seen]
            seen += 1
            state.apply(update)
            check_consistent(update, state)
            return update

        first = await next_update(10)
        snapshot = first["snapshot"]
        assert snapshot is not None and snapshot["queue"] == {"id": queue_id, "name": queue_name}
        assert (first["changed"], first["removed"]) == ([], [])
        assert (first["agentsChanged"], first["agentsRemoved"]) == ([], [])

        async def until(what: str, holds) -> None:
            """Updates until the state the client holds shows `what` (any number of the
            simulator's in between)."""
            deadline = time.monotonic() + UPDATE_SECONDS
            while not holds():
                left = deadline - time.monotonic()
                assert left > 0, f"no update showed {what}: {state.as_query_answer()}"
                await next_update(left)

        # The telephony platform places a chat, an agent answers, it ends; the simulator
        # leaves it alone.
        placed = graphql(
            demo,
            pbx,
            """mutation($externalId: String!, $queueId: ID!) { createInteraction(input: {
              externalId: $externalId, mediaType: CHAT, direction: INBOUND,
              queueId: $queueId, customerName: "Zoe Adams"}) {
              interaction { id } errors { message } } }""",
            externalId=f"live-demo-{uuid.uuid4()}",
            queueId=queue_id,
        )["createInteraction"]
        assert placed["errors"] == [], placed
        chat = placed["interaction"]["id"]
        await until(
            "the chat waiting", lambda: state.interactions.get(chat, {}).get("state") == "WAITING"
        )
        assert chat in [i["id"] for i in state.as_query_answer()["waiting"]]

        agent = queue["members"][0]["id"]
        connected = graphql(
            demo,
            pbx,
            """mutation($interaction: ID!, $agent: ID!) { connectAgent(input: {
              interactionId: $interaction, agentId: $agent}) { errors { message } } }""",
            interaction=chat,
            agent=agent,
        )["connectAgent"]
        assert connected["errors"] == [], connected
        await until(
            "the chat connected",
            lambda: state.interactions.get(chat, {}).get("state") == "CONNECTED",
        )
        (mine,) = [i for i in state.as_query_answer()["interacting"] if i["id"] == chat]
        agents = [p for p in mine["participants"] if p["purpose"] == "AGENT"]
        assert [(p["user"]["id"], p["state"]) for p in agents] == [(agent, "CONNECTED")]
        assert agents[0]["monitorability"]["allowed"] is True  # the viewer may monitor it

        ended = graphql(
            demo,
            pbx,
            """mutation($interaction: ID!) { endInteraction(input: {interactionId: $interaction})
              { errors { message } } }""",
            interaction=chat,
        )["endInteraction"]
        assert ended["errors"] == [], ended
        await until("the chat gone", lambda: chat not in state.interactions)
        assert any(chat in update["removed"] for update in client.payloads("live"))
