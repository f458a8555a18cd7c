"""startMonitoring: every rule of the contract, each on its own, through GraphQL."""

import pytest

from app.graphql.ids import encode_id

MONITORABILITY = """query($id: ID!) {
  interaction(id: $id) {
    agents { user { key } state monitorability { allowed reason currentMonitor { key } } }
  }
}"""


async def live_call(api, agent="bob", queue="billing", media="VOICE"):
    interaction = await api.create(queue=queue, media=media)
    await api.connect(interaction, agent)
    return interaction


def refused(result, code):
    assert result["session"] is None, result
    assert [error["code"] for error in result["errors"]] == [code], result
    assert result["errors"][0]["message"]
    return result["errors"][0]


async def monitorability(api, user, interaction, agent):
    data = await api.data(MONITORABILITY, {"id": interaction}, user=user)
    return next(
        a["monitorability"] for a in data["interaction"]["agents"] if a["user"]["key"] == agent
    )


async def assert_agrees(api, user, interaction, agent, code):
    """monitorability answers what startMonitoring answers (read before the start)."""
    verdict = await monitorability(api, user, interaction, agent)
    assert verdict["allowed"] is (code is None), verdict
    assert verdict["reason"] == code, verdict


async def test_success_creates_an_active_session_and_a_monitor_participant(api):
    interaction = await live_call(api)
    await assert_agrees(api, "ann", interaction, "bob", None)
    result = await api.start("ann", interaction)
    assert result["errors"] == []
    session = result["session"]
    assert session["state"] == "ACTIVE"
    assert session["monitor"]["key"] == "ann" and session["agent"]["key"] == "bob"

    data = await api.data(
        """query($id: ID!) { interaction(id: $id) {
             participants { purpose state user { key } monitoredBy { id } }
             activeMonitoring { id } monitoringSessions { id state }
           } }""",
        {"id": interaction},
    )
    details = data["interaction"]
    assert [(p["purpose"], p["state"]) for p in details["participants"]] == [
        ("CUSTOMER", "CONNECTED"),
        ("AGENT", "CONNECTED"),
        ("MONITOR", "CONNECTED"),
    ]
    assert details["participants"][2]["user"]["key"] == "ann"
    assert details["participants"][1]["monitoredBy"] == {"id": session["id"]}
    assert details["activeMonitoring"] == {"id": session["id"]}
    assert details["monitoringSessions"] == [{"id": session["id"], "state": "ACTIVE"}]

    panel = await api.data("{ interactionPanel { interaction { id } monitoring session { id } } }")
    assert panel["interactionPanel"] == [
        {"interaction": {"id": interaction}, "monitoring": True, "session": {"id": session["id"]}}
    ]


async def test_not_found_when_the_interaction_is_not_visible(api):
    interaction = await live_call(api)
    await assert_agrees(api, "root", interaction, "bob", None)  # an admin sees it
    refused(await api.start("sue", interaction), "NOT_FOUND")  # south supervisor does not
    assert (await api.data(MONITORABILITY, {"id": interaction}, user="sue"))["interaction"] is None


async def test_not_found_for_an_id_of_another_type(api):
    refused(await api.start("ann", api.ids["billing"]), "NOT_FOUND")
    refused(await api.start("ann", encode_id("Interaction", 987654)), "NOT_FOUND")


async def test_malformed_id_is_bad_user_input(api):
    body = await api.raw(
        'mutation { startMonitoring(input: {interactionId: "nope"}) { session { id } } }',
        user="ann",
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_not_permitted_for_an_agent(api):
    interaction = await live_call(api)
    await assert_agrees(api, "dina", interaction, "bob", "NOT_PERMITTED")
    refused(await api.start("dina", interaction), "NOT_PERMITTED")


async def test_interaction_ended(api):
    interaction = await live_call(api)
    await api.end(interaction)
    refused(await api.start("ann", interaction), "INTERACTION_ENDED")


@pytest.mark.parametrize("media", ["EMAIL", "CALLBACK"])
async def test_media_not_monitorable(api, media):
    interaction = await live_call(api, media=media)
    await assert_agrees(api, "ann", interaction, "bob", "MEDIA_NOT_MONITORABLE")
    refused(await api.start("ann", interaction), "MEDIA_NOT_MONITORABLE")


@pytest.mark.parametrize("media", ["VOICE", "SMS", "CHAT"])
async def test_monitorable_media(api, media):
    interaction = await live_call(api, media=media)
    assert (await api.start("ann", interaction))["session"]["state"] == "ACTIVE"


async def test_no_agent_while_waiting(api):
    interaction = await api.create()
    refused(await api.start("ann", interaction), "NO_AGENT")


async def test_no_agent_after_the_agent_left(api):
    interaction = await live_call(api)
    await api.disconnect(interaction, "bob")
    refused(await api.start("ann", interaction), "NO_AGENT")


async def test_agent_not_on_interaction(api):
    interaction = await live_call(api)
    error = refused(await api.start("ann", interaction, agent="eli"), "AGENT_NOT_ON_INTERACTION")
    assert error["field"] == ["input", "agentId"]
    # An id of another type, or of nobody, is no connected agent either.
    refused(
        await api.start("ann", interaction, agent=api.ids["billing"]), "AGENT_NOT_ON_INTERACTION"
    )
    refused(
        await api.start("ann", interaction, agent=encode_id("User", 99999)),
        "AGENT_NOT_ON_INTERACTION",
    )


async def test_agent_not_on_interaction_once_disconnected(api):
    interaction = await live_call(api)
    await api.connect(interaction, "dina")
    await api.disconnect(interaction, "bob")
    await assert_agrees(api, "ann", interaction, "bob", "AGENT_NOT_ON_INTERACTION")
    refused(await api.start("ann", interaction, agent="bob"), "AGENT_NOT_ON_INTERACTION")


async def test_agent_required_when_several_are_connected(api):
    interaction = await live_call(api)
    await api.connect(interaction, "dina")
    error = refused(await api.start("ann", interaction), "AGENT_REQUIRED")
    assert "Bob Ray" in error["message"] and "Dina Moss" in error["message"]
    result = await api.start("ann", interaction, agent="dina")
    assert result["session"]["agent"]["key"] == "dina"


async def test_self_monitoring(api):
    interaction = await live_call(api)
    await api.connect(interaction, "ann")  # a supervisor takes the interaction too
    await assert_agrees(api, "ann", interaction, "bob", "SELF_MONITORING")
    refused(await api.start("ann", interaction, agent="bob"), "SELF_MONITORING")


async def test_self_monitoring_also_for_one_who_took_part_earlier(api):
    """A supervisor who left the interaction may not monitor it either: rules 10 and 11
    (ALREADY_MONITORED naming the monitor, MONITORED_ONCE) would tell them of monitoring
    that is silent to its agents."""
    interaction = await live_call(api)
    await api.connect(interaction, "ann")
    await api.disconnect(interaction, "ann")
    assert (await api.start("carl", interaction))["session"] is not None
    await assert_agrees(api, "ann", interaction, "bob", "SELF_MONITORING")
    refused(await api.start("ann", interaction), "SELF_MONITORING")


async def test_division_mismatch_for_an_agent_of_another_division(api):
    interaction = await live_call(api, agent="tom", queue="billing")  # south agent, north queue
    await assert_agrees(api, "ann", interaction, "tom", "DIVISION_MISMATCH")
    refused(await api.start("ann", interaction), "DIVISION_MISMATCH")


async def test_division_mismatch_whatever_the_role(api):
    interaction = await live_call(api)  # north agent
    await assert_agrees(api, "sam", interaction, "bob", "DIVISION_MISMATCH")  # south admin
    refused(await api.start("sam", interaction), "DIVISION_MISMATCH")
    assert (await api.start("root", interaction))["session"]["state"] == "ACTIVE"  # north admin


async def test_restarting_returns_the_viewers_own_session(api):
    interaction = await live_call(api)
    await api.connect(interaction, "dina")
    first = (await api.start("ann", interaction, agent="bob"))["session"]
    await assert_agrees(api, "ann", interaction, "dina", None)
    again = await api.start("ann", interaction, agent="bob")
    other_agent = await api.start("ann", interaction, agent="dina")
    assert again == {"session": first, "errors": []}
    assert other_agent == {"session": first, "errors": []}


async def test_already_monitored_names_the_current_monitor(api):
    interaction = await live_call(api)
    await api.start("ann", interaction)
    verdict = await monitorability(api, "carl", interaction, "bob")
    assert verdict == {
        "allowed": False,
        "reason": "ALREADY_MONITORED",
        "currentMonitor": {"key": "ann"},
    }
    error = refused(await api.start("carl", interaction), "ALREADY_MONITORED")
    assert error["currentMonitor"] == {"key": "ann"}
    assert error["message"] == "Ann Lee is already monitoring this interaction."


async def test_voice_can_be_monitored_again_after_a_stop(api):
    interaction = await live_call(api)
    session = (await api.start("ann", interaction))["session"]
    await api.stop("ann", session["id"])
    again = (await api.start("carl", interaction))["session"]
    assert again["state"] == "ACTIVE" and again["id"] != session["id"]


async def test_sms_is_monitored_once(api):
    interaction = await live_call(api, media="SMS")
    session = (await api.start("ann", interaction))["session"]
    refused(await api.start("carl", interaction), "ALREADY_MONITORED")  # rule 10 before 11
    await api.stop("ann", session["id"])
    await assert_agrees(api, "ann", interaction, "bob", "MONITORED_ONCE")
    refused(await api.start("ann", interaction), "MONITORED_ONCE")
    refused(await api.start("carl", interaction), "MONITORED_ONCE")


async def test_rules_are_checked_in_the_contracts_order(api):
    # Ended (3) and not monitorable (4) and without agent (5): the first failing rule wins.
    interaction = await api.create(media="EMAIL")
    await api.end(interaction)
    refused(await api.start("dina", interaction), "NOT_PERMITTED")  # 2 before 3
    refused(await api.start("ann", interaction), "INTERACTION_ENDED")  # 3 before 4 and 5
    waiting_email = await api.create(media="EMAIL")
    refused(await api.start("ann", waiting_email), "MEDIA_NOT_MONITORABLE")  # 4 before 5
