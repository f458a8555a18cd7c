"""monitoringSessions, the monitoring audit trail: newest first (startedAt, then id), Relay
pagination as `interactions`, every filter alone and together, each session's mode and
modeHistory, and visibility within the silent rule; on both databases."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import models
from app.graphql.ids import decode_node_id, encode_cursor
from tests.graphql.test_statement_counts import statements_for

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

SESSIONS = """query($filter: MonitoringSessionFilter, $first: Int, $after: String) {
  monitoringSessions(filter: $filter, first: $first, after: $after) {
    totalCount
    edges { cursor node { id } }
    nodes {
      id state mode startedAt endedAt endReason
      modeHistory { mode at }
      monitor { key } agent { key }
      interaction { id mediaType queue { key } }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


# --- helpers ---------------------------------------------------------------------------------


def error_codes(body: dict) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]


def assert_bad_user_input(body: dict) -> None:
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body.get("data") is None, body  # the connection is non-null: no data at all


async def audit(api, user: str = "root", **args) -> dict:
    return (await api.data(SESSIONS, args, user=user))["monitoringSessions"]


async def audit_ids(api, user: str = "root", **args) -> list[str]:
    page = await audit(api, user, **args)
    ids = [node["id"] for node in page["nodes"]]
    assert [edge["node"]["id"] for edge in page["edges"]] == ids
    return ids


def pk(global_id: str) -> int:
    return decode_node_id(global_id)[1]


async def set_session_started_at(db, session_id: str, moment: datetime) -> None:
    """Put a session at a chosen start time (its interaction keeps its own)."""
    async with db.transaction() as session:
        await session.exec(
            sa.update(models.MonitoringSession)
            .where(models.MonitoringSession.id == pk(session_id))
            .values(started_at=moment)
        )


async def session_on(
    api, queue="billing", media="VOICE", agent="bob", supervisor="ann", mode=None
) -> tuple[str, str]:
    """A new interaction of `queue` with `agent` connected, monitored by `supervisor`."""
    interaction = await api.create(queue=queue, media=media)
    await api.connect(interaction, agent)
    started = await api.start(supervisor, interaction, mode=mode)
    assert started["errors"] == [], started
    return interaction, started["session"]["id"]


async def switch(api, user: str, session: str, mode: str) -> None:
    changed = await api.change_mode(user, session, mode)
    assert changed["errors"] == [], changed
    assert changed["session"]["mode"] == mode


@dataclass
class Floor:
    """Six sessions, started in this order (s1 oldest):

    s1 billing VOICE, bob monitored by ann, MONITOR only, ACTIVE
    s2 billing VOICE, dina by carl, MONITOR then COACH, ACTIVE
    s3 support CHAT, eli by ann, started BARGE, stopped: ENDED (STOPPED)
    s4 sales (south) VOICE, tom by sue, MONITOR only, ACTIVE
    s5 billing VOICE, bob by root, COACH then MONITOR, interaction ended: ENDED
    s6 support CHAT, eli by root, MONITOR, taken over by root: ENDED (TAKEN_OVER)
    """

    s1: str
    s2: str
    s3: str
    s4: str
    s5: str
    s6: str
    i5: str

    @property
    def newest_first(self) -> list[str]:
        return [self.s6, self.s5, self.s4, self.s3, self.s2, self.s1]


async def floor(api) -> Floor:
    _, s1 = await session_on(api, agent="bob", supervisor="ann")
    _, s2 = await session_on(api, agent="dina", supervisor="carl")
    await switch(api, "carl", s2, "COACH")
    _, s3 = await session_on(api, "support", "CHAT", agent="eli", supervisor="ann", mode="BARGE")
    assert (await api.stop("ann", s3))["errors"] == []
    _, s4 = await session_on(api, "sales", agent="tom", supervisor="sue")
    i5, s5 = await session_on(api, agent="bob", supervisor="root", mode="COACH")
    await switch(api, "root", s5, "MONITOR")
    assert (await api.end(i5))["errors"] == []
    _, s6 = await session_on(api, "support", "CHAT", agent="eli", supervisor="root")
    taken = await api.take_over("root", s6)
    assert taken["errors"] == [] and taken["session"]["endReason"] == "TAKEN_OVER", taken
    return Floor(s1, s2, s3, s4, s5, s6, i5)


# --- order -----------------------------------------------------------------------------------


async def test_newest_first_by_start_time(api):
    f = await floor(api)
    page = await audit(api)
    assert [n["id"] for n in page["nodes"]] == f.newest_first
    assert [e["node"]["id"] for e in page["edges"]] == f.newest_first
    assert page["totalCount"] == 6
    started = [datetime.fromisoformat(n["startedAt"]) for n in page["nodes"]]
    assert started == sorted(started, reverse=True)


async def test_order_is_the_sessions_start_not_the_interactions(api, db):
    """Sessions started at other times than their creation order come in startedAt order;
    their interactions keep their own (creation) order, which must not decide."""
    f = await floor(api)
    hours = {f.s1: 3, f.s2: 0, f.s3: 5, f.s4: 1, f.s5: 4, f.s6: 2}
    for session, h in hours.items():
        await set_session_started_at(db, session, T0 + timedelta(hours=h))
    page = await audit(api)
    assert [n["id"] for n in page["nodes"]] == [f.s3, f.s5, f.s1, f.s6, f.s4, f.s2]
    assert datetime.fromisoformat(page["nodes"][0]["startedAt"]) == T0 + timedelta(hours=5)


async def test_equal_start_times_are_ordered_by_id_newest_first(api, db):
    f = await floor(api)
    for session in (f.s2, f.s4, f.s5):
        await set_session_started_at(db, session, T0)
    for session in (f.s1, f.s3, f.s6):
        await set_session_started_at(db, session, T0 + timedelta(hours=1))
    expected = sorted([f.s1, f.s3, f.s6], key=pk, reverse=True) + sorted(
        [f.s2, f.s4, f.s5], key=pk, reverse=True
    )
    assert await audit_ids(api) == expected
    # And page by page through the ties: no session lost or repeated at a page boundary.
    seen, after = [], None
    for _ in range(3):
        page = await audit(api, first=2, after=after)
        seen += [n["id"] for n in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    assert page["pageInfo"]["hasNextPage"] is False


# --- pagination ------------------------------------------------------------------------------


async def test_relay_pagination(api):
    sessions = [(await session_on(api))[1] for _ in range(7)]
    newest_first = list(reversed(sessions))
    seen, after, pages = [], None, []
    while True:
        page = await audit(api, "ann", first=3, after=after)
        pages.append(page)
        assert page["totalCount"] == 7
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 5, "pagination does not end"
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert seen == newest_first
    # Every edge has its own cursor, and the cursor of any edge continues right after it.
    cursors = [edge["cursor"] for p in pages for edge in p["edges"]]
    assert len(set(cursors)) == 7
    rest = await audit_ids(api, "ann", first=2, after=cursors[3])
    assert rest == newest_first[4:6]


async def test_pagination_keeps_the_filter(api):
    bobs = []
    for i in range(5):
        bobs.append((await session_on(api, agent="bob"))[1])
        await session_on(api, agent="dina", supervisor="carl")
    flt = {"agentIds": [api.ids["bob"]]}
    first = await audit(api, "ann", filter=flt, first=3)
    rest = await audit(api, "ann", filter=flt, first=3, after=first["pageInfo"]["endCursor"])
    assert first["totalCount"] == rest["totalCount"] == 5
    assert [n["id"] for n in first["nodes"] + rest["nodes"]] == list(reversed(bobs))
    assert rest["pageInfo"]["hasNextPage"] is False
    assert {n["agent"]["key"] for n in first["nodes"] + rest["nodes"]} == {"bob"}


async def test_default_page_is_25(api):
    sessions = [(await session_on(api, agent=["bob", "dina"][i % 2]))[1] for i in range(26)]
    page = await audit(api, "ann")
    assert len(page["edges"]) == 25
    assert page["totalCount"] == 26
    assert page["pageInfo"]["hasNextPage"] is True
    assert [n["id"] for n in page["nodes"]] == list(reversed(sessions[1:]))
    rest = await audit(api, "ann", after=page["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest["nodes"]] == [sessions[0]]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["totalCount"] == 26


async def test_first_100_is_accepted(api):
    _, session = await session_on(api)
    page = await audit(api, "ann", first=100)
    assert [n["id"] for n in page["nodes"]] == [session]
    assert page["pageInfo"]["hasNextPage"] is False


async def test_first_0_is_an_empty_page_that_still_counts(api):
    f = await floor(api)
    page = await audit(api, first=0)
    assert page["edges"] == [] and page["nodes"] == []
    assert page["totalCount"] == len(f.newest_first)
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["startCursor"] is None and page["pageInfo"]["endCursor"] is None


@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_first_out_of_range_is_bad_user_input(api, first):
    await session_on(api)
    assert_bad_user_input(await api.raw(SESSIONS, {"first": first}, user="ann"))


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        encode_cursor("interaction", T0.isoformat(), 1),  # another list's cursor
        encode_cursor("queue", "Billing", 1),
        encode_cursor("session", "not a time", 1),
        encode_cursor("session", T0.isoformat(), "not a number"),
        encode_cursor("session", "2024-05-01T09:00:00", 1),  # no offset
        encode_cursor("session", T0.isoformat()),
        encode_cursor("session", T0.isoformat(), 10**30),
    ],
    ids=[
        "garbage",
        "empty",
        "interaction-cursor",
        "queue-cursor",
        "bad-time",
        "bad-id",
        "naive-time",
        "short",
        "huge-id",
    ],
)
async def test_an_after_that_is_not_our_cursor_is_bad_user_input(api, cursor):
    await session_on(api)
    assert_bad_user_input(await api.raw(SESSIONS, {"after": cursor}, user="ann"))


async def test_an_interactions_cursor_is_refused_by_the_audit(api):
    """A real cursor of `interactions`, not a made-up one: still not a session cursor."""
    await session_on(api)
    page = await api.data("{ interactions { edges { cursor } } }", user="ann")
    cursor = page["interactions"]["edges"][0]["cursor"]
    assert_bad_user_input(await api.raw(SESSIONS, {"after": cursor}, user="ann"))


# --- filters ---------------------------------------------------------------------------------


async def assert_filter(api, f: Floor, flt: dict, expected: list[str], user="root") -> None:
    """The filter's sessions, newest first, with a totalCount to match."""
    page = await audit(api, user, filter=flt)
    order = {session: i for i, session in enumerate(f.newest_first)}
    assert [n["id"] for n in page["nodes"]] == sorted(expected, key=order.get), flt
    assert page["totalCount"] == len(expected), flt


async def test_filter_by_monitor(api):
    f = await floor(api)
    ids = api.ids
    await assert_filter(api, f, {"monitorIds": [ids["ann"]]}, [f.s1, f.s3])
    await assert_filter(api, f, {"monitorIds": [ids["root"]]}, [f.s5, f.s6])
    await assert_filter(api, f, {"monitorIds": [ids["ann"], ids["carl"]]}, [f.s1, f.s2, f.s3])
    await assert_filter(api, f, {"monitorIds": [ids["bob"]]}, [])  # monitors nothing
    await assert_filter(api, f, {"monitorIds": []}, [])


async def test_filter_by_agent(api):
    f = await floor(api)
    ids = api.ids
    await assert_filter(api, f, {"agentIds": [ids["bob"]]}, [f.s1, f.s5])
    await assert_filter(api, f, {"agentIds": [ids["eli"]]}, [f.s3, f.s6])
    await assert_filter(api, f, {"agentIds": [ids["tom"], ids["dina"]]}, [f.s2, f.s4])
    # root became the agent of s6's chat by taking it over; the session monitored eli.
    await assert_filter(api, f, {"agentIds": [ids["root"]]}, [])
    await assert_filter(api, f, {"agentIds": []}, [])


async def test_filter_by_queue(api):
    f = await floor(api)
    ids = api.ids
    await assert_filter(api, f, {"queueIds": [ids["billing"]]}, [f.s1, f.s2, f.s5])
    await assert_filter(api, f, {"queueIds": [ids["support"], ids["sales"]]}, [f.s3, f.s4, f.s6])
    await assert_filter(api, f, {"queueIds": []}, [])
    # Another division's queue: nothing that the viewer could not see anyway.
    await assert_filter(api, f, {"queueIds": [ids["sales"]]}, [], user="ann")
    await assert_filter(api, f, {"queueIds": [ids["sales"]]}, [f.s4], user="sue")


async def test_filter_by_mode_is_ever_in_any_of_these_modes(api):
    f = await floor(api)
    # s2 went MONITOR -> COACH and s5 COACH -> MONITOR: both were in both.
    await assert_filter(api, f, {"modes": ["MONITOR"]}, [f.s1, f.s2, f.s4, f.s5, f.s6])
    await assert_filter(api, f, {"modes": ["COACH"]}, [f.s2, f.s5])
    await assert_filter(api, f, {"modes": ["BARGE"]}, [f.s3])
    await assert_filter(api, f, {"modes": ["COACH", "BARGE"]}, [f.s2, f.s3, f.s5])
    await assert_filter(api, f, {"modes": ["MONITOR", "COACH", "BARGE"]}, f.newest_first)
    await assert_filter(api, f, {"modes": []}, [])


async def test_filter_by_mode_after_a_switch_matches_both_modes(api):
    _, session = await session_on(api)
    await switch(api, "ann", session, "COACH")
    assert await audit_ids(api, "ann", filter={"modes": ["MONITOR"]}) == [session]
    assert await audit_ids(api, "ann", filter={"modes": ["COACH"]}) == [session]
    assert await audit_ids(api, "ann", filter={"modes": ["BARGE"]}) == []


async def test_filter_by_state(api):
    f = await floor(api)
    await assert_filter(api, f, {"states": ["ACTIVE"]}, [f.s1, f.s2, f.s4])
    await assert_filter(api, f, {"states": ["ENDED"]}, [f.s3, f.s5, f.s6])
    await assert_filter(api, f, {"states": ["ACTIVE", "ENDED"]}, f.newest_first)
    await assert_filter(api, f, {"states": []}, [])


async def test_filter_by_start_time_after_inclusive_before_exclusive(api, db):
    f = await floor(api)
    for h, session in enumerate([f.s1, f.s2, f.s3, f.s4, f.s5, f.s6]):
        await set_session_started_at(db, session, T0 + timedelta(hours=h))

    def at(hours: float) -> str:
        return (T0 + timedelta(hours=hours)).isoformat()

    # startedAfter is inclusive: a session started exactly then is in.
    await assert_filter(api, f, {"startedAfter": at(2)}, [f.s3, f.s4, f.s5, f.s6])
    await assert_filter(api, f, {"startedAfter": at(2.5)}, [f.s4, f.s5, f.s6])
    # startedBefore is exclusive: a session started exactly then is out.
    await assert_filter(api, f, {"startedBefore": at(2)}, [f.s1, f.s2])
    await assert_filter(api, f, {"startedBefore": at(2.5)}, [f.s1, f.s2, f.s3])
    await assert_filter(api, f, {"startedAfter": at(1), "startedBefore": at(3)}, [f.s2, f.s3])
    await assert_filter(api, f, {"startedAfter": at(3), "startedBefore": at(3)}, [])
    await assert_filter(api, f, {"startedAfter": at(6)}, [])
    # Another offset names the same instant: 11:00+01:00 is 10:00 UTC, s2's start.
    await assert_filter(
        api, f, {"startedAfter": "2024-05-01T11:00:00+01:00"}, [f.s2, f.s3, f.s4, f.s5, f.s6]
    )


async def test_filters_combine(api):
    f = await floor(api)
    ids = api.ids
    supervisors = [ids["ann"], ids["carl"]]
    await assert_filter(
        api, f, {"monitorIds": supervisors, "modes": ["COACH"], "states": ["ACTIVE"]}, [f.s2]
    )
    await assert_filter(
        api, f, {"monitorIds": supervisors, "queueIds": [ids["billing"]]}, [f.s1, f.s2]
    )
    await assert_filter(
        api, f, {"agentIds": [ids["bob"]], "modes": ["COACH"], "states": ["ENDED"]}, [f.s5]
    )
    await assert_filter(
        api, f, {"agentIds": [ids["eli"]], "modes": ["MONITOR"]}, [f.s6]
    )  # s3 was BARGE only
    await assert_filter(
        api,
        f,
        {"queueIds": [ids["billing"]], "modes": ["MONITOR"], "states": ["ACTIVE"]},
        [f.s1, f.s2],
    )
    # Each condition on its own matches something; together they match nothing.
    await assert_filter(api, f, {"monitorIds": [ids["ann"]], "agentIds": [ids["dina"]]}, [])
    await assert_filter(api, f, {"queueIds": [ids["sales"]], "states": ["ENDED"]}, [])


async def test_combined_with_times(api, db):
    f = await floor(api)
    for h, session in enumerate([f.s1, f.s2, f.s3, f.s4, f.s5, f.s6]):
        await set_session_started_at(db, session, T0 + timedelta(hours=h))
    flt = {
        "agentIds": [api.ids["bob"], api.ids["eli"]],
        "startedAfter": (T0 + timedelta(hours=2)).isoformat(),
        "startedBefore": (T0 + timedelta(hours=5)).isoformat(),
    }
    await assert_filter(api, f, flt, [f.s3, f.s5])
    await assert_filter(api, f, {**flt, "states": ["ACTIVE"]}, [])


async def test_ids_of_another_type_match_nothing(api):
    f = await floor(api)
    ids = api.ids
    other = [ids["billing"], f.i5, f.s1, ids["north"]]
    await assert_filter(api, f, {"monitorIds": other}, [])
    await assert_filter(api, f, {"agentIds": other}, [])
    await assert_filter(api, f, {"queueIds": [ids["ann"], f.i5, f.s1, ids["north"]]}, [])
    # Beside ids of the right type, they drop out.
    await assert_filter(api, f, {"monitorIds": [ids["billing"], ids["ann"]]}, [f.s1, f.s3])
    await assert_filter(api, f, {"queueIds": [ids["bob"], ids["sales"]]}, [f.s4])


@pytest.mark.parametrize("field", ["monitorIds", "agentIds", "queueIds"])
async def test_a_malformed_id_in_a_filter_is_bad_user_input(api, field):
    await session_on(api)
    body = await api.raw(SESSIONS, {"filter": {field: [api.ids["ann"], "garbage"]}}, user="ann")
    assert_bad_user_input(body)


# --- mode and modeHistory --------------------------------------------------------------------


def history(node: dict) -> list[str]:
    return [change["mode"] for change in node["modeHistory"]]


async def test_each_node_has_its_mode_and_history_oldest_first(api):
    f = await floor(api)
    nodes = {n["id"]: n for n in (await audit(api))["nodes"]}
    expected = {
        f.s1: ("MONITOR", ["MONITOR"], "ACTIVE", None),
        f.s2: ("COACH", ["MONITOR", "COACH"], "ACTIVE", None),
        f.s3: ("BARGE", ["BARGE"], "ENDED", "STOPPED"),
        f.s4: ("MONITOR", ["MONITOR"], "ACTIVE", None),
        f.s5: ("MONITOR", ["COACH", "MONITOR"], "ENDED", "INTERACTION_ENDED"),
        f.s6: ("MONITOR", ["MONITOR"], "ENDED", "TAKEN_OVER"),
    }
    for session, (mode, modes, state, reason) in expected.items():
        node = nodes[session]
        assert (node["mode"], history(node), node["state"], node["endReason"]) == (
            mode,
            modes,
            state,
            reason,
        ), node
        # The starting mode is recorded at the start, and the current mode is the last one.
        times = [datetime.fromisoformat(c["at"]) for c in node["modeHistory"]]
        assert times[0] == datetime.fromisoformat(node["startedAt"]), node
        assert times == sorted(times), node
        assert node["modeHistory"][-1]["mode"] == node["mode"]
        if node["endedAt"] is not None:
            assert times[-1] <= datetime.fromisoformat(node["endedAt"])
    assert nodes[f.s3]["interaction"]["mediaType"] == "CHAT"
    assert (nodes[f.s6]["monitor"]["key"], nodes[f.s6]["agent"]["key"]) == ("root", "eli")


async def test_a_long_history_in_order_and_the_current_mode_again_records_nothing(api):
    _, session = await session_on(api)
    for mode in ("COACH", "BARGE", "MONITOR", "COACH"):
        await switch(api, "ann", session, mode)
    again = await api.change_mode("ann", session, "COACH")  # the current mode: a no-op
    assert again["errors"] == []
    (node,) = (await audit(api, "ann"))["nodes"]
    assert node["mode"] == "COACH"
    assert history(node) == ["MONITOR", "COACH", "BARGE", "MONITOR", "COACH"]
    times = [datetime.fromisoformat(c["at"]) for c in node["modeHistory"]]
    assert times == sorted(times)
    assert await audit_ids(api, "ann", filter={"modes": ["BARGE"]}) == [session]


# --- visibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user, expected",
    [
        ("root", ["s6", "s5", "s4", "s3", "s2", "s1"]),  # ADMIN: every division
        ("sam", ["s6", "s5", "s4", "s3", "s2", "s1"]),  # ADMIN of the south: all the same
        ("pbx", ["s6", "s5", "s4", "s3", "s2", "s1"]),  # INTEGRATION sees all
        ("ann", ["s6", "s5", "s3", "s2", "s1"]),  # north supervisors: north's sessions
        ("carl", ["s6", "s5", "s3", "s2", "s1"]),
        ("sue", ["s4"]),  # the south supervisor: none of north's
        # Agents: only the disclosed sessions of interactions they took part in.
        ("bob", ["s5"]),  # s5 was coached; s1 (bob's too) stayed silent
        ("dina", ["s2"]),  # coached once ann switched
        ("eli", ["s6", "s3"]),  # barged, and taken over
        ("tom", []),  # s4 stayed silent
    ],
)
async def test_each_viewer_sees_what_the_policy_lets_them(api, user, expected):
    f = await floor(api)
    wanted = [getattr(f, name) for name in expected]
    page = await audit(api, user)
    assert [n["id"] for n in page["nodes"]] == wanted
    assert page["totalCount"] == len(wanted)
    # No filter gets round it: the widest filter gives the same, and so does paging.
    widest = {"modes": ["MONITOR", "COACH", "BARGE"], "states": ["ACTIVE", "ENDED"]}
    assert await audit_ids(api, user, filter=widest) == wanted
    assert (await audit(api, user, filter=widest))["totalCount"] == len(wanted)
    paged, after = [], None
    for _ in range(len(wanted) + 1):
        one = await audit(api, user, first=1, after=after)
        paged += [n["id"] for n in one["nodes"]]
        if not one["pageInfo"]["hasNextPage"]:
            break
        after = one["pageInfo"]["endCursor"]
    assert paged == wanted


async def test_an_agent_filtering_on_themselves_still_sees_only_the_disclosed(api):
    f = await floor(api)
    bob = {"agentIds": [api.ids["bob"]]}
    page = await audit(api, "bob", filter=bob)
    assert [n["id"] for n in page["nodes"]] == [f.s5]
    assert page["totalCount"] == 1
    # bob's silent session s1 does not show through the mode filter either.
    assert await audit_ids(api, "bob", filter={**bob, "modes": ["MONITOR"]}) == [f.s5]
    assert await audit_ids(api, "bob", filter={"states": ["ACTIVE"]}) == []
    # dina's coached session is not bob's interaction: not his to see.
    assert await audit_ids(api, "bob", filter={"agentIds": [api.ids["dina"]]}) == []


async def test_a_supervisor_who_was_an_agent_of_the_interaction_sees_only_it_disclosed(api):
    """carl took the call before bob: ann's silent session on it is not for carl to see,
    even though carl is a supervisor; once ann coaches, it is."""
    interaction = await api.create()
    await api.connect(interaction, "carl")
    await api.connect(interaction, "bob")
    await api.disconnect(interaction, "carl")
    session = (await api.start("ann", interaction, "bob"))["session"]["id"]
    _, elsewhere = await session_on(api, agent="dina", supervisor="root")
    assert await audit_ids(api, "carl") == [elsewhere]
    assert (await audit(api, "carl"))["totalCount"] == 1
    await switch(api, "ann", session, "COACH")
    assert await audit_ids(api, "carl") == [elsewhere, session]
    assert (await audit(api, "carl"))["totalCount"] == 2


async def test_a_south_agent_makes_a_north_session_visible_to_the_south(api):
    """An interaction is visible where its queue or any agent is: sue sees ann's session on
    a billing call that tom took too, and nothing else of the north."""
    interaction = await api.create()
    await api.connect(interaction, "tom")
    await api.connect(interaction, "bob")
    started = await api.start("ann", interaction, "bob")
    assert started["errors"] == [], started
    await session_on(api, agent="dina", supervisor="carl")
    assert await audit_ids(api, "sue") == [started["session"]["id"]]
    # tom is an agent of it, and the session is silent: not for tom.
    assert await audit_ids(api, "tom") == []


# --- statement counts ------------------------------------------------------------------------

PAGE = """query($first: Int) {
  monitoringSessions(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id mode state
      modeHistory { mode at }
      monitor { name } agent { name }
      interaction { id participants { purpose user { name } } }
    } }
  }
}"""


async def populate(api, count: int) -> None:
    """`count` sessions coached on bob's calls (disclosed to him) and `count` silent ones on
    dina's, with some switches and ends among them."""
    for i in range(count):
        interaction, session = await session_on(
            api, agent="bob", supervisor=["ann", "carl"][i % 2], mode="COACH"
        )
        if i % 3 == 1:
            await switch(api, ["ann", "carl"][i % 2], session, "MONITOR")
        if i % 3 == 2:
            await api.end(interaction)
        await session_on(api, agent="dina", supervisor="root")


async def measure(api, db, page_size: int) -> dict[str, tuple[int, int]]:
    """Statements and transactions of a page of `page_size` for root (who sees every session)
    and for bob (who sees only the disclosed sessions of his own calls)."""
    sizes = {}
    for user in ("root", "bob"):
        page = (await api.data(PAGE, {"first": page_size}, user=user))["monitoringSessions"]
        sizes[user] = (len(page["edges"]), page["totalCount"])
    # root's page is `page_size` of all; bob's holds every coached session of his.
    assert sizes == {"root": (page_size, 2 * page_size), "bob": (page_size, page_size)}, sizes
    return {user: await statements_for(api, db, PAGE, {"first": page_size}, user) for user in sizes}


async def test_statement_counts_do_not_grow_with_the_page(api, db):
    await populate(api, 2)
    small = await measure(api, db, 2)
    await populate(api, 18)  # 18 more of each: the same query then returns pages of 20
    large = await measure(api, db, 20)
    assert small == large, f"pages of 2: {small}; pages of 20: {large}"
    assert all(statements <= 20 for statements, _ in large.values()), large
    # One to read the viewer, one snapshot for all the rest.
    assert all(transactions == 2 for _, transactions in large.values()), large
