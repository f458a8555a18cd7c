"""takeOverInteraction (contract addition modes.graphql): its rules in order, what a take
over changes in one go, and what everyone sees afterwards. Through GraphQL."""

import asyncio

import pytest

from app.graphql.ids import encode_id
from tests.events.test_change_feed import quiet
from tests.events.test_subscription import Subscriber
from tests.monitoring.test_modes import (
    add_users,
    entry,
    live_call,
    log_rows,
    monitorability,
    pk,
    refused,
    session_node,
)

# A north supervisor who may take over (no SUPERVISOR may by default).
TIA = entry("tia", permissions=["MONITOR", "COACH", "BARGE", "TAKE_OVER"])

INTERACTION = """query($id: ID!) { interaction(id: $id) {
  state endedAt
  participants { purpose state user { key } }
  monitoringSessions { id state endReason monitor { key } }
  activeMonitoring { id }
} }"""


@pytest.fixture
async def tia(api, db) -> str:
    await add_users(db, api, TIA)
    return "tia"


async def monitored(api, supervisor: str, media: str = "CHAT", mode=None) -> tuple[str, str]:
    interaction = await live_call(api, media=media)
    result = await api.start(supervisor, interaction, mode=mode)
    assert result["errors"] == [], result
    return interaction, result["session"]["id"]


def taken_refused(result, code: str) -> dict:
    assert result["interaction"] is None, result
    return refused(result, code)


async def details(api, interaction: str, user: str = "root") -> dict:
    return (await api.data(INTERACTION, {"id": interaction}, user=user))["interaction"]


# --- the rules, in order ---------------------------------------------------------------------


async def test_take_over_a_malformed_session_id_is_bad_user_input(api):
    body = await api.raw(
        'mutation { takeOverInteraction(input: {sessionId: "nope"}) { session { id } } }',
        user="root",
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_take_over_not_found(api, tia):
    interaction, session_id = await monitored(api, tia)
    taken_refused(await api.take_over(tia, api.ids["bob"]), "NOT_FOUND")  # a User id
    taken_refused(await api.take_over(tia, interaction), "NOT_FOUND")  # an Interaction id
    taken_refused(await api.take_over(tia, encode_id("MonitoringSession", 987654)), "NOT_FOUND")
    # Not visible: a south supervisor on a north session.
    taken_refused(await api.take_over("sue", session_id), "NOT_FOUND")
    # sam, a south ADMIN, sees every division: the session is found, and is not his.
    taken_refused(await api.take_over("sam", session_id), "NOT_SESSION_OWNER")
    # The monitored agent does not see a silent session.
    taken_refused(await api.take_over("bob", session_id), "NOT_FOUND")
    assert (await session_node(api, session_id))["state"] == "ACTIVE"


async def test_take_over_not_session_owner(api, tia):
    _, session_id = await monitored(api, "ann")
    # root (a north ADMIN, who has TAKE_OVER) may stop ann's session, not take it over.
    taken_refused(await api.take_over("root", session_id), "NOT_SESSION_OWNER")
    taken_refused(await api.take_over(tia, session_id), "NOT_SESSION_OWNER")
    # Before SESSION_ENDED, MODE_NOT_PERMITTED and MODE_NOT_AVAILABLE.
    _, voice_session = await monitored(api, "ann", media="VOICE")
    await api.stop("ann", voice_session)
    taken_refused(await api.take_over("carl", voice_session), "NOT_SESSION_OWNER")
    # The agent sees a disclosed session, but it is not theirs.
    _, barged = await monitored(api, "ann", mode="BARGE")
    taken_refused(await api.take_over("bob", barged), "NOT_SESSION_OWNER")
    assert (await session_node(api, session_id))["state"] == "ACTIVE"


async def test_take_over_session_ended(api, tia):
    _, session_id = await monitored(api, tia)
    await api.stop(tia, session_id)
    error = taken_refused(await api.take_over(tia, session_id), "SESSION_ENDED")
    assert "ended" in error["message"]
    # Before MODE_NOT_PERMITTED (ann has no TAKE_OVER) and MODE_NOT_AVAILABLE (voice).
    voice, of_ann = await monitored(api, "ann", media="VOICE")
    await api.end(voice)
    taken_refused(await api.take_over("ann", of_ann), "SESSION_ENDED")


async def test_take_over_mode_not_permitted(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR", "COACH", "BARGE"]))
    for user in ("ann", "mia"):  # a SUPERVISOR by default, and one given no TAKE_OVER
        _, session_id = await monitored(api, user)
        error = taken_refused(await api.take_over(user, session_id), "MODE_NOT_PERMITTED")
        assert "take" in error["message"]
        assert (await session_node(api, session_id))["state"] == "ACTIVE"
    # Before MODE_NOT_AVAILABLE.
    _, voice_session = await monitored(api, "ann", media="VOICE")
    taken_refused(await api.take_over("ann", voice_session), "MODE_NOT_PERMITTED")


async def test_take_over_mode_not_available_on_voice(api, tia):
    interaction, session_id = await monitored(api, tia, media="VOICE", mode="COACH")
    error = taken_refused(await api.take_over(tia, session_id), "MODE_NOT_AVAILABLE")
    assert "Voice" in error["message"]
    _, of_root = await monitored(api, "root", media="VOICE")
    taken_refused(await api.take_over("root", of_root), "MODE_NOT_AVAILABLE")
    assert (await session_node(api, session_id))["state"] == "ACTIVE"
    assert (await details(api, interaction))["participants"] == [
        {"purpose": "CUSTOMER", "state": "CONNECTED", "user": None},
        {"purpose": "AGENT", "state": "CONNECTED", "user": {"key": "bob"}},
        {"purpose": "MONITOR", "state": "CONNECTED", "user": {"key": "tia"}},
    ]


async def test_a_refused_take_over_records_nothing(api, db, tia):
    _, voice = await monitored(api, tia, media="VOICE")
    _, of_ann = await monitored(api, "ann")
    logged = [row.position for row in await log_rows(db)]
    taken_refused(await api.take_over(tia, voice), "MODE_NOT_AVAILABLE")
    taken_refused(await api.take_over("ann", of_ann), "MODE_NOT_PERMITTED")
    taken_refused(await api.take_over(tia, of_ann), "NOT_SESSION_OWNER")
    assert [row.position for row in await log_rows(db)] == logged


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize("media", ["CHAT", "SMS"])
async def test_take_over_makes_the_supervisor_the_agent(api, db, tia, media):
    interaction, session_id = await monitored(api, tia, media=media)
    result = await api.take_over(tia, session_id)
    assert result["errors"] == []
    assert result["session"] == {
        "id": session_id,
        "state": "ENDED",
        "endReason": "TAKEN_OVER",
        "mode": "MONITOR",
    }
    taken = result["interaction"]
    assert (taken["id"], taken["state"]) == (interaction, "CONNECTED")
    expected_participants = [
        {"purpose": "CUSTOMER", "state": "CONNECTED", "user": None},
        {"purpose": "AGENT", "state": "DISCONNECTED", "user": {"key": "bob"}},
        {"purpose": "MONITOR", "state": "DISCONNECTED", "user": {"key": "tia"}},
        {"purpose": "AGENT", "state": "CONNECTED", "user": {"key": "tia"}},
    ]
    assert taken["participants"] == expected_participants

    now = await details(api, interaction)
    assert (now["state"], now["endedAt"]) == ("CONNECTED", None)
    assert now["participants"] == expected_participants
    assert now["monitoringSessions"] == [
        {"id": session_id, "state": "ENDED", "endReason": "TAKEN_OVER", "monitor": {"key": "tia"}}
    ]
    assert now["activeMonitoring"] is None

    # In the supervisor's panel, as its agent now.
    panel = await api.data(
        "{ interactionPanel { interaction { id state } monitoring session { id } } }", user=tia
    )
    assert panel["interactionPanel"] == [
        {
            "interaction": {"id": interaction, "state": "CONNECTED"},
            "monitoring": False,
            "session": None,
        }
    ]
    # And out of bob's.
    assert (await api.data("{ interactionPanel { monitoring } }", user="bob"))[
        "interactionPanel"
    ] == []


@pytest.mark.parametrize("media", ["CHAT", "SMS"])
async def test_take_over_is_logged_leave_join_end_in_order(api, db, tia, media):
    interaction, session_id = await monitored(api, tia, media=media)
    await api.take_over(tia, session_id)
    rows = await log_rows(db, interaction_id=pk(interaction, "Interaction"))
    assert [(row.kind.value, row.user_id, row.session_id) for row in rows] == [
        ("INTERACTION_CREATED", None, None),
        ("AGENT_CONNECTED", pk(api.ids["bob"], "User"), None),
        ("MONITORING_STARTED", None, pk(session_id, "MonitoringSession")),
        ("AGENT_DISCONNECTED", pk(api.ids["bob"], "User"), None),
        ("AGENT_CONNECTED", pk(api.ids["tia"], "User"), None),
        ("MONITORING_ENDED", None, pk(session_id, "MonitoringSession")),
    ]
    # One transaction: the three take over events share one moment.
    assert len({row.occurred_at for row in rows[3:]}) == 1


async def test_take_over_by_an_admin_of_the_division(api, db):
    _, session_id = await monitored(api, "root", media="SMS", mode="MONITOR")
    result = await api.take_over("root", session_id)
    assert result["errors"] == [] and result["session"]["endReason"] == "TAKEN_OVER"
    agents = [p for p in result["interaction"]["participants"] if p["purpose"] == "AGENT"]
    assert [(p["user"]["key"], p["state"]) for p in agents] == [
        ("bob", "DISCONNECTED"),
        ("root", "CONNECTED"),
    ]


async def test_take_over_from_a_barged_chat(api, tia):
    _, session_id = await monitored(api, tia, mode="BARGE")
    result = await api.take_over(tia, session_id)
    assert result["errors"] == []
    assert result["session"]["mode"] == "BARGE" and result["session"]["endReason"] == "TAKEN_OVER"


async def test_take_over_leaves_other_agents_connected(api, tia):
    interaction = await live_call(api, media="CHAT")
    await api.connect(interaction, "dina")
    session_id = (await api.start(tia, interaction, agent="bob"))["session"]["id"]
    result = await api.take_over(tia, session_id)
    assert result["errors"] == []
    agents = [
        (p["user"]["key"], p["state"])
        for p in result["interaction"]["participants"]
        if p["purpose"] == "AGENT"
    ]
    assert agents == [("bob", "DISCONNECTED"), ("dina", "CONNECTED"), ("tia", "CONNECTED")]


async def test_a_second_take_over_answers_session_ended(api, db, tia):
    _, session_id = await monitored(api, tia)
    first = await api.take_over(tia, session_id)
    assert first["errors"] == []
    logged = [row.position for row in await log_rows(db)]
    taken_refused(await api.take_over(tia, session_id), "SESSION_ENDED")
    assert [row.position for row in await log_rows(db)] == logged
    refused(await api.change_mode(tia, session_id, "BARGE"), "SESSION_ENDED")
    # Stopping it returns it unchanged.
    stopped = await api.stop(tia, session_id)
    assert stopped["errors"] == [] and stopped["session"]["endReason"] == "TAKEN_OVER"


FEED = """subscription($interactionId: ID) {
  interactionChanged(interactionId: $interactionId) {
    cursor kind agent { key } session { id endReason }
  }
}"""


async def feed_after(subscriber: Subscriber, position: int, count: int) -> list[dict]:
    """The events from the `position`th on, once `count` of them have arrived (bounded)."""
    async with subscriber.arrived:
        await asyncio.wait_for(
            subscriber.arrived.wait_for(lambda: len(subscriber.events) >= position + count), 10
        )
    return subscriber.events[position:]


def summary(events) -> list[tuple]:
    return [
        (e["kind"], (e["agent"] or {}).get("key"), (e["session"] or {}).get("endReason"))
        for e in events
    ]


async def test_the_events_of_a_take_over_go_out(server, live_api, db):
    api = live_api
    await add_users(db, api, TIA)
    interaction, session_id = await monitored(api, "tia")
    async with (
        Subscriber(server, api.token("root"), FEED, interactionId=interaction) as root,
        Subscriber(server, api.token("bob"), FEED, interactionId=interaction) as bob,
    ):
        # A marker committed after both subscribed: what came before it (events committed
        # before subscribing, which a reader held back may still deliver) is left out.
        await api.connect(interaction, "dina")
        marked = {}
        for name, subscriber in (("root", root), ("bob", bob)):
            await feed_after(subscriber, 0, 1)
            while summary(subscriber.events[-1:]) != [("AGENT_CONNECTED", "dina", None)]:
                await feed_after(subscriber, len(subscriber.events), 1)
            marked[name] = len(subscriber.events)
        assert (await api.take_over("tia", session_id))["errors"] == []
        await feed_after(root, marked["root"], 3)
        await feed_after(bob, marked["bob"], 3)
        to_root = (await quiet(root))[marked["root"] :]
        to_bob = (await quiet(bob))[marked["bob"] :]
    expected = [
        ("AGENT_DISCONNECTED", "bob", None),
        ("AGENT_CONNECTED", "tia", None),
        ("MONITORING_ENDED", None, "TAKEN_OVER"),
    ]
    assert summary(to_root) == expected
    # The take over tells the agent of the session: bob gets its end too.
    assert summary(to_bob) == expected
    assert {e["session"]["id"] for e in to_bob if e["session"]} == {session_id}


# --- afterwards ------------------------------------------------------------------------------


async def test_after_a_take_over_the_supervisor_cannot_monitor_but_another_can(api, tia):
    interaction, session_id = await monitored(api, tia, media="CHAT")
    await api.take_over(tia, session_id)
    # The supervisor is an agent of it now: SELF_MONITORING; bob has left (rule 6 first).
    own = await monitorability(api, tia, interaction, agent="tia")
    assert own == {
        "allowed": False,
        "reason": "SELF_MONITORING",
        "modes": [],
        "canTakeOver": False,
    }
    assert (await monitorability(api, tia, interaction, agent="bob"))["reason"] == (
        "AGENT_NOT_ON_INTERACTION"
    )
    refused(await api.start(tia, interaction), "SELF_MONITORING")
    # Another supervisor may monitor the supervisor-now-agent (a chat: again and again).
    verdict = await monitorability(api, "carl", interaction, agent="tia")
    assert verdict == {
        "allowed": True,
        "reason": None,
        "modes": ["MONITOR", "BARGE"],
        "canTakeOver": False,
    }
    result = await api.start("carl", interaction)
    assert result["errors"] == []
    assert (result["session"]["agent"]["key"], result["session"]["mode"]) == ("tia", "MONITOR")
    # carl's silent session stays silent to tia, who is its agent now; her own is not.
    seen_by_tia = await details(api, interaction, user=tia)
    assert [s["id"] for s in seen_by_tia["monitoringSessions"]] == [session_id]
    assert seen_by_tia["activeMonitoring"] is None
    assert [p["user"]["key"] for p in seen_by_tia["participants"] if p["purpose"] == "MONITOR"] == [
        "tia"
    ]


async def test_after_an_sms_take_over_it_was_monitored_once(api, tia):
    interaction, session_id = await monitored(api, tia, media="SMS")
    await api.take_over(tia, session_id)
    verdict = await monitorability(api, "carl", interaction, agent="tia")
    assert (verdict["allowed"], verdict["reason"], verdict["modes"]) == (
        False,
        "MONITORED_ONCE",
        [],
    )
    refused(await api.start("carl", interaction), "MONITORED_ONCE")


async def test_the_previous_agent_is_told_of_the_take_over(api, tia):
    """The silent rule: a session is visible to its agent once it takes the interaction over
    (here it was silent until then)."""
    interaction, session_id = await monitored(api, tia)
    before = await details(api, interaction, user="bob")
    assert before["monitoringSessions"] == [] and before["activeMonitoring"] is None
    assert await session_node(api, session_id, user="bob") is None

    await api.take_over(tia, session_id)
    after = await details(api, interaction, user="bob")
    assert after["monitoringSessions"] == [
        {"id": session_id, "state": "ENDED", "endReason": "TAKEN_OVER", "monitor": {"key": "tia"}}
    ]
    assert after["participants"] == [
        {"purpose": "CUSTOMER", "state": "CONNECTED", "user": None},
        {"purpose": "AGENT", "state": "DISCONNECTED", "user": {"key": "bob"}},
        {"purpose": "MONITOR", "state": "DISCONNECTED", "user": {"key": "tia"}},
        {"purpose": "AGENT", "state": "CONNECTED", "user": {"key": "tia"}},
    ]
    assert (await session_node(api, session_id, user="bob"))["id"] == session_id
    # dina, an agent not on the interaction, is never told (she sees the interaction: north).
    as_dina = await details(api, interaction, user="dina")
    assert as_dina["monitoringSessions"] == []


async def test_a_monitor_connected_as_an_agent_too_loses_sight_of_a_silent_session(api):
    """The platform connects the monitoring supervisor as an agent as well: they took part,
    and a silent session is invisible to whoever took part, its own monitor included: the
    take over answers NOT_FOUND, and canTakeOver agrees."""
    interaction, session_id = await monitored(api, "root")
    await api.connect(interaction, "root")
    verdict = await monitorability(api, "root", interaction, agent="bob")
    assert (verdict["reason"], verdict["canTakeOver"]) == ("SELF_MONITORING", False)
    taken_refused(await api.take_over("root", session_id), "NOT_FOUND")


async def test_can_take_over_agrees_when_the_monitor_is_connected_as_an_agent_too(api):
    """Same, on a barged (disclosed) chat, which its monitor still sees: startMonitoring would
    answer SELF_MONITORING (rule 7), but takeOverInteraction succeeds on the session
    (app/monitoring/modes.py: "Already an agent of it"). canTakeOver must say so: the contract
    defines it by takeOverInteraction alone ("true where takeOverInteraction would succeed on
    the viewer's own session")."""
    interaction, session_id = await monitored(api, "root", mode="BARGE")
    await api.connect(interaction, "root")
    verdict = await monitorability(api, "root", interaction, agent="bob")
    taken = await api.take_over("root", session_id)
    assert taken["errors"] == [], taken
    agents = [
        (p["user"]["key"], p["state"])
        for p in taken["interaction"]["participants"]
        if p["purpose"] == "AGENT"
    ]
    assert agents == [("bob", "DISCONNECTED"), ("root", "CONNECTED")]  # no second root
    assert verdict["canTakeOver"] is True, verdict
