"""queueActivityChanged, interactionUpdated and interactionPanelChanged over a real
graphql-transport-ws connection to a real `binocular serve`: each rule of the addition."""

import asyncio

from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import encode_id
from tests.conftest import DIRECTORY
from tests.graphql.live import (
    QUEUE_ACTIVITY_FIELDS,
    QUEUE_ACTIVITY_QUERY,
    QUEUE_ACTIVITY_SUBSCRIPTION,
    LiveClient,
    QueueActivityState,
)
from tests.servers import metric

INTERACTION_FIELDS = """
  id state endedAt
  participants { purpose state user { key } monitorability { allowed reason modes } }
  activeMonitoring { mode monitor { key } }
"""
INTERACTION_UPDATED = (
    f"subscription($id: ID!) {{ interactionUpdated(id: $id) {{ {INTERACTION_FIELDS} }} }}"
)
INTERACTION_QUERY = f"query($id: ID!) {{ interaction(id: $id) {{ {INTERACTION_FIELDS} }} }}"
PANEL_FIELDS = "monitoring interaction { id state } session { mode monitor { key } }"
PANEL_CHANGED = f"subscription {{ interactionPanelChanged {{ {PANEL_FIELDS} }} }}"
PANEL_QUERY = f"query {{ interactionPanel {{ {PANEL_FIELDS} }} }}"


async def fresh_answer(api, user, queue_id):
    data = await api.data(QUEUE_ACTIVITY_QUERY, {"queueId": queue_id}, user=user)
    return data["queueActivity"]


async def next_payload(client: LiveClient, operation: str, seen: int, timeout: float = 10) -> dict:
    """The operation's payload after the `seen` first ones."""
    await client.wait_for(operation, seen + 1, timeout)
    return client.payloads(operation)[seen]


class Watcher:
    """One viewer's queueActivityChanged, with the state they hold."""

    def __init__(self, client: LiveClient, operation: str = "q") -> None:
        self.client = client
        self.operation = operation
        self.state = QueueActivityState()
        self.seen = 0

    async def start(self, queue_id: str) -> dict:
        await self.client.subscribe(self.operation, QUEUE_ACTIVITY_SUBSCRIPTION, queueId=queue_id)
        return await self.next()

    async def next(self, timeout: float = 10) -> dict:
        update = await next_payload(self.client, self.operation, self.seen, timeout)
        self.seen += 1
        self.state.apply(update)
        return update


async def test_first_update_is_the_whole_view_with_empty_deltas(server, live_api):
    api = live_api
    waiting = await api.create(queue="billing")
    talking = await api.create(queue="billing")
    await api.connect(talking, "bob")
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        first = await Watcher(client).start(api.ids["billing"])
    assert first["snapshot"] is not None
    assert [i["id"] for i in first["snapshot"]["waiting"]] == [waiting]
    assert [i["id"] for i in first["snapshot"]["interacting"]] == [talking]
    assert (first["changed"], first["removed"], first["agentsChanged"], first["agentsRemoved"]) == (
        [],
        [],
        [],
        [],
    )
    assert (first["waitingCount"], first["interactingCount"], first["onQueueAgentCount"]) == (
        1,
        1,
        2,
    )
    assert first["cursor"]


async def test_each_change_is_a_delta_that_adds_up_to_a_fresh_query(server, live_api):
    api = live_api
    queue = api.ids["billing"]
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        watcher = Watcher(client)
        await watcher.start(queue)
        cursors = [watcher.state.cursor]

        interaction = await api.create(queue="billing")
        update = await watcher.next()
        assert update["snapshot"] is None
        assert [(i["id"], i["state"]) for i in update["changed"]] == [(interaction, "WAITING")]
        assert update["waitingCount"] == 1

        await api.connect(interaction, "bob")
        update = await watcher.next()
        assert [(i["id"], i["state"]) for i in update["changed"]] == [(interaction, "CONNECTED")]
        assert [a["agent"]["id"] for a in update["agentsChanged"]] == [api.ids["bob"]]
        assert [i["id"] for i in update["agentsChanged"][0]["interactions"]] == [interaction]
        cursors.append(watcher.state.cursor)

        await api.set_presence("dina", "AWAY")
        update = await watcher.next()
        assert update["agentsRemoved"] == [api.ids["dina"]], update
        assert update["onQueueAgentCount"] == 1

        await api.end(interaction)
        update = await watcher.next()
        assert update["removed"] == [interaction]
        assert update["changed"] == []
        assert [a["interactions"] for a in update["agentsChanged"]] == [[]]
        assert (update["waitingCount"], update["interactingCount"]) == (0, 0)

        await api.set_presence("dina", "ON_QUEUE")
        update = await watcher.next()
        assert [a["agent"]["id"] for a in update["agentsChanged"]] == [api.ids["dina"]]
        cursors.append(watcher.state.cursor)

        assert watcher.state.as_query_answer() == await fresh_answer(api, "ann", queue)
        assert watcher.state.snapshots == 1
    assert cursors == sorted(set(cursors), key=cursors.index)  # all different
    assert len(set(cursors)) == 3


async def test_changes_elsewhere_reach_the_queue_through_its_agents(server, live_api):
    """An On Queue agent of billing taking a support call: billing's agent list changes."""
    api = live_api
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        watcher = Watcher(client)
        await watcher.start(api.ids["billing"])
        elsewhere = await api.create(queue="support")
        await api.connect(elsewhere, "dina")
        update = await watcher.next()
        assert update["changed"] == [] and update["removed"] == []
        (dina,) = update["agentsChanged"]
        assert [i["id"] for i in dina["interactions"]] == [elsewhere]
        assert watcher.state.as_query_answer() == await fresh_answer(api, "ann", api.ids["billing"])


async def test_a_queue_the_viewer_does_not_see_in_its_own_right_is_not_found(server, live_api):
    api = live_api
    async with LiveClient(server.ws_url, api.token("sue")) as client:
        for operation, queue_id in (
            ("other-division", api.ids["billing"]),
            ("no-such-queue", encode_id("Queue", 999_999)),
            ("not-a-queue", api.ids["bob"]),
        ):
            await client.subscribe(operation, QUEUE_ACTIVITY_SUBSCRIPTION, queueId=queue_id)
            messages = await client.wait_for(operation, 2)
            refusal, done = messages[:2]
            assert refusal["type"] == "next" and refusal["payload"]["data"] is None
            (error,) = refusal["payload"]["errors"]
            assert error["extensions"]["code"] == "NOT_FOUND", error
            assert done["type"] == "complete"


async def test_silent_monitoring_sends_its_agents_nothing_until_disclosed(server, live_api):
    """Bob (an agent of North) watches his queue: a silent session on his call changes
    nothing he sees, so he gets no update at all (not even an unchanged interaction); the
    switch to COACH discloses it."""
    api = live_api
    call = await api.create(queue="billing")
    await api.connect(call, "bob")
    async with (
        LiveClient(server.ws_url, api.token("bob")) as bob_client,
        LiveClient(server.ws_url, api.token("carl")) as carl_client,
    ):
        bob, carl = Watcher(bob_client), Watcher(carl_client)
        await bob.start(api.ids["billing"])
        await carl.start(api.ids["billing"])
        session = (await api.start("ann", call))["session"]["id"]
        update = await carl.next()
        assert update["changed"][0]["activeMonitoring"]["monitor"]["id"] == api.ids["ann"]
        # A fence: the next change anyone sees. Bob's next update must be it.
        fence = await api.create(queue="billing")
        update = await bob.next()
        assert [i["id"] for i in update["changed"]] == [fence]
        await carl.next()
        await api.change_mode("ann", session, "COACH")
        update = await bob.next()
        (interaction,) = update["changed"]
        assert interaction["id"] == call
        assert interaction["activeMonitoring"]["mode"] == "COACH"
        assert bob.state.as_query_answer() == await fresh_answer(api, "bob", api.ids["billing"])


async def test_subscribers_of_one_class_share_one_execution(server, live_api):
    """Ann and Carl (North supervisors) watching billing get the same answer: computed once
    per change and written to both. Once Ann monitors a call there, she takes part in the view
    (her session: monitorability says so) and gets an answer of her own."""
    api = live_api
    call = await api.create(queue="billing")
    await api.connect(call, "bob")
    labels = '{view="queueActivity"}'
    async with (
        LiveClient(server.ws_url, api.token("ann")) as ann_client,
        LiveClient(server.ws_url, api.token("carl")) as carl_client,
    ):
        ann, carl = Watcher(ann_client), Watcher(carl_client)
        await ann.start(api.ids["billing"])
        await carl.start(api.ids["billing"])
        executed = metric(server, "binocular_live_view_executions_total", labels)
        delivered = metric(server, "binocular_live_view_deliveries_total", labels)
        await api.create(queue="billing")
        await ann.next()
        await carl.next()
        assert metric(server, "binocular_live_view_executions_total", labels) - executed == 1
        assert metric(server, "binocular_live_view_deliveries_total", labels) - delivered == 2

        await api.start("ann", call)
        own, others = await ann.next(), await carl.next()

        def bob_on_call(update):
            (interaction,) = [i for i in update["changed"] if i["id"] == call]
            (agent,) = [p for p in interaction["participants"] if p["purpose"] == "AGENT"]
            return agent["monitorability"]

        assert bob_on_call(own)["allowed"] is True  # her own session: startMonitoring returns it
        assert bob_on_call(others) | {"modes": None} == {
            "allowed": False,
            "reason": "ALREADY_MONITORED",
            "modes": None,
            "canTakeOver": False,
            "currentMonitor": {"id": api.ids["ann"]},
        }
        for user, watcher in (("ann", ann), ("carl", carl)):
            assert watcher.state.as_query_answer() == await fresh_answer(
                api, user, api.ids["billing"]
            )


async def test_a_directory_change_of_the_viewer_starts_them_over(server, live_api, db):
    """Carl demoted to AGENT by a directory load: he gets a new snapshot, computed for an
    agent."""
    api = live_api
    call = await api.create(queue="billing")
    await api.connect(call, "bob")
    async with LiveClient(server.ws_url, api.token("carl")) as client:
        carl = Watcher(client)
        await carl.start(api.ids["billing"])
        demoted = {
            **DIRECTORY,
            "users": [
                {**user, "roles": ["AGENT"]} if user["key"] == "carl" else user
                for user in DIRECTORY["users"]
            ],
        }
        await load_directory(db, DirectoryFile.model_validate(demoted))
        update = await carl.next()
        assert update["snapshot"] is not None
        assert carl.state.snapshots == 2
        assert carl.state.as_query_answer() == await fresh_answer(api, "carl", api.ids["billing"])


async def test_a_directory_change_of_queue_members_starts_every_view_over(server, live_api, db):
    """Dina taken off billing by a directory load (no presence change): Ann's view, which
    listed her, gets a new snapshot without her."""
    api = live_api
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        ann = Watcher(client)
        first = await ann.start(api.ids["billing"])
        assert len(first["snapshot"]["onQueueAgents"]) == 2
        moved = {
            **DIRECTORY,
            "queues": [
                {**queue, "members": ["bob"]} if queue["key"] == "billing" else queue
                for queue in DIRECTORY["queues"]
            ],
        }
        await load_directory(db, DirectoryFile.model_validate(moved))
        update = await ann.next()
        assert update["snapshot"] is not None
        assert ann.state.as_query_answer() == await fresh_answer(api, "ann", api.ids["billing"])
        assert [a["agent"]["id"] for a in update["snapshot"]["onQueueAgents"]] == [api.ids["bob"]]


async def test_interaction_updated_sends_each_change_and_completes_after_the_end(server, live_api):
    api = live_api
    call = await api.create(queue="billing")
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        await client.subscribe("i", INTERACTION_UPDATED, id=call)
        first = await next_payload(client, "i", 0)
        assert (first["id"], first["state"]) == (call, "WAITING")
        await api.connect(call, "bob")
        second = await next_payload(client, "i", 1)
        assert second["state"] == "CONNECTED"
        expected = (await api.data(INTERACTION_QUERY, {"id": call}, user="ann"))["interaction"]
        assert second == expected
        await api.end(call)
        messages = await client.wait_for("i", 4)
        assert [m["type"] for m in messages] == ["next", "next", "next", "complete"]
        assert client.payloads("i")[-1]["state"] == "ENDED"

        # An interaction that has ended already: its state, then complete.
        await client.subscribe("ended", INTERACTION_UPDATED, id=call)
        messages = await client.wait_for("ended", 2)
        assert [m["type"] for m in messages] == ["next", "complete"]


async def test_interaction_updated_refuses_what_the_viewer_may_not_see(server, live_api):
    api = live_api
    call = await api.create(queue="billing")
    async with LiveClient(server.ws_url, api.token("sue")) as client:
        for operation, interaction_id in (
            ("north", call),
            ("none", encode_id("Interaction", 10**6)),
        ):
            await client.subscribe(operation, INTERACTION_UPDATED, id=interaction_id)
            refusal, done = await client.wait_for(operation, 2)
            assert refusal["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            assert done["type"] == "complete"


async def test_interaction_updated_keeps_silent_monitoring_silent(server, live_api):
    api = live_api
    call = await api.create(queue="billing")
    await api.connect(call, "bob")
    async with LiveClient(server.ws_url, api.token("bob")) as client:
        await client.subscribe("i", INTERACTION_UPDATED, id=call)
        await next_payload(client, "i", 0)
        session = (await api.start("ann", call))["session"]["id"]
        await api.connect(call, "dina")  # a fence: a change Bob sees
        update = await next_payload(client, "i", 1)
        assert [p["user"]["key"] for p in update["participants"] if p["user"]] == ["bob", "dina"]
        assert update["activeMonitoring"] is None
        await api.change_mode("ann", session, "BARGE")
        update = await next_payload(client, "i", 2)
        assert update["activeMonitoring"] == {"mode": "BARGE", "monitor": {"key": "ann"}}


async def test_the_panel_is_sent_whole_after_each_change_of_it(server, live_api):
    api = live_api
    async with (
        LiveClient(server.ws_url, api.token("bob")) as bob,
        LiveClient(server.ws_url, api.token("ann")) as ann,
    ):
        await bob.subscribe("p", PANEL_CHANGED)
        await ann.subscribe("p", PANEL_CHANGED)
        assert await next_payload(bob, "p", 0) == []
        assert await next_payload(ann, "p", 0) == []
        call = await api.create(queue="billing")
        await api.connect(call, "bob")
        assert await next_payload(bob, "p", 1) == [
            {
                "monitoring": False,
                "interaction": {"id": call, "state": "CONNECTED"},
                "session": None,
            }
        ]
        await api.start("ann", call)
        assert await next_payload(ann, "p", 1) == [
            {
                "monitoring": True,
                "interaction": {"id": call, "state": "CONNECTED"},
                "session": {"mode": "MONITOR", "monitor": {"key": "ann"}},
            }
        ]
        await api.end(call)
        assert await next_payload(bob, "p", 2) == []
        assert await next_payload(ann, "p", 2) == []
        for user, client in (("bob", bob), ("ann", ann)):
            fresh = (await api.data(PANEL_QUERY, user=user))["interactionPanel"]
            assert client.payloads("p")[-1] == fresh
        # The silent session never reached Bob's panel: three panels, nothing in between.
        assert len(bob.payloads("p")) == 3


async def test_completing_a_live_view_stops_its_frames(server, live_api):
    """After the client's `complete`, no frame of that operation comes; others go on."""
    api = live_api
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        first, second = Watcher(client, "first"), Watcher(client, "second")
        await first.start(api.ids["billing"])
        await second.start(api.ids["billing"])
        await client.complete("first")
        await asyncio.sleep(0.2)
        await api.create(queue="billing")
        await second.next()
        await api.create(queue="billing")
        await second.next()
        assert len(client.messages["first"]) == 1
        assert metric(server, "binocular_live_view_subscribers") >= 1


async def test_a_selection_of_queue_members_is_followed_by_new_snapshots(server, live_api):
    """`queue { members { presence } }` below the interactions: any member's presence change
    sends a new snapshot (the view does not track which interactions show which members)."""
    api = live_api
    query = (
        """subscription($queueId: ID!) { queueActivityChanged(queueId: $queueId) {
      cursor snapshot { waiting { ...Item } interacting { ...Item } onQueueAgents { ...Agent }
        waitingCount interactingCount onQueueAgentCount }
      changed { ...Item queue { members { key presence } } } removed
      agentsChanged { ...Agent } agentsRemoved waitingCount interactingCount onQueueAgentCount
    } }"""
        + QUEUE_ACTIVITY_FIELDS
    )
    await api.create(queue="billing")
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        await client.subscribe("m", query, queueId=api.ids["billing"])
        await next_payload(client, "m", 0)
        await api.set_presence("bob", "BUSY")
        update = await next_payload(client, "m", 1)
        assert update["snapshot"] is not None


async def test_bad_subscriptions_get_clear_errors_and_break_nothing(server, live_api):
    """Ids that name nothing, of other types or not ids at all, variables of the wrong type,
    unknown fields, an operation completed at once: each is answered (or ended) cleanly, and
    the live views keep working for everyone else, with nothing unexpected logged."""
    api = live_api
    bad = [
        (QUEUE_ACTIVITY_SUBSCRIPTION, {"queueId": ""}, "BAD_USER_INPUT"),
        (QUEUE_ACTIVITY_SUBSCRIPTION, {"queueId": "not base64 at all ☃"}, "BAD_USER_INPUT"),
        (QUEUE_ACTIVITY_SUBSCRIPTION, {"queueId": "x" * 5000}, "BAD_USER_INPUT"),
        (QUEUE_ACTIVITY_SUBSCRIPTION, {"queueId": 12}, "BAD_USER_INPUT"),
        (QUEUE_ACTIVITY_SUBSCRIPTION, {}, "BAD_USER_INPUT"),
        (INTERACTION_UPDATED, {"id": api.ids["billing"]}, "NOT_FOUND"),
        (INTERACTION_UPDATED, {"id": None}, "BAD_USER_INPUT"),
        ("subscription { interactionPanelChanged { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        (
            'subscription { interactionPanelChanged { monitoring } queueActivityChanged(queueId: "x") { cursor } }',
            {},
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ]
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        for n, (query, variables, code) in enumerate(bad):
            await client.subscribe(f"bad{n}", query, **variables)
            messages = await client.wait_for(f"bad{n}", 1)
            errors = (
                messages[0]["payload"]
                if messages[0]["type"] == "error"
                else (messages[0]["payload"]["errors"])
            )
            assert errors[0]["extensions"]["code"] == code, (query, variables, messages)
            assert "Traceback" not in str(messages)
        for n in range(20):  # subscribed and completed at once, before any snapshot
            await client.subscribe(f"brief{n}", PANEL_CHANGED)
            await client.complete(f"brief{n}")
        # An unused variable wider than 64 bits: the view is keyed by its variables.
        await client.subscribe("wide", PANEL_CHANGED, unused=10**30)
        assert await next_payload(client, "wide", 0) == []
        watcher = Watcher(client)
        await watcher.start(api.ids["billing"])
        await api.create(queue="billing")
        update = await watcher.next()
        assert len(update["changed"]) == 1
    assert client.closed is None
    problems = [r for r in server.log_records() if r.get("level") in ("error", "critical")]
    assert problems == []


BRIEF = QUEUE_ACTIVITY_FIELDS.replace(
    "fragment Agent on QueueAgent { agent { id name presence } interactions { ...Item } }",
    "fragment Agent on QueueAgent { agent { id name presence } "
    "interactions { id state mediaType startedAt } }",
)


async def test_agents_listed_by_their_interactions_rows_change_only_with_those_rows(
    server, live_api
):
    """Where the agents' interactions show only their own rows (the README's document), a
    monitoring change or a second agent joining leaves the other agents as they are: they
    are not sent again. The view still adds up to a fresh query at each step."""
    api = live_api
    assert "interactions { ...Item }" not in BRIEF
    subscription = QUEUE_ACTIVITY_SUBSCRIPTION.replace(QUEUE_ACTIVITY_FIELDS, BRIEF)
    query = QUEUE_ACTIVITY_QUERY.replace(QUEUE_ACTIVITY_FIELDS, BRIEF)
    queue = api.ids["billing"]

    async def agents_sent(update) -> list[str]:
        fresh = (await api.data(query, {"queueId": queue}, user="ann"))["queueActivity"]
        assert watcher.state.as_query_answer() == fresh
        return sorted(a["agent"]["id"] for a in update["agentsChanged"])

    call = await api.create(queue="billing")
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        await client.subscribe("q", subscription, queueId=queue)
        watcher = Watcher(client)
        watcher.state.apply(await next_payload(client, "q", 0))
        watcher.seen = 1

        await api.connect(call, "bob")
        assert await agents_sent(await watcher.next()) == [api.ids["bob"]]
        session = (await api.start("carl", call))["session"]["id"]
        update = await watcher.next()
        assert [i["id"] for i in update["changed"]] == [call]
        assert await agents_sent(update) == []
        await api.connect(call, "dina")
        assert await agents_sent(await watcher.next()) == [api.ids["dina"]]
        await api.stop("carl", session)
        assert await agents_sent(await watcher.next()) == []
        await api.disconnect(call, "bob")
        assert await agents_sent(await watcher.next()) == [api.ids["bob"]]
        await api.end(call)
        update = await watcher.next()
        assert update["removed"] == [call]
        assert api.ids["dina"] in await agents_sent(update)


async def test_an_interaction_that_becomes_visible_enters_its_agents_lists(server, live_api, db):
    """Tom (South) is an On Queue member of billing, on a sales call that Ann (North) cannot
    see; Bob (North) joins it, and it becomes visible to her: in Tom's list too."""
    api = live_api
    directory = {
        **DIRECTORY,
        "queues": [
            {**q, "members": [*q["members"], "tom"]} if q["key"] == "billing" else q
            for q in DIRECTORY["queues"]
        ],
    }
    await load_directory(db, DirectoryFile.model_validate(directory))
    subscription = QUEUE_ACTIVITY_SUBSCRIPTION.replace(QUEUE_ACTIVITY_FIELDS, BRIEF)
    query = QUEUE_ACTIVITY_QUERY.replace(QUEUE_ACTIVITY_FIELDS, BRIEF)
    queue = api.ids["billing"]
    call = await api.create(queue="sales")
    await api.connect(call, "tom")
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        await client.subscribe("q", subscription, queueId=queue)
        watcher = Watcher(client)
        watcher.state.apply(await next_payload(client, "q", 0))
        watcher.seen = 1
        (tom,) = [a for a in watcher.state.agents.values() if a["agent"]["id"] == api.ids["tom"]]
        assert tom["interactions"] == []
        await api.connect(call, "bob")
        update = await watcher.next()
        listed = {a["agent"]["id"]: a["interactions"] for a in update["agentsChanged"]}
        assert [i["id"] for i in listed[api.ids["tom"]]] == [call]
        fresh = (await api.data(query, {"queueId": queue}, user="ann"))["queueActivity"]
        assert watcher.state.as_query_answer() == fresh
