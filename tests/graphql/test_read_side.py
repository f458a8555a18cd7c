"""The supervisor's read side: viewer, queues, queueActivity, interactions, interaction, node,
participants and the interaction panel, with division visibility."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import models
from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import decode_node_id, encode_cursor, encode_id

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------------


def error_codes(body: dict) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


def assert_bad_user_input(body: dict, field: str) -> None:
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body.get("data") is None or body["data"].get(field) is None, body


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def set_started_at(db, interaction_id: str, moment: datetime) -> None:
    """Put an interaction at a chosen start time (the platform reports arrivals as they come)."""
    _, pk = decode_node_id(interaction_id)
    async with db.transaction() as session:
        await session.exec(
            sa.update(models.Interaction)
            .where(models.Interaction.id == pk)
            .values(started_at=moment)
        )


QUEUES = """query($first: Int, $after: String) {
  queues(first: $first, after: $after) {
    totalCount
    edges { cursor node { id key name division { key } } }
    nodes { key }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def queues(api, user: str, **args) -> dict:
    return (await api.data(QUEUES, args, user=user))["queues"]


async def all_queue_keys(api, user: str, page_size: int) -> list[str]:
    keys, after = [], None
    while True:
        page = await queues(api, user, first=page_size, after=after)
        keys += [edge["node"]["key"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return keys
        after = page["pageInfo"]["endCursor"]


ACTIVITY = """query($id: ID!) {
  queueActivity(queueId: $id) {
    queue { id key }
    asOf
    waitingCount interactingCount onQueueAgentCount
    waiting { id state startedAt }
    interacting { id state startedAt }
    onQueueAgents { agent { key presence } interactions { id state } }
  }
}"""


async def activity(api, queue: str, user: str = "ann") -> dict | None:
    return (await api.data(ACTIVITY, {"id": api.ids.get(queue, queue)}, user=user))["queueActivity"]


INTERACTIONS = """query($filter: InteractionFilter, $first: Int, $after: String) {
  interactions(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id state startedAt } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def interactions(api, user: str = "ann", **args) -> dict:
    return (await api.data(INTERACTIONS, args, user=user))["interactions"]


async def interaction_ids(api, user: str = "ann", **args) -> list[str]:
    return [node["id"] for node in (await interactions(api, user, **args))["nodes"]]


INTERACTION = """query($id: ID!) {
  interaction(id: $id) {
    id mediaType direction state startedAt endedAt
    queue { key }
    participants { id purpose state name user { key } connectedAt disconnectedAt }
    agents { id purpose state user { key } disconnectedAt }
  }
}"""


async def interaction(api, interaction_id: str, user: str = "ann") -> dict | None:
    return (await api.data(INTERACTION, {"id": interaction_id}, user=user))["interaction"]


NODE = """query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Division { key }
    ... on User { key }
    ... on Queue { key }
    ... on Interaction { interactionState: state }
    ... on Participant { purpose name }
    ... on MonitoringSession { sessionState: state monitor { key } agent { key } }
  }
}"""


async def node(api, node_id: str, user: str = "ann") -> dict | None:
    return (await api.data(NODE, {"id": node_id}, user=user))["node"]


PANEL = """{ interactionPanel { interaction { id state } monitoring session { id state } } }"""


async def panel(api, user: str) -> list[dict]:
    return (await api.data(PANEL, user=user))["interactionPanel"]


async def participant_ids(api, interaction_id: str, user: str = "root") -> dict[str, str]:
    """{purpose or user key: participant id} of an interaction."""
    found = await interaction(api, interaction_id, user=user)
    return {
        (p["user"]["key"] if p["user"] else p["purpose"]): p["id"] for p in found["participants"]
    }


MALFORMED_IDS = [
    "not-an-id",
    "",
    encode_id("Queue", 1) + "!",
    "Queue:1",  # the plain text, not encoded
    encode_id("Nonsense", 1),  # a type we do not have
    "aGVsbG8gd29ybGQ",  # base64 of "hello world"
]


# --- viewer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, expected",
    [
        (
            "ann",
            {
                "key": "ann",
                "name": "Ann Lee",
                "division": {"key": "north"},
                "roles": ["SUPERVISOR"],
                "presence": "OFFLINE",
            },
        ),
        (
            "bob",
            {
                "key": "bob",
                "name": "Bob Ray",
                "division": {"key": "north"},
                "roles": ["AGENT"],
                "presence": "ON_QUEUE",
            },
        ),
        (
            "tom",
            {
                "key": "tom",
                "name": "Tom Wu",
                "division": {"key": "south"},
                "roles": ["AGENT"],
                "presence": "ON_QUEUE",
            },
        ),
        (
            "sam",
            {
                "key": "sam",
                "name": "Sam Admin",
                "division": {"key": "south"},
                "roles": ["ADMIN"],
                "presence": "OFFLINE",
            },
        ),
        (
            "pbx",
            {
                "key": "pbx",
                "name": "Telephony",
                "division": {"key": "north"},
                "roles": ["INTEGRATION"],
                "presence": "OFFLINE",
            },
        ),
    ],
)
async def test_viewer_is_the_user_named_by_the_token(api, user, expected):
    data = await api.data("{ viewer { id key name division { key } roles presence } }", user=user)
    assert data["viewer"] == {"id": api.ids[user], **expected}


# --- queues ----------------------------------------------------------------------------------


async def test_north_user_sees_only_north_queues(api):
    for user in ("ann", "bob"):
        page = await queues(api, user)
        assert sorted(n["key"] for n in page["nodes"]) == ["billing", "support"]
        assert page["totalCount"] == 2
        assert {e["node"]["division"]["key"] for e in page["edges"]} == {"north"}


async def test_south_user_sees_only_sales(api):
    for user in ("sue", "tom"):
        page = await queues(api, user)
        assert [edge["node"] for edge in page["edges"]] == [
            {"id": api.ids["sales"], "key": "sales", "name": "Sales", "division": {"key": "south"}}
        ]
        assert page["totalCount"] == 1
        assert page["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("user", ["root", "sam", "pbx"])
async def test_admin_and_integration_see_queues_of_every_division(api, user):
    page = await queues(api, user)
    assert sorted(n["key"] for n in page["nodes"]) == ["billing", "sales", "support"]
    assert page["totalCount"] == 3


async def test_queues_paginate_with_first_and_after(api):
    first = await queues(api, "root", first=1)
    assert len(first["edges"]) == 1
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["endCursor"] == first["edges"][0]["cursor"]

    second = await queues(api, "root", first=2, after=first["pageInfo"]["endCursor"])
    assert len(second["edges"]) == 2
    assert second["totalCount"] == 3
    assert second["pageInfo"]["hasNextPage"] is False
    assert second["pageInfo"]["endCursor"] == second["edges"][-1]["cursor"]

    keys = [e["node"]["key"] for e in first["edges"] + second["edges"]]
    assert sorted(keys) == ["billing", "sales", "support"]
    assert await all_queue_keys(api, "root", page_size=1) == keys


async def test_queues_page_after_the_last_cursor_is_empty(api):
    whole = await queues(api, "ann", first=5)
    rest = await queues(api, "ann", first=5, after=whole["pageInfo"]["endCursor"])
    assert rest["edges"] == [] and rest["nodes"] == []
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["totalCount"] == 2


async def test_queues_default_page_is_25(api, db):
    extra = [
        {"key": f"extra{n:02}", "name": f"Extra {n:02}", "division": "north"} for n in range(30)
    ]
    await load_directory(
        db,
        DirectoryFile.model_validate(
            {"divisions": [{"key": "north", "name": "North"}], "queues": extra}
        ),
    )
    page = await queues(api, "ann")
    assert len(page["edges"]) == 25
    assert page["totalCount"] == 32
    assert page["pageInfo"]["hasNextPage"] is True

    rest = await queues(api, "ann", after=page["pageInfo"]["endCursor"])
    assert len(rest["edges"]) == 7
    assert rest["pageInfo"]["hasNextPage"] is False
    keys = [n["key"] for n in page["nodes"] + rest["nodes"]]
    assert sorted(keys) == sorted(["billing", "support", *(q["key"] for q in extra)])

    # The south division still sees only its own queue.
    assert (await queues(api, "sue"))["totalCount"] == 1


async def test_queues_accept_first_100(api):
    page = await queues(api, "root", first=100)
    assert len(page["edges"]) == 3


@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_queues_first_out_of_range_is_bad_user_input(api, first):
    body = await api.raw(QUEUES, {"first": first}, user="root")
    assert_bad_user_input(body, "queues")


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        encode_cursor("interaction", iso(T0), 1),
        encode_cursor("queue", "Billing"),
        encode_cursor("queue", "Billing", "not a number"),
        encode_cursor("queue", 7, 1),
        encode_cursor("queue", "Billing", 10**30),
    ],
    ids=["garbage", "interaction-cursor", "short", "bad-id", "bad-name", "huge-id"],
)
async def test_queues_bad_after_cursor_is_bad_user_input(api, cursor):
    body = await api.raw(QUEUES, {"after": cursor}, user="root")
    assert_bad_user_input(body, "queues")


# --- queueActivity ---------------------------------------------------------------------------


async def test_queue_activity_of_a_queue_in_another_division_is_null(api):
    await api.create("sales")
    await api.create("billing")
    assert await activity(api, "sales", user="ann") is None
    assert await activity(api, "sales", user="bob") is None
    assert await activity(api, "billing", user="sue") is None
    assert await activity(api, "support", user="tom") is None


async def test_queue_activity_for_admin_and_integration_covers_every_division(api):
    waiting = await api.create("sales")
    for user in ("root", "pbx"):
        found = await activity(api, "sales", user=user)
        assert found["queue"] == {"id": api.ids["sales"], "key": "sales"}
        assert [i["id"] for i in found["waiting"]] == [waiting]


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_queue_activity_with_a_malformed_id_is_bad_user_input(api, bad_id):
    body = await api.raw(ACTIVITY, {"id": bad_id}, user="ann")
    assert_bad_user_input(body, "queueActivity")


async def test_queue_activity_with_an_id_naming_no_queue_is_null(api):
    an_interaction = await api.create("billing")
    for other in (api.ids["ann"], api.ids["north"], an_interaction, encode_id("Queue", 999999)):
        assert await activity(api, other, user="root") is None, other


async def test_queue_activity_lists_waiting_and_interacting_oldest_first(api):
    first = await api.create("billing")
    second = await api.create("billing")
    ended = await api.create("billing")
    fourth = await api.create("billing")
    fifth = await api.create("billing")
    elsewhere = await api.create("support")
    await api.connect(second, "bob")
    await api.connect(ended, "dina")
    await api.end(ended)
    await api.connect(fourth, "dina")
    await api.connect(elsewhere, "eli")

    found = await activity(api, "billing")
    assert found["queue"]["key"] == "billing"
    assert [i["id"] for i in found["waiting"]] == [first, fifth]
    assert {i["state"] for i in found["waiting"]} == {"WAITING"}
    assert [i["id"] for i in found["interacting"]] == [second, fourth]
    assert {i["state"] for i in found["interacting"]} == {"CONNECTED"}
    assert found["waitingCount"] == 2
    assert found["interactingCount"] == 2


async def test_queue_activity_orders_by_start_time_then_id(api, db):
    a, b, c, d = [await api.create("billing") for _ in range(4)]
    # c started first; a, b and d share one start time and fall back to creation (id) order.
    await set_started_at(db, a, T0 + timedelta(minutes=5))
    await set_started_at(db, b, T0 + timedelta(minutes=5))
    await set_started_at(db, c, T0)
    await set_started_at(db, d, T0 + timedelta(minutes=5))
    found = await activity(api, "billing")
    assert [i["id"] for i in found["waiting"]] == [c, a, b, d]
    assert found["waiting"][0]["startedAt"].startswith("2024-05-01T09:00:00")

    for interaction_id in (a, b, c, d):
        await api.connect(interaction_id, "bob")
    found = await activity(api, "billing")
    assert found["waiting"] == []
    assert [i["id"] for i in found["interacting"]] == [c, a, b, d]
    assert (found["waitingCount"], found["interactingCount"]) == (0, 4)


async def test_queue_activity_of_an_empty_queue(api):
    found = await activity(api, "support")
    assert found["waiting"] == [] and found["interacting"] == []
    assert (found["waitingCount"], found["interactingCount"]) == (0, 0)
    # eli, the only member of support, is OFFLINE.
    assert found["onQueueAgents"] == [] and found["onQueueAgentCount"] == 0
    assert found["asOf"]


async def test_on_queue_agents_are_members_with_presence_on_queue(api):
    found = await activity(api, "billing")
    # bob and dina are the ON_QUEUE members; tom is ON_QUEUE but in sales only; ann is no member.
    assert sorted(a["agent"]["key"] for a in found["onQueueAgents"]) == ["bob", "dina"]
    assert {a["agent"]["presence"] for a in found["onQueueAgents"]} == {"ON_QUEUE"}
    assert found["onQueueAgentCount"] == 2

    sales = await activity(api, "sales", user="sue")
    assert [a["agent"]["key"] for a in sales["onQueueAgents"]] == ["tom"]
    assert sales["onQueueAgentCount"] == 1


async def test_queue_agent_interactions_are_that_agents_in_progress_interactions(api):
    in_billing = await api.create("billing")
    in_support = await api.create("support")
    ended = await api.create("billing")
    left = await api.create("billing")
    untouched = await api.create("billing")
    for interaction_id in (in_billing, in_support, ended, left):
        await api.connect(interaction_id, "bob")
    await api.end(ended)
    await api.disconnect(left, "bob")

    found = await activity(api, "billing")
    by_agent = {a["agent"]["key"]: a["interactions"] for a in found["onQueueAgents"]}
    assert sorted(i["id"] for i in by_agent["bob"]) == sorted([in_billing, in_support])
    assert {i["state"] for i in by_agent["bob"]} == {"CONNECTED"}
    assert by_agent["dina"] == []
    assert untouched in [i["id"] for i in found["waiting"]]
    assert left in [i["id"] for i in found["waiting"]]


# --- interactions ----------------------------------------------------------------------------


async def test_interactions_are_newest_first(api, db):
    a, b, c, d = [await api.create("billing") for _ in range(4)]
    await set_started_at(db, a, T0 + timedelta(hours=2))
    await set_started_at(db, b, T0)
    await set_started_at(db, c, T0 + timedelta(hours=3))
    await set_started_at(db, d, T0 + timedelta(hours=1))
    page = await interactions(api)
    assert [n["id"] for n in page["nodes"]] == [c, a, d, b]
    assert [e["node"]["id"] for e in page["edges"]] == [c, a, d, b]
    assert page["totalCount"] == 4


async def test_interactions_newest_first_without_touching_start_times(api):
    created = [await api.create("support") for _ in range(3)]
    assert await interaction_ids(api) == list(reversed(created))


async def test_interactions_filter_by_queue(api):
    billing = [await api.create("billing") for _ in range(2)]
    support = await api.create("support")
    sales = await api.create("sales")
    assert sorted(await interaction_ids(api, filter={"queueIds": [api.ids["billing"]]})) == sorted(
        billing
    )
    both = await interaction_ids(
        api, user="root", filter={"queueIds": [api.ids["support"], api.ids["sales"]]}
    )
    assert sorted(both) == sorted([support, sales])
    assert await interaction_ids(api, filter={"queueIds": []}) == []
    assert (await interactions(api, filter={"queueIds": [api.ids["billing"]]}))["totalCount"] == 2


async def test_interactions_filter_by_agent(api):
    bobs = await api.create("billing")
    dinas = await api.create("billing")
    shared = await api.create("support")
    nobody = await api.create("billing")
    await api.connect(bobs, "bob")
    await api.connect(dinas, "dina")
    await api.connect(shared, "bob")
    await api.connect(shared, "dina")
    assert sorted(await interaction_ids(api, filter={"agentIds": [api.ids["bob"]]})) == sorted(
        [bobs, shared]
    )
    assert sorted(
        await interaction_ids(api, filter={"agentIds": [api.ids["bob"], api.ids["dina"]]})
    ) == sorted([bobs, dinas, shared])
    assert await interaction_ids(api, filter={"agentIds": [api.ids["eli"]]}) == []
    assert nobody in await interaction_ids(api)


async def test_interactions_filter_by_media_type(api):
    voice = await api.create("billing", media="VOICE")
    chat = await api.create("billing", media="CHAT")
    sms = await api.create("support", media="SMS")
    await api.create("support", media="EMAIL")
    assert await interaction_ids(api, filter={"mediaTypes": ["VOICE"]}) == [voice]
    assert sorted(await interaction_ids(api, filter={"mediaTypes": ["CHAT", "SMS"]})) == sorted(
        [chat, sms]
    )
    assert await interaction_ids(api, filter={"mediaTypes": ["CALLBACK"]}) == []


async def test_interactions_filter_by_state(api):
    waiting = await api.create("billing")
    connected = await api.create("billing")
    ended = await api.create("billing")
    await api.connect(connected, "bob")
    await api.end(ended)
    assert await interaction_ids(api, filter={"states": ["WAITING"]}) == [waiting]
    assert await interaction_ids(api, filter={"states": ["CONNECTED"]}) == [connected]
    assert await interaction_ids(api, filter={"states": ["ENDED"]}) == [ended]
    assert sorted(await interaction_ids(api, filter={"states": ["WAITING", "ENDED"]})) == sorted(
        [waiting, ended]
    )


async def test_interactions_filter_by_start_time(api, db):
    early, middle, late = [await api.create("billing") for _ in range(3)]
    await set_started_at(db, early, T0)
    await set_started_at(db, middle, T0 + timedelta(hours=1))
    await set_started_at(db, late, T0 + timedelta(hours=2))

    def half_past(hours: int) -> str:
        return iso(T0 + timedelta(hours=hours, minutes=30))

    assert await interaction_ids(api, filter={"startedAfter": half_past(0)}) == [late, middle]
    assert await interaction_ids(api, filter={"startedBefore": half_past(1)}) == [middle, early]
    assert await interaction_ids(
        api, filter={"startedAfter": half_past(0), "startedBefore": half_past(1)}
    ) == [middle]
    assert await interaction_ids(api, filter={"startedAfter": half_past(2)}) == []
    # Another offset names the same instant: 10:30+01:00 is 09:30 UTC.
    assert await interaction_ids(api, filter={"startedAfter": "2024-05-01T10:30:00+01:00"}) == [
        late,
        middle,
    ]


async def test_interactions_filters_combine(api):
    target = await api.create("billing", media="CHAT")
    await api.create("billing", media="VOICE")
    other_queue = await api.create("support", media="CHAT")
    await api.connect(target, "bob")
    await api.connect(other_queue, "bob")
    found = await interactions(
        api,
        filter={
            "queueIds": [api.ids["billing"]],
            "mediaTypes": ["CHAT"],
            "agentIds": [api.ids["bob"]],
            "states": ["CONNECTED"],
        },
    )
    assert [n["id"] for n in found["nodes"]] == [target]
    assert found["totalCount"] == 1


async def test_interactions_filter_with_malformed_id_is_bad_user_input(api):
    await api.create("billing")
    for filter in ({"queueIds": ["garbage"]}, {"agentIds": [api.ids["bob"], "garbage"]}):
        body = await api.raw(INTERACTIONS, {"filter": filter}, user="ann")
        assert_bad_user_input(body, "interactions")


async def test_interactions_relay_pagination(api):
    created = [await api.create("billing") for _ in range(7)]
    newest_first = list(reversed(created))

    seen, after, pages = [], None, []
    while True:
        page = await interactions(api, first=3, after=after)
        pages.append(page)
        assert page["totalCount"] == 7
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 5, "pagination does not end"

    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert pages[0]["pageInfo"]["hasPreviousPage"] is False
    assert seen == newest_first


async def test_interactions_pagination_through_equal_start_times(api, db):
    created = [await api.create("billing") for _ in range(7)]
    for interaction_id in created:
        await set_started_at(db, interaction_id, T0)
    seen, after = [], None
    for _ in range(3):
        page = await interactions(api, first=3, after=after)
        seen += [node["id"] for node in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
    assert page["pageInfo"]["hasNextPage"] is False
    assert sorted(seen) == sorted(created)
    assert len(seen) == 7


async def test_interactions_pagination_keeps_the_filter(api):
    billing = [await api.create("billing") for _ in range(4)]
    for _ in range(3):
        await api.create("support")
    flt = {"queueIds": [api.ids["billing"]]}
    first = await interactions(api, filter=flt, first=3)
    rest = await interactions(api, filter=flt, first=3, after=first["pageInfo"]["endCursor"])
    assert first["totalCount"] == rest["totalCount"] == 4
    assert [n["id"] for n in first["nodes"] + rest["nodes"]] == list(reversed(billing))
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_interactions_default_page_is_25(api):
    created = [await api.create("billing") for _ in range(26)]
    page = await interactions(api)
    assert len(page["edges"]) == 25
    assert page["totalCount"] == 26
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await interactions(api, after=page["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest["nodes"]] == [created[0]]
    assert rest["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("first", [101, -1])
async def test_interactions_first_out_of_range_is_bad_user_input(api, first):
    await api.create("billing")
    body = await api.raw(INTERACTIONS, {"first": first}, user="ann")
    assert_bad_user_input(body, "interactions")


async def test_interactions_accept_first_100(api):
    created = await api.create("billing")
    assert await interaction_ids(api, first=100) == [created]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        encode_cursor("queue", "Billing", 1),
        encode_cursor("interaction", "not a time", 1),
        encode_cursor("interaction", iso(T0), "not a number"),
        encode_cursor("interaction", "2024-05-01T09:00:00", 1),  # no offset
        encode_cursor("interaction", iso(T0)),
        encode_cursor("interaction", iso(T0), 10**30),
    ],
    ids=[
        "garbage",
        "empty",
        "queue-cursor",
        "bad-time",
        "bad-id",
        "naive-time",
        "short",
        "huge-id",
    ],
)
async def test_interactions_bad_after_cursor_is_bad_user_input(api, cursor):
    await api.create("billing")
    body = await api.raw(INTERACTIONS, {"after": cursor}, user="ann")
    assert_bad_user_input(body, "interactions")


async def test_interactions_list_only_visible_ones(api):
    billing = await api.create("billing")
    sales = await api.create("sales")
    assert await interaction_ids(api, user="ann") == [billing]
    assert (await interactions(api, user="ann"))["totalCount"] == 1
    assert await interaction_ids(api, user="sue") == [sales]
    assert await interaction_ids(api, user="tom") == [sales]
    for user in ("root", "sam", "pbx"):
        assert await interaction_ids(api, user=user) == [sales, billing], user


async def test_interaction_in_another_division_becomes_visible_through_a_north_agent(api):
    sales = await api.create("sales")
    await api.connect(sales, "tom")

    # Before: nothing of it reaches the north supervisor.
    assert await interaction(api, sales, user="carl") is None
    assert await node(api, sales, user="carl") is None
    assert await interaction_ids(api, user="carl") == []
    assert await interaction_ids(api, user="carl", filter={"queueIds": [api.ids["sales"]]}) == []
    assert await node(api, api.ids["tom"], user="carl") is None

    await api.connect(sales, "bob")
    found = await interaction(api, sales, user="carl")
    assert found["id"] == sales
    assert found["queue"] == {"key": "sales"}
    assert [a["user"]["key"] for a in found["agents"]] == ["tom", "bob"]
    assert (await node(api, sales, user="carl"))["__typename"] == "Interaction"
    assert await interaction_ids(api, user="carl") == [sales]
    # Users on a visible interaction are visible with it.
    assert (await node(api, api.ids["tom"], user="carl"))["key"] == "tom"
    # Its participants too.
    customer = (await participant_ids(api, sales))["CUSTOMER"]
    assert (await node(api, customer, user="carl"))["purpose"] == "CUSTOMER"

    # Visible through an agent who was connected earlier, too.
    await api.disconnect(sales, "bob")
    assert (await interaction(api, sales, user="carl"))["id"] == sales
    assert await interaction_ids(api, user="carl") == [sales]
    await api.end(sales)
    assert (await interaction(api, sales, user="carl"))["state"] == "ENDED"

    # The south side keeps seeing it; the queue itself stays out of the north's queue lists.
    assert (await interaction(api, sales, user="sue"))["id"] == sales
    assert sorted(n["key"] for n in (await queues(api, "carl"))["nodes"]) == ["billing", "support"]


async def test_interaction_in_north_queue_is_visible_to_south_through_a_south_agent(api):
    billing = await api.create("billing")
    assert await interaction(api, billing, user="sue") is None
    await api.connect(billing, "tom")
    assert (await interaction(api, billing, user="sue"))["queue"] == {"key": "billing"}
    assert await interaction_ids(api, user="sue") == [billing]


# --- interaction(id) ---------------------------------------------------------------------------


async def test_interaction_by_id(api):
    created = await api.create("support", media="CHAT", customer="Chris Client")
    found = await interaction(api, created)
    assert found["id"] == created
    assert (found["mediaType"], found["direction"], found["state"]) == (
        "CHAT",
        "INBOUND",
        "WAITING",
    )
    assert found["queue"] == {"key": "support"}
    assert found["startedAt"] and found["endedAt"] is None
    assert [(p["purpose"], p["name"], p["user"]) for p in found["participants"]] == [
        ("CUSTOMER", "Chris Client", None)
    ]
    assert found["agents"] == []


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_interaction_with_a_malformed_id_is_bad_user_input(api, bad_id):
    body = await api.raw(INTERACTION, {"id": bad_id}, user="ann")
    assert_bad_user_input(body, "interaction")


async def test_interaction_with_an_id_naming_no_interaction_is_null(api):
    created = await api.create("billing")
    customer = (await participant_ids(api, created))["CUSTOMER"]
    for other in (
        api.ids["billing"],
        api.ids["bob"],
        api.ids["north"],
        customer,
        encode_id("Interaction", 999999),
    ):
        assert await interaction(api, other, user="root") is None, other


async def test_interaction_not_visible_is_null(api):
    billing = await api.create("billing")
    sales = await api.create("sales")
    assert await interaction(api, sales, user="ann") is None
    assert await interaction(api, sales, user="bob") is None
    assert await interaction(api, billing, user="sue") is None
    assert await interaction(api, billing, user="tom") is None
    assert (await interaction(api, sales, user="root"))["id"] == sales


# --- node(id) --------------------------------------------------------------------------------


async def test_node_fetches_every_node_type(api):
    created = await api.create("billing")
    await api.connect(created, "bob")
    started = await api.start("ann", created, "bob")
    assert started["errors"] == [], started
    session_id = started["session"]["id"]
    participants = await participant_ids(api, created)

    expected = {
        api.ids["north"]: {"__typename": "Division", "key": "north"},
        api.ids["bob"]: {"__typename": "User", "key": "bob"},
        api.ids["billing"]: {"__typename": "Queue", "key": "billing"},
        created: {"__typename": "Interaction", "interactionState": "CONNECTED"},
        participants["CUSTOMER"]: {
            "__typename": "Participant",
            "purpose": "CUSTOMER",
            "name": "Casey Customer",
        },
        participants["bob"]: {"__typename": "Participant", "purpose": "AGENT", "name": "Bob Ray"},
        participants["ann"]: {"__typename": "Participant", "purpose": "MONITOR", "name": "Ann Lee"},
        session_id: {
            "__typename": "MonitoringSession",
            "sessionState": "ACTIVE",
            "monitor": {"key": "ann"},
            "agent": {"key": "bob"},
        },
    }
    for node_id, fields in expected.items():
        assert await node(api, node_id, user="ann") == {"id": node_id, **fields}


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_node_with_a_malformed_id_is_bad_user_input(api, bad_id):
    body = await api.raw(NODE, {"id": bad_id}, user="ann")
    assert_bad_user_input(body, "node")


@pytest.mark.parametrize(
    "type_name", ["Division", "User", "Queue", "Interaction", "Participant", "MonitoringSession"]
)
async def test_node_naming_nothing_is_null(api, type_name):
    assert await node(api, encode_id(type_name, 999999), user="root") is None


async def test_node_not_visible_is_null_for_every_type(api):
    sales = await api.create("sales")
    await api.connect(sales, "tom")
    started = await api.start("sue", sales, "tom")
    assert started["errors"] == [], started
    participants = await participant_ids(api, sales)
    south_things = {
        "Division": api.ids["south"],
        "User": api.ids["tom"],
        "Queue": api.ids["sales"],
        "Interaction": sales,
        "Participant": participants["CUSTOMER"],
        "AgentParticipant": participants["tom"],
        "MonitoringSession": started["session"]["id"],
    }
    for kind, node_id in south_things.items():
        assert await node(api, node_id, user="ann") is None, kind
        assert await node(api, node_id, user="bob") is None, kind
        assert (await node(api, node_id, user="sue"))["id"] == node_id, kind
        assert (await node(api, node_id, user="root"))["id"] == node_id, kind


# --- participants ----------------------------------------------------------------------------


async def test_participants_are_customer_first_then_agents_then_monitor(api):
    created = await api.create("billing", customer="Casey Customer")
    await api.connect(created, "dina")
    await api.connect(created, "bob")
    started = await api.start("ann", created, "bob")
    assert started["errors"] == [], started

    found = await interaction(api, created)
    assert [
        (p["purpose"], p["name"], p["user"] and p["user"]["key"], p["state"])
        for p in found["participants"]
    ] == [
        ("CUSTOMER", "Casey Customer", None, "CONNECTED"),
        ("AGENT", "Dina Moss", "dina", "CONNECTED"),
        ("AGENT", "Bob Ray", "bob", "CONNECTED"),
        ("MONITOR", "Ann Lee", "ann", "CONNECTED"),
    ]
    times = [p["connectedAt"] for p in found["participants"]]
    assert [datetime.fromisoformat(t) for t in times] == sorted(
        datetime.fromisoformat(t) for t in times
    )
    assert [(a["purpose"], a["user"]["key"]) for a in found["agents"]] == [
        ("AGENT", "dina"),
        ("AGENT", "bob"),
    ]


async def test_agents_include_disconnected_agents(api):
    created = await api.create("billing")
    await api.connect(created, "bob")
    await api.connect(created, "dina")
    await api.disconnect(created, "bob")
    found = await interaction(api, created)
    agents = {a["user"]["key"]: a for a in found["agents"]}
    assert set(agents) == {"bob", "dina"}
    assert agents["bob"]["state"] == "DISCONNECTED" and agents["bob"]["disconnectedAt"]
    assert agents["dina"]["state"] == "CONNECTED" and agents["dina"]["disconnectedAt"] is None
    assert {a["purpose"] for a in found["agents"]} == {"AGENT"}


async def test_customer_stays_connected_until_the_interaction_ends(api):
    created = await api.create("billing")

    async def customer() -> dict:
        found = await interaction(api, created)
        assert found["participants"][0]["purpose"] == "CUSTOMER"
        return found["participants"][0]

    assert (await customer())["state"] == "CONNECTED"
    await api.connect(created, "bob")
    assert (await customer())["state"] == "CONNECTED"
    await api.disconnect(created, "bob")
    assert (await customer())["state"] == "CONNECTED"
    assert (await customer())["disconnectedAt"] is None
    await api.end(created)
    ended = await customer()
    assert ended["state"] == "DISCONNECTED"
    assert ended["disconnectedAt"] is not None


# --- interactionPanel ------------------------------------------------------------------------


async def test_agent_panel_lists_the_interactions_they_are_connected_to(api):
    first = await api.create("billing")
    second = await api.create("support")
    await api.create("billing")  # waiting: nobody's panel
    await api.connect(first, "bob")
    await api.connect(second, "bob")

    entries = await panel(api, "bob")
    assert len(entries) == 2
    assert sorted(e["interaction"]["id"] for e in entries) == sorted([first, second])
    assert {(e["monitoring"], e["session"] is None) for e in entries} == {(False, True)}
    assert await panel(api, "dina") == []
    assert await panel(api, "ann") == []


async def test_ended_and_left_interactions_leave_the_panel(api):
    first = await api.create("billing")
    second = await api.create("billing")
    await api.connect(first, "bob")
    await api.connect(second, "bob")
    await api.end(first)
    assert [e["interaction"]["id"] for e in await panel(api, "bob")] == [second]
    await api.disconnect(second, "bob")
    assert await panel(api, "bob") == []


async def test_supervisor_panel_shows_what_they_monitor(api):
    created = await api.create("billing")
    await api.connect(created, "bob")
    started = await api.start("ann", created, "bob")
    assert started["errors"] == [], started
    assert await panel(api, "ann") == [
        {
            "interaction": {"id": created, "state": "CONNECTED"},
            "monitoring": True,
            "session": {"id": started["session"]["id"], "state": "ACTIVE"},
        }
    ]
    assert await panel(api, "bob") == [
        {"interaction": {"id": created, "state": "CONNECTED"}, "monitoring": False, "session": None}
    ]
