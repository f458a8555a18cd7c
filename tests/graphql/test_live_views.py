"""queueActivityChanged, interactionUpdated and interactionPanelChanged over a real
graphql-transport-ws connection to a real `binocular serve`."""

from tests.graphql.live import (
    QUEUE_ACTIVITY_QUERY,
    QUEUE_ACTIVITY_SUBSCRIPTION,
    LiveClient,
    QueueActivityState,
)


async def fresh_answer(api, user, queue_id):
    data = await api.data(QUEUE_ACTIVITY_QUERY, {"queueId": queue_id}, user=user)
    return data["queueActivity"]


async def test_snapshot_then_deltas_add_up_to_a_fresh_query(server, live_api):
    api = live_api
    queue = api.ids["billing"]
    async with LiveClient(server.ws_url, api.token("ann")) as client:
        await client.subscribe("1", QUEUE_ACTIVITY_SUBSCRIPTION, queueId=queue)
        (first,) = await client.wait_for("1", 1)
        state = QueueActivityState()
        state.apply(client.payloads("1")[0])
        assert state.snapshots == 1
        interaction = await api.create(queue="billing")
        await api.connect(interaction, "bob")
        await api.start("ann", interaction)
        await client.wait_for("1", 4)
        for update in client.payloads("1")[1:]:
            state.apply(update)
        assert state.as_query_answer() == await fresh_answer(api, "ann", queue)
