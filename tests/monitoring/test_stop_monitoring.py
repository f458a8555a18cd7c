"""stopMonitoring, and how the integration's calls end sessions."""

SESSION = """query($id: ID!) { node(id: $id) { ... on MonitoringSession {
  state endReason endedAt interaction { participants { purpose state user { key } } } } } }"""


async def monitored_call(api, media="VOICE"):
    interaction = await api.create(media=media)
    await api.connect(interaction, "bob")
    session = (await api.start("ann", interaction))["session"]
    return interaction, session["id"]


async def monitor_participant(api, session_id):
    data = await api.data(SESSION, {"id": session_id}, user="root")
    node = data["node"]
    return node, next(p for p in node["interaction"]["participants"] if p["purpose"] == "MONITOR")


async def test_stop_ends_the_session_and_leaves_the_panel(api):
    _, session_id = await monitored_call(api)
    result = await api.stop("ann", session_id)
    assert result["errors"] == []
    assert result["session"]["state"] == "ENDED"
    assert result["session"]["endReason"] == "STOPPED"
    assert result["session"]["endedAt"]
    _, monitor = await monitor_participant(api, session_id)
    assert monitor == {"purpose": "MONITOR", "state": "DISCONNECTED", "user": {"key": "ann"}}
    assert (await api.data("{ interactionPanel { monitoring } }"))["interactionPanel"] == []


async def test_stopping_an_ended_session_returns_it_unchanged(api):
    _, session_id = await monitored_call(api)
    first = await api.stop("ann", session_id)
    again = await api.stop("ann", session_id)
    assert again == first


async def test_only_the_monitor_or_an_admin_of_the_agents_division_may_stop(api):
    _, session_id = await monitored_call(api)
    assert [e["code"] for e in (await api.stop("carl", session_id))["errors"]] == [
        "NOT_SESSION_OWNER"
    ]
    assert [e["code"] for e in (await api.stop("sam", session_id))["errors"]] == [
        "NOT_SESSION_OWNER"
    ]  # an admin of another division
    result = await api.stop("root", session_id)  # an admin of bob's division
    assert result["errors"] == [] and result["session"]["endReason"] == "STOPPED"


async def test_a_session_the_viewer_cannot_see_is_not_found(api):
    _, session_id = await monitored_call(api)
    result = await api.stop("sue", session_id)
    assert result["session"] is None
    assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
    result = await api.stop("ann", api.ids["bob"])  # an id of another type
    assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]


async def test_end_interaction_ends_the_active_session(api):
    interaction, session_id = await monitored_call(api)
    await api.end(interaction)
    node, monitor = await monitor_participant(api, session_id)
    assert (node["state"], node["endReason"]) == ("ENDED", "INTERACTION_ENDED")
    assert monitor["state"] == "DISCONNECTED"


async def test_disconnecting_the_monitored_agent_ends_the_session(api):
    interaction, session_id = await monitored_call(api)
    await api.disconnect(interaction, "bob")
    node, monitor = await monitor_participant(api, session_id)
    assert (node["state"], node["endReason"]) == ("ENDED", "AGENT_DISCONNECTED")
    assert monitor["state"] == "DISCONNECTED"


async def test_disconnecting_another_agent_leaves_the_session_active(api):
    interaction = await api.create()
    await api.connect(interaction, "bob")
    await api.connect(interaction, "dina")
    session_id = (await api.start("ann", interaction, agent="bob"))["session"]["id"]
    await api.disconnect(interaction, "dina")
    node, monitor = await monitor_participant(api, session_id)
    assert node["state"] == "ACTIVE" and monitor["state"] == "CONNECTED"
