"""Monitoring modes (contract addition modes.graphql): startMonitoring with `mode` (rules 2a
and 4a), the directory's monitoring permissions, changeMonitoringMode, its MODE_CHANGED
events, and Monitorability.modes agreeing with the mutations. Through GraphQL."""

import asyncio
import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.directory.load import DirectoryFile, DirectoryFileError, load_directory, parse_directory
from app.graphql.ids import decode_id, encode_id
from app.models import EventLogEntry, User
from tests.conftest import DIRECTORY
from tests.events.test_change_feed import quiet
from tests.events.test_subscription import Subscriber

MODES = ("MONITOR", "COACH", "BARGE")
PERMISSIONS = ("MONITOR", "COACH", "BARGE", "TAKE_OVER")
# What the contract offers: modes by media type, and the media a supervisor can take over.
AVAILABLE = {
    "VOICE": {"MONITOR", "COACH", "BARGE"},
    "CHAT": {"MONITOR", "BARGE"},
    "SMS": {"MONITOR"},
    "EMAIL": set(),
    "CALLBACK": set(),
}
TAKE_OVER_MEDIA = {"CHAT", "SMS"}

MONITORABILITY = """query($id: ID!) {
  interaction(id: $id) {
    agents { user { key } monitorability { allowed reason modes canTakeOver } }
  }
}"""
SESSION = """query($id: ID!) { node(id: $id) { ... on MonitoringSession {
  id state mode startedAt modeHistory { mode at } } } }"""


# --- helpers shared with test_take_over.py ---------------------------------------------------


def entry(key: str, roles=("SUPERVISOR",), permissions=None, division="north") -> dict:
    """A directory user; `permissions` None leaves them out (the roles' defaults)."""
    user = {"key": key, "name": f"{key.title()} Test", "division": division, "roles": list(roles)}
    if permissions is not None:
        user["permissions"] = list(permissions)
    return user


async def add_users(db, api, *users: dict) -> None:
    """Load more users beside the test directory, and give the api their ids."""
    await load_directory(
        db, DirectoryFile.model_validate({"divisions": DIRECTORY["divisions"], "users": users})
    )
    keys = [user["key"] for user in users]
    async with db.read() as session:
        for row in (await session.exec(sa.select(User).where(User.key.in_(keys)))).scalars():
            api.ids[row.key] = encode_id("User", row.id)


async def live_call(api, media="VOICE", agent="bob", queue="billing") -> str:
    interaction = await api.create(queue=queue, media=media)
    await api.connect(interaction, agent)
    return interaction


def codes(result) -> list[str]:
    return [error["code"] for error in result["errors"]]


def refused(result, code: str) -> dict:
    """The one error of a refused monitoring mutation, with no session in the payload."""
    assert result["session"] is None, result
    assert codes(result) == [code], result
    assert result["errors"][0]["message"], result
    return result["errors"][0]


async def monitorability(api, user: str, interaction: str, agent: str = "bob") -> dict:
    data = await api.data(MONITORABILITY, {"id": interaction}, user=user)
    return next(
        a["monitorability"] for a in data["interaction"]["agents"] if a["user"]["key"] == agent
    )


async def session_node(api, session_id: str, user: str = "root") -> dict | None:
    return (await api.data(SESSION, {"id": session_id}, user=user))["node"]


async def log_rows(db, **conditions) -> list[EventLogEntry]:
    """The event log (matching `conditions` on its columns), oldest first."""
    statement = sa.select(EventLogEntry).order_by(EventLogEntry.position)
    for column, value in conditions.items():
        statement = statement.where(getattr(EventLogEntry, column) == value)
    async with db.read() as session:
        return list((await session.exec(statement)).scalars())


def pk(global_id: str, type_name: str) -> int:
    return decode_id(global_id, type_name)


# --- startMonitoring with a mode -------------------------------------------------------------


async def test_mode_defaults_to_monitor_and_is_recorded_as_the_first_history_entry(api):
    interaction = await live_call(api)
    result = await api.start("ann", interaction)
    assert result["errors"] == []
    assert result["session"]["mode"] == "MONITOR"
    node = await session_node(api, result["session"]["id"])
    assert [step["mode"] for step in node["modeHistory"]] == ["MONITOR"]
    assert datetime.fromisoformat(node["modeHistory"][0]["at"]) == datetime.fromisoformat(
        node["startedAt"]
    )


async def test_an_explicit_null_mode_is_monitor_too(api):
    interaction = await live_call(api)
    data = await api.data(
        """mutation($id: ID!) { startMonitoring(input: {interactionId: $id, mode: null}) {
             session { mode } errors { code } } }""",
        {"id": interaction},
    )
    assert data["startMonitoring"] == {"session": {"mode": "MONITOR"}, "errors": []}


@pytest.mark.parametrize(
    ("media", "mode"),
    [("VOICE", "COACH"), ("VOICE", "BARGE"), ("CHAT", "BARGE"), ("SMS", "MONITOR")],
)
async def test_starting_in_an_available_mode(api, media, mode):
    interaction = await live_call(api, media=media)
    result = await api.start("ann", interaction, mode=mode)
    assert result["errors"] == []
    assert (result["session"]["state"], result["session"]["mode"]) == ("ACTIVE", mode)
    node = await session_node(api, result["session"]["id"])
    assert [step["mode"] for step in node["modeHistory"]] == [mode]


async def test_mode_not_permitted_by_the_directory(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]), entry("ned", permissions=[]))
    interaction = await live_call(api)
    error = refused(await api.start("mia", interaction, mode="COACH"), "MODE_NOT_PERMITTED")
    assert "coach" in error["message"]
    refused(await api.start("mia", interaction, mode="BARGE"), "MODE_NOT_PERMITTED")
    # An explicit empty list refuses even silent monitoring, the default mode.
    refused(await api.start("ned", interaction), "MODE_NOT_PERMITTED")
    refused(await api.start("ned", interaction, mode="MONITOR"), "MODE_NOT_PERMITTED")
    # Nothing was written by the refusals: the permitted mode still starts.
    assert (await api.start("mia", interaction))["session"]["mode"] == "MONITOR"


async def test_rule_2_not_permitted_comes_before_2a_even_with_permissions(api, db):
    """An AGENT given every permission in the directory still may not monitor (rule 2)."""
    await add_users(db, api, entry("ray", roles=["AGENT"], permissions=PERMISSIONS))
    interaction = await live_call(api)
    refused(await api.start("ray", interaction, mode="COACH"), "NOT_PERMITTED")
    refused(await api.start("dina", interaction, mode="COACH"), "NOT_PERMITTED")  # no permission


async def test_rule_2a_comes_before_rule_3_and_4(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]))
    ended = await live_call(api)
    await api.end(ended)
    refused(await api.start("mia", ended, mode="COACH"), "MODE_NOT_PERMITTED")  # 2a before 3
    refused(await api.start("mia", ended), "INTERACTION_ENDED")  # permitted: rule 3
    refused(await api.start("ann", ended, mode="COACH"), "INTERACTION_ENDED")
    email = await live_call(api, media="EMAIL")
    refused(await api.start("mia", email, mode="BARGE"), "MODE_NOT_PERMITTED")  # 2a before 4


@pytest.mark.parametrize(("media", "mode"), [("CHAT", "COACH"), ("SMS", "COACH"), ("SMS", "BARGE")])
async def test_mode_not_available_for_the_media(api, media, mode):
    interaction = await live_call(api, media=media)
    error = refused(await api.start("ann", interaction, mode=mode), "MODE_NOT_AVAILABLE")
    assert media.title() in error["message"] or media in error["message"]
    # The refusal wrote nothing: an available mode starts.
    assert (await api.start("ann", interaction))["session"]["mode"] == "MONITOR"


@pytest.mark.parametrize("mode", MODES)
async def test_rule_4_media_not_monitorable_whatever_the_mode(api, mode):
    email = await live_call(api, media="EMAIL")
    refused(await api.start("ann", email, mode=mode), "MEDIA_NOT_MONITORABLE")
    refused(await api.start("root", email, mode=mode), "MEDIA_NOT_MONITORABLE")


async def test_rule_4a_comes_after_3_and_before_5(api):
    ended_chat = await live_call(api, media="CHAT")
    await api.end(ended_chat)
    refused(await api.start("ann", ended_chat, mode="COACH"), "INTERACTION_ENDED")  # 3 before 4a
    waiting_chat = await api.create(media="CHAT")
    refused(await api.start("ann", waiting_chat, mode="COACH"), "MODE_NOT_AVAILABLE")  # 4a < 5
    refused(await api.start("ann", waiting_chat, mode="BARGE"), "NO_AGENT")
    waiting_voice = await api.create(media="VOICE")
    refused(await api.start("ann", waiting_voice, mode="COACH"), "NO_AGENT")


async def test_rule_4a_comes_before_the_later_rules(api):
    # 6 (AGENT_REQUIRED), 7 (SELF_MONITORING) and 10 (ALREADY_MONITORED) all fail too.
    several = await live_call(api, media="CHAT")
    await api.connect(several, "dina")
    refused(await api.start("ann", several, mode="COACH"), "MODE_NOT_AVAILABLE")
    refused(await api.start("ann", several, mode="BARGE"), "AGENT_REQUIRED")
    own = await live_call(api, media="SMS", agent="ann")
    refused(await api.start("ann", own, mode="BARGE"), "MODE_NOT_AVAILABLE")
    refused(await api.start("ann", own), "SELF_MONITORING")
    taken = await live_call(api, media="CHAT")
    await api.start("carl", taken)
    refused(await api.start("ann", taken, mode="COACH"), "MODE_NOT_AVAILABLE")
    refused(await api.start("ann", taken, mode="BARGE"), "ALREADY_MONITORED")


async def test_rule_9_returns_the_viewers_session_in_whatever_mode_it_is(api, db):
    interaction = await live_call(api)
    first = await api.start("ann", interaction, mode="COACH")
    assert first["errors"] == [] and first["session"]["mode"] == "COACH"
    logged = len(await log_rows(db))
    again = await api.start("ann", interaction, mode="MONITOR")
    barge = await api.start("ann", interaction, mode="BARGE")
    default = await api.start("ann", interaction)
    assert again == barge == default == {"session": first["session"], "errors": []}
    node = await session_node(api, first["session"]["id"])
    assert node["mode"] == "COACH"
    assert [step["mode"] for step in node["modeHistory"]] == ["COACH"]
    assert len(await log_rows(db)) == logged  # nothing recorded


async def test_rule_9_still_checks_2a_and_4a_first(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]))
    chat = await live_call(api, media="CHAT")
    session = (await api.start("ann", chat, mode="BARGE"))["session"]
    refused(await api.start("ann", chat, mode="COACH"), "MODE_NOT_AVAILABLE")
    assert (await api.start("ann", chat))["session"] == session
    voice = await live_call(api)
    mine = (await api.start("mia", voice))["session"]
    refused(await api.start("mia", voice, mode="COACH"), "MODE_NOT_PERMITTED")
    assert (await api.start("mia", voice, mode="MONITOR"))["session"] == mine


async def test_one_session_per_interaction_whatever_its_mode(api):
    interaction = await live_call(api)
    await api.start("ann", interaction, mode="COACH")
    for mode in MODES:
        error = refused(await api.start("carl", interaction, mode=mode), "ALREADY_MONITORED")
        assert error["currentMonitor"] == {"key": "ann"}
    error = refused(await api.start("root", interaction, mode="BARGE"), "ALREADY_MONITORED")
    assert error["currentMonitor"] == {"key": "ann"}


async def test_sms_is_monitored_once_whatever_the_mode(api):
    interaction = await live_call(api, media="SMS")
    session = (await api.start("ann", interaction))["session"]
    refused(await api.start("carl", interaction), "ALREADY_MONITORED")
    await api.stop("ann", session["id"])
    refused(await api.start("carl", interaction), "MONITORED_ONCE")
    refused(await api.start("ann", interaction, mode="MONITOR"), "MONITORED_ONCE")
    refused(await api.start("carl", interaction, mode="COACH"), "MODE_NOT_AVAILABLE")  # 4a < 11


# --- permissions -----------------------------------------------------------------------------

VIEWER_PERMISSIONS = "{ viewer { key monitoringPermissions } }"


async def permissions_of(api, user: str) -> list[str]:
    return (await api.data(VIEWER_PERMISSIONS, user=user))["viewer"]["monitoringPermissions"]


async def test_permissions_default_by_role(api):
    expected = {
        "ann": ["MONITOR", "COACH", "BARGE"],
        "carl": ["MONITOR", "COACH", "BARGE"],
        "sue": ["MONITOR", "COACH", "BARGE"],
        "root": ["MONITOR", "COACH", "BARGE", "TAKE_OVER"],
        "sam": ["MONITOR", "COACH", "BARGE", "TAKE_OVER"],
        "bob": [],
        "dina": [],
        "tom": [],
        "pbx": [],
    }
    assert {user: await permissions_of(api, user) for user in expected} == expected


async def test_permissions_of_several_roles_are_the_union(api, db):
    await add_users(db, api, entry("sal", roles=["AGENT", "SUPERVISOR"]))
    await add_users(db, api, entry("ada", roles=["SUPERVISOR", "ADMIN"]))
    assert await permissions_of(api, "sal") == ["MONITOR", "COACH", "BARGE"]
    assert await permissions_of(api, "ada") == list(PERMISSIONS)


async def test_directory_permissions_override_the_roles_in_a_fixed_order(api, db):
    await add_users(
        db,
        api,
        entry("tia", permissions=["TAKE_OVER", "BARGE", "MONITOR", "COACH"]),
        entry("mia", permissions=["TAKE_OVER", "MONITOR", "MONITOR"]),
        entry("ned", permissions=[]),
        entry("ida", roles=["ADMIN"], permissions=["COACH"]),
        entry("ray", roles=["AGENT"], permissions=["BARGE"]),
    )
    assert await permissions_of(api, "tia") == list(PERMISSIONS)
    assert await permissions_of(api, "mia") == ["MONITOR", "TAKE_OVER"]
    assert await permissions_of(api, "ned") == []
    assert await permissions_of(api, "ida") == ["COACH"]
    assert await permissions_of(api, "ray") == ["BARGE"]
    # As another user sees them too.
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on User { monitoringPermissions } } }",
        {"id": api.ids["ida"]},
        user="ann",
    )
    assert data["node"] == {"monitoringPermissions": ["COACH"]}


async def test_a_file_without_permissions_gives_the_roles_defaults_again(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]))
    assert await permissions_of(api, "mia") == ["MONITOR"]
    await add_users(db, api, entry("mia"))
    assert await permissions_of(api, "mia") == ["MONITOR", "COACH", "BARGE"]
    interaction = await live_call(api)
    assert (await api.start("mia", interaction, mode="COACH"))["session"]["mode"] == "COACH"


def test_an_unknown_permission_is_refused_naming_it(tmp_path):
    path = tmp_path / "directory.json"
    users = [entry("ann"), entry("zoe", permissions=["MONITOR", "WHISPER"])]
    path.write_text(json.dumps({"divisions": DIRECTORY["divisions"], "users": users}))
    with pytest.raises(DirectoryFileError) as refusal:
        parse_directory(path)
    message = str(refusal.value)
    assert "users[1] (zoe)" in message and "permissions" in message and "WHISPER" in message


def test_an_unknown_permission_is_refused_by_the_file_model_too():
    with pytest.raises(ValidationError) as refusal:
        DirectoryFile.model_validate(
            {"divisions": DIRECTORY["divisions"], "users": [entry("zoe", permissions=["SPY"])]}
        )
    assert "SPY" in str(refusal.value) and "permissions" in str(refusal.value)


# --- changeMonitoringMode --------------------------------------------------------------------


async def monitored(api, media="VOICE", supervisor="ann", mode=None) -> tuple[str, str]:
    interaction = await live_call(api, media=media)
    result = await api.start(supervisor, interaction, mode=mode)
    assert result["errors"] == [], result
    return interaction, result["session"]["id"]


async def test_change_a_malformed_session_id_is_bad_user_input(api):
    body = await api.raw(
        'mutation { changeMonitoringMode(input: {sessionId: "nope", mode: COACH}) '
        "{ session { id } } }",
        user="ann",
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["data"] is None or body["data"]["changeMonitoringMode"] is None


async def test_change_not_found(api, db):
    interaction, session_id = await monitored(api)
    refused(await api.change_mode("ann", api.ids["bob"], "COACH"), "NOT_FOUND")  # a User id
    refused(await api.change_mode("ann", interaction, "COACH"), "NOT_FOUND")  # an Interaction id
    refused(
        await api.change_mode("ann", encode_id("MonitoringSession", 987654), "COACH"),
        "NOT_FOUND",
    )
    # Not visible: a south supervisor on a north session, though a mode it would refuse too.
    refused(await api.change_mode("sue", session_id, "COACH"), "NOT_FOUND")
    # The monitored agent does not see a silent session: NOT_FOUND, not NOT_SESSION_OWNER.
    refused(await api.change_mode("bob", session_id, "COACH"), "NOT_FOUND")
    refused(await api.change_mode("dina", session_id, "MONITOR"), "NOT_FOUND")
    assert (await session_node(api, session_id))["mode"] == "MONITOR"


async def test_change_not_session_owner(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]))
    _, session_id = await monitored(api)
    refused(await api.change_mode("carl", session_id, "COACH"), "NOT_SESSION_OWNER")
    # An ADMIN of the agent's division may stop it, but only its monitor may switch it.
    refused(await api.change_mode("root", session_id, "COACH"), "NOT_SESSION_OWNER")
    # Before MODE_NOT_PERMITTED and MODE_NOT_AVAILABLE.
    refused(await api.change_mode("mia", session_id, "BARGE"), "NOT_SESSION_OWNER")
    _, chat_session = await monitored(api, media="CHAT")
    refused(await api.change_mode("carl", chat_session, "COACH"), "NOT_SESSION_OWNER")
    assert (await session_node(api, session_id))["mode"] == "MONITOR"


async def test_change_not_session_owner_comes_before_session_ended(api):
    _, session_id = await monitored(api)
    await api.stop("ann", session_id)
    refused(await api.change_mode("carl", session_id, "COACH"), "NOT_SESSION_OWNER")


async def test_change_an_agent_of_the_interaction_sees_a_disclosed_session_but_does_not_own_it(
    api,
):
    _, session_id = await monitored(api, mode="COACH")
    refused(await api.change_mode("bob", session_id, "MONITOR"), "NOT_SESSION_OWNER")


async def test_change_session_ended(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR"]))
    _, stopped = await monitored(api)
    await api.stop("ann", stopped)
    error = refused(await api.change_mode("ann", stopped, "COACH"), "SESSION_ENDED")
    assert "ended" in error["message"]
    refused(await api.change_mode("ann", stopped, "MONITOR"), "SESSION_ENDED")  # even its mode
    # Before MODE_NOT_PERMITTED and MODE_NOT_AVAILABLE.
    interaction, of_mia = await monitored(api, supervisor="mia")
    await api.end(interaction)  # the session ends INTERACTION_ENDED
    refused(await api.change_mode("mia", of_mia, "COACH"), "SESSION_ENDED")
    chat, of_chat = await monitored(api, media="CHAT")
    await api.disconnect(chat, "bob")  # the session ends AGENT_DISCONNECTED
    refused(await api.change_mode("ann", of_chat, "COACH"), "SESSION_ENDED")


async def test_change_mode_not_permitted(api, db):
    await add_users(db, api, entry("mia", permissions=["MONITOR", "BARGE"]))
    _, session_id = await monitored(api, supervisor="mia")
    error = refused(await api.change_mode("mia", session_id, "COACH"), "MODE_NOT_PERMITTED")
    assert "coach" in error["message"]
    # Before MODE_NOT_AVAILABLE: COACH is neither permitted nor available on a chat.
    _, chat_session = await monitored(api, media="CHAT", supervisor="mia")
    refused(await api.change_mode("mia", chat_session, "COACH"), "MODE_NOT_PERMITTED")
    assert (await api.change_mode("mia", session_id, "BARGE"))["session"]["mode"] == "BARGE"


async def test_change_mode_not_available(api):
    _, chat = await monitored(api, media="CHAT")
    refused(await api.change_mode("ann", chat, "COACH"), "MODE_NOT_AVAILABLE")
    _, sms = await monitored(api, media="SMS")
    refused(await api.change_mode("ann", sms, "COACH"), "MODE_NOT_AVAILABLE")
    refused(await api.change_mode("ann", sms, "BARGE"), "MODE_NOT_AVAILABLE")
    assert (await api.change_mode("ann", chat, "BARGE"))["session"]["mode"] == "BARGE"


async def test_a_refused_change_records_nothing(api, db):
    _, session_id = await monitored(api, media="CHAT")
    before = await session_node(api, session_id)
    logged = len(await log_rows(db))
    for user, mode in (("carl", "BARGE"), ("sue", "BARGE"), ("ann", "COACH")):
        assert (await api.change_mode(user, session_id, mode))["errors"]
    assert await session_node(api, session_id) == before
    assert len(await log_rows(db)) == logged


async def test_the_current_mode_again_changes_nothing_and_records_nothing(api, db):
    _, session_id = await monitored(api, mode="COACH")
    before = await session_node(api, session_id)
    logged = await log_rows(db)
    result = await api.change_mode("ann", session_id, "COACH")
    assert result["errors"] == []
    assert result["session"]["mode"] == "COACH"
    assert result["session"]["modeHistory"] == before["modeHistory"]
    assert await session_node(api, session_id) == before
    assert [row.position for row in await log_rows(db)] == [row.position for row in logged]


async def test_a_change_appends_to_the_history_and_records_an_event(api, db):
    interaction, session_id = await monitored(api)
    steps = ["COACH", "BARGE", "MONITOR", "BARGE"]
    for mode in steps:
        result = await api.change_mode("ann", session_id, mode)
        assert result["errors"] == [] and result["session"]["mode"] == mode
        assert result["session"]["state"] == "ACTIVE"
        await asyncio.sleep(0.01)  # distinct times
    node = await session_node(api, session_id)
    assert node["mode"] == "BARGE"
    history = node["modeHistory"]
    assert [step["mode"] for step in history] == ["MONITOR", *steps]
    times = [datetime.fromisoformat(step["at"]) for step in history]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] == datetime.fromisoformat(node["startedAt"])
    rows = await log_rows(db, session_id=pk(session_id, "MonitoringSession"))
    assert [row.kind.value for row in rows] == ["MONITORING_STARTED"] + [
        "MONITORING_MODE_CHANGED"
    ] * len(steps)
    assert {row.interaction_id for row in rows} == {pk(interaction, "Interaction")}
    # Each event is stamped with the time of its history entry.
    assert [row.occurred_at for row in rows[1:]] == times[1:]


async def test_the_silent_rule_a_session_is_disclosed_once_coached_or_barged(api):
    """The agent does not see a MONITOR session; once coached, they do, also after it goes
    back to MONITOR."""
    SESSIONS = """query($id: ID!) { interaction(id: $id) {
      monitoringSessions { id mode } activeMonitoring { id }
      participants { purpose user { key } } } }"""
    interaction, session_id = await monitored(api)
    as_bob = (await api.data(SESSIONS, {"id": interaction}, user="bob"))["interaction"]
    assert as_bob["monitoringSessions"] == [] and as_bob["activeMonitoring"] is None
    assert "MONITOR" not in [p["purpose"] for p in as_bob["participants"]]
    assert await session_node(api, session_id, user="bob") is None

    await api.change_mode("ann", session_id, "COACH")
    await api.change_mode("ann", session_id, "MONITOR")
    as_bob = (await api.data(SESSIONS, {"id": interaction}, user="bob"))["interaction"]
    assert as_bob["monitoringSessions"] == [{"id": session_id, "mode": "MONITOR"}]
    assert as_bob["activeMonitoring"] == {"id": session_id}
    assert ("MONITOR", {"key": "ann"}) in [
        (p["purpose"], p["user"]) for p in as_bob["participants"]
    ]
    assert (await session_node(api, session_id, user="bob"))["id"] == session_id


async def test_a_session_only_ever_in_monitor_mode_is_never_disclosed(api):
    interaction, session_id = await monitored(api)
    await api.change_mode("ann", session_id, "MONITOR")  # a no-op discloses nothing either
    await api.stop("ann", session_id)
    data = await api.data(
        "query($id: ID!) { interaction(id: $id) { monitoringSessions { id } } }",
        {"id": interaction},
        user="bob",
    )
    assert data["interaction"]["monitoringSessions"] == []


# --- MODE_CHANGED events over a real server --------------------------------------------------

SESSION_FEED = """subscription($interactionId: ID) {
  monitoringSessionChanged(interactionId: $interactionId) {
    cursor kind session { id state mode modeHistory { mode } }
  }
}"""
INTERACTION_FEED = """subscription($interactionId: ID) {
  interactionChanged(interactionId: $interactionId) {
    cursor kind session { id mode }
  }
}"""


async def session_events(subscriber: Subscriber, session_id: str, count: int) -> list[dict]:
    """The events about this session, once `count` have arrived (bounded wait). Others are
    left out: a subscriber may also get events committed just before it subscribed, while
    the log's reader was held back behind some older open transaction."""

    def about_it() -> list[dict]:
        return [e for e in subscriber.events if (e["session"] or {}).get("id") == session_id]

    async with subscriber.arrived:
        await asyncio.wait_for(subscriber.arrived.wait_for(lambda: len(about_it()) >= count), 10)
    return about_it()


async def test_mode_changes_reach_both_subscriptions(server, live_api):
    api = live_api
    interaction = await live_call(api)
    token = api.token
    async with (
        Subscriber(server, token("ann"), SESSION_FEED, interactionId=interaction) as sessions,
        Subscriber(server, token("root"), INTERACTION_FEED, interactionId=interaction) as feed,
        Subscriber(server, token("bob"), INTERACTION_FEED, interactionId=interaction) as bob,
    ):
        # Each step waits for its events before the next change commits: an event shows the
        # session as it is when delivered.
        session_id = (await api.start("ann", interaction))["session"]["id"]
        await session_events(sessions, session_id, 1)
        await session_events(feed, session_id, 1)
        for count, mode in enumerate(["COACH", "BARGE"], start=2):
            assert (await api.change_mode("ann", session_id, mode))["errors"] == []
            await session_events(sessions, session_id, count)
            await session_events(feed, session_id, count)
        await api.change_mode("ann", session_id, "BARGE")  # the current mode: no event
        await api.stop("ann", session_id)
        await session_events(sessions, session_id, 4)
        await session_events(feed, session_id, 4)
        await session_events(bob, session_id, 3)
        for subscriber in (sessions, feed, bob):
            await quiet(subscriber)  # nothing more comes
        of_sessions = await session_events(sessions, session_id, 4)
        of_interaction = await session_events(feed, session_id, 4)
        told_bob = await session_events(bob, session_id, 3)
    assert [e["kind"] for e in of_sessions] == ["STARTED", "MODE_CHANGED", "MODE_CHANGED", "ENDED"]
    assert [e["session"]["mode"] for e in of_sessions] == ["MONITOR", "COACH", "BARGE", "BARGE"]
    assert [[s["mode"] for s in e["session"]["modeHistory"]] for e in of_sessions[1:3]] == [
        ["MONITOR", "COACH"],
        ["MONITOR", "COACH", "BARGE"],
    ]
    assert len({e["cursor"] for e in of_sessions}) == 4
    assert [(e["kind"], e["session"]["mode"]) for e in of_interaction] == [
        ("MONITORING_STARTED", "MONITOR"),
        ("MONITORING_MODE_CHANGED", "COACH"),
        ("MONITORING_MODE_CHANGED", "BARGE"),
        ("MONITORING_ENDED", "BARGE"),
    ]
    # The silent rule on the feed: the agent is told from the first COACH on, never of the
    # silent start.
    assert [e["kind"] for e in told_bob] == [
        "MONITORING_MODE_CHANGED",
        "MONITORING_MODE_CHANGED",
        "MONITORING_ENDED",
    ]


async def test_a_refused_change_sends_no_event(server, live_api):
    api = live_api
    interaction = await live_call(api, media="CHAT")
    async with Subscriber(
        server, api.token("ann"), SESSION_FEED, interactionId=interaction
    ) as sessions:
        session_id = (await api.start("ann", interaction))["session"]["id"]
        await session_events(sessions, session_id, 1)
        refused(await api.change_mode("ann", session_id, "COACH"), "MODE_NOT_AVAILABLE")
        refused(await api.change_mode("carl", session_id, "BARGE"), "NOT_SESSION_OWNER")
        await api.change_mode("ann", session_id, "MONITOR")  # the current mode
        assert (await api.change_mode("ann", session_id, "BARGE"))["errors"] == []
        await session_events(sessions, session_id, 2)
        await quiet(sessions)
        events = await session_events(sessions, session_id, 2)
    assert [(e["kind"], e["session"]["mode"]) for e in events] == [
        ("STARTED", "MONITOR"),
        ("MODE_CHANGED", "BARGE"),
    ]


# --- Monitorability.modes and canTakeOver agree with the mutations ---------------------------

# Users beside the test directory, with the permissions the directory gives them.
EXTRA_USERS = [
    entry("mia", permissions=["MONITOR"]),
    entry("ned", permissions=[]),
    entry("ola", permissions=["MONITOR", "BARGE"]),
    entry("pat", permissions=["MONITOR", "TAKE_OVER"]),
    entry("ray", roles=["AGENT"], permissions=PERMISSIONS),
]
ROLE_DEFAULTS = {"SUPERVISOR": {"MONITOR", "COACH", "BARGE"}, "ADMIN": set(PERMISSIONS)}
USERS = {u["key"]: u for u in DIRECTORY["users"] + EXTRA_USERS}


def granted(user: str) -> set[str]:
    entry_ = USERS[user]
    if "permissions" in entry_:
        return set(entry_["permissions"])
    return set().union(*(ROLE_DEFAULTS.get(role, set()) for role in entry_["roles"]))


def expected_modes(user: str, media: str) -> list[str]:
    """The test's own reading of the contract, for a fresh call of bob (north)."""
    entry_ = USERS[user]
    may_monitor = {"SUPERVISOR", "ADMIN"} & set(entry_["roles"])
    if not may_monitor or entry_["division"] != "north" or "MONITOR" not in granted(user):
        return []  # startMonitoring (MONITOR, its default) refuses: allowed is false
    return [mode for mode in MODES if mode in granted(user) and mode in AVAILABLE[media]]


async def accepted_starts(api, user: str, media: str) -> list[str]:
    """The modes in which startMonitoring succeeds, each on a fresh call of bob."""
    accepted = []
    for mode in MODES:
        result = await api.start(user, await live_call(api, media=media), mode=mode)
        if not result["errors"]:
            assert result["session"]["mode"] == mode
            accepted.append(mode)
    return accepted


AGREEMENT_USERS = ["ann", "root", "sam", "dina", "pbx", "mia", "ned", "ola", "pat", "ray"]


@pytest.mark.parametrize("media", ["VOICE", "CHAT", "SMS", "EMAIL"])
@pytest.mark.parametrize("user", AGREEMENT_USERS)
async def test_modes_are_what_start_monitoring_accepts(api, db, user, media):
    await add_users(db, api, *EXTRA_USERS)
    verdict = await monitorability(api, user, await live_call(api, media=media))
    accepted = await accepted_starts(api, user, media)
    assert verdict["modes"] == accepted, (verdict, accepted)
    assert verdict["modes"] == expected_modes(user, media)
    assert verdict["allowed"] is bool(accepted), verdict
    assert verdict["canTakeOver"] is False  # no session of the viewer's to take over
    if not verdict["allowed"]:
        assert verdict["modes"] == [] and verdict["reason"] is not None


@pytest.mark.parametrize("media", ["VOICE", "CHAT", "SMS"])
@pytest.mark.parametrize("user", ["ann", "root", "mia", "ola", "pat"])
async def test_modes_of_the_viewers_own_session_are_what_change_accepts(api, db, user, media):
    await add_users(db, api, *EXTRA_USERS)

    async def own_session() -> tuple[str, str]:
        interaction = await live_call(api, media=media)
        result = await api.start(user, interaction)
        assert result["errors"] == [], result
        return interaction, result["session"]["id"]

    interaction, _ = await own_session()
    verdict = await monitorability(api, user, interaction)
    assert verdict["allowed"] is True and verdict["reason"] is None
    accepted = []
    for mode in MODES:
        _, session_id = await own_session()
        if not (await api.change_mode(user, session_id, mode))["errors"]:
            accepted.append(mode)
    assert verdict["modes"] == accepted
    assert accepted == [m for m in MODES if m in granted(user) and m in AVAILABLE[media]]
    _, session_id = await own_session()
    taken = await api.take_over(user, session_id)
    assert verdict["canTakeOver"] is (taken["errors"] == []), (verdict, taken)
    assert verdict["canTakeOver"] is ("TAKE_OVER" in granted(user) and media in TAKE_OVER_MEDIA)
    # Another supervisor, on the same session: not allowed, no modes, no take over.
    other = await monitorability(api, "carl", interaction)
    assert other == {
        "allowed": False,
        "reason": "ALREADY_MONITORED",
        "modes": [],
        "canTakeOver": False,
    }


async def test_modes_follow_the_session_as_it_changes(api):
    interaction, session_id = await monitored(api, media="CHAT", supervisor="root")
    assert await monitorability(api, "root", interaction) == {
        "allowed": True,
        "reason": None,
        "modes": ["MONITOR", "BARGE"],
        "canTakeOver": True,
    }
    await api.change_mode("root", session_id, "BARGE")
    assert (await monitorability(api, "root", interaction))["modes"] == ["MONITOR", "BARGE"]
    await api.stop("root", session_id)
    # Stopped: a chat can be monitored again, in a new session; nothing to take over.
    assert await monitorability(api, "root", interaction) == {
        "allowed": True,
        "reason": None,
        "modes": ["MONITOR", "BARGE"],
        "canTakeOver": False,
    }


async def test_a_viewer_without_monitor_permission_contract_literal_reading(api, db):
    """Contract ambiguity (reported): `allowed` is what startMonitoring answers for its
    default mode, MONITOR, and `modes` is empty when `allowed` is false; so a supervisor
    permitted to COACH only is told nothing is possible, though startMonitoring(mode: COACH)
    succeeds. This pins that literal reading."""
    await add_users(db, api, entry("cy", permissions=["COACH"]))
    interaction = await live_call(api)
    verdict = await monitorability(api, "cy", interaction)
    assert verdict == {
        "allowed": False,
        "reason": "MODE_NOT_PERMITTED",
        "modes": [],
        "canTakeOver": False,
    }
    assert (await api.start("cy", interaction, mode="COACH"))["session"]["mode"] == "COACH"
