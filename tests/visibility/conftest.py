"""A contact-center floor that shows every visibility case, built through the API.

On top of the test directory (tests/conftest.py): two users with both AGENT and SUPERVISOR
roles (max, the connected agent of a call that carl monitors silently and of one he coaches;
nia, who was an agent of a call that root still monitors, and of an SMS monitored once, and
is the agent of a call with a silent, a coached and a silent-again session), kim, a
supervisor whose directory entry grants MONITOR, BARGE and TAKE_OVER (no COACH), and two
queues whose members cross divisions (tom, of south, is a member of north's Escalations;
bob, of north, of south's Retention).

The interactions, by label (the queue's division first; "monitors" is an ACTIVE session in
MONITOR mode only, the arrows its modes in order, "stopped" and "took over" ended ones;
"disclosed" marks the sessions the interaction's agents may see):

    billing_voice        north  bob                         ann monitors bob
    billing_chat         north  waiting
    billing_email        north  waiting (not monitorable)
    billing_tom          north  tom, a south agent          sue monitors tom
    billing_dropped      north  dina, then none: waiting    ann's session ended with her
    max_call             north  max (AGENT+SUPERVISOR)      carl monitors max
    nia_call             north  nia then dina               root monitors dina
    carl_call            north  carl (a supervisor)         ann monitors carl
    support_multi        north  eli, and tom earlier        kim monitors eli (may take over)
    support_sms          north  nia earlier, eli            carl's session stopped
    support_ended        north  dina, ended                 carl's session ended with it
    escalations_waiting  north  waiting
    sales_voice          south  tom                         sue monitors tom
    sales_sms            south  waiting
    sales_callback       south  waiting
    sales_ended          south  tom, ended
    sales_chat_north     south  eli, a north agent          root monitors eli (may take over)
    retention_call       south  bob earlier, tom            sue monitors tom
    coached_max          north  max                         carl: COACH (disclosed)
    barged_chat          north  eli (CHAT)                  kim: MONITOR > BARGE > MONITOR
                                                            (disclosed, kim may take over)
    coached_back         north  dina                        ann: MONITOR > COACH > MONITOR
                                                            (disclosed)
    several_voice        north  nia (AGENT+SUPERVISOR)      ann stopped (silent), carl
                                                            COACH stopped (disclosed), ann
                                                            monitors again (silent)
    taken_chat           north  eli, then root (CHAT)       carl stopped (silent); root
                                                            took over (disclosed by the
                                                            take over alone: only MONITOR)
    taken_sms            north  dina, then kim (SMS)        kim: MONITOR, took over
                                                            (disclosed)
    retention_barge      south  bob earlier, tom            sue: MONITOR > BARGE (disclosed:
                                                            bob, of north, sees sue)
    coached_ended        north  dina, ended                 carl: COACH, ended with it
                                                            (disclosed)

After a take over the supervisor is an AGENT of the interaction: root (ADMIN) no longer sees
carl's silent session on taken_chat, kim her own STARTED event on taken_sms (recorded while
silent).
"""

from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import encode_id
from app.models import Queue, User
from tests.conftest import DIRECTORY

_EXISTING = {user["key"]: user for user in DIRECTORY["users"]}

EXTRA_DIRECTORY = {
    "divisions": DIRECTORY["divisions"],
    "users": [
        {
            "key": "max",
            "name": "Max Cole",
            "division": "north",
            "roles": ["AGENT", "SUPERVISOR"],
            "presence": "ON_QUEUE",
        },
        {
            "key": "nia",
            "name": "Nia Reed",
            "division": "north",
            "roles": ["AGENT", "SUPERVISOR"],
            "presence": "AVAILABLE",
        },
        {
            "key": "kim",
            "name": "Kim Novak",
            "division": "north",
            "roles": ["SUPERVISOR"],
            "permissions": ["MONITOR", "BARGE", "TAKE_OVER"],
            "presence": "AVAILABLE",
        },
        # Named again only because the queues below list them: unchanged.
        *(_EXISTING[key] for key in ("bob", "dina", "tom")),
    ],
    "queues": [
        {
            "key": "escalations",
            "name": "Escalations",
            "division": "north",
            "members": ["dina", "max", "tom"],
        },
        {"key": "retention", "name": "Retention", "division": "south", "members": ["bob", "tom"]},
    ],
}
EXTRA_USERS = ("max", "nia", "kim")
VIEWERS = tuple(user["key"] for user in DIRECTORY["users"]) + EXTRA_USERS


@dataclass
class FloorIds:
    interactions: dict[str, str]  # label -> Interaction id
    sessions: dict[str, str]  # label -> MonitoringSession id (the last one started there)
    # label -> every MonitoringSession id started there, oldest first
    all_sessions: dict[str, list[str]] = field(default_factory=dict)


async def _load_extra_directory(db, ids: dict[str, str]) -> None:
    await load_directory(db, DirectoryFile.model_validate(EXTRA_DIRECTORY))
    async with db.read() as session:
        for model in (User, Queue):
            for row in (await session.exec(sa.select(model))).scalars():
                ids[row.key] = encode_id(model.__name__, row.id)


class _Builder:
    def __init__(self, api):
        self.api = api
        self.floor = FloorIds(interactions={}, sessions={})

    async def create(self, label: str, queue: str, media: str = "VOICE", *agents: str) -> str:
        interaction = await self.api.create(queue, media, external_id=f"floor-{label}")
        self.floor.interactions[label] = interaction
        for agent in agents:
            await self.api.connect(interaction, agent)
        return interaction

    async def monitor(
        self, label: str, supervisor: str, agent: str | None = None, mode: str | None = None
    ) -> str:
        result = await self.api.start(supervisor, self.floor.interactions[label], agent, mode)
        assert result["session"] and result["errors"] == [], (label, supervisor, result)
        assert result["session"]["mode"] == (mode or "MONITOR"), result
        session = result["session"]["id"]
        self.floor.sessions[label] = session
        self.floor.all_sessions.setdefault(label, []).append(session)
        return session

    async def switch(self, label: str, supervisor: str, mode: str) -> None:
        """The last session started on `label`, switched to `mode` by its monitor."""
        result = await self.api.change_mode(supervisor, self.floor.sessions[label], mode)
        assert result["errors"] == [] and result["session"]["mode"] == mode, (label, result)

    async def stop(self, label: str, supervisor: str) -> None:
        result = await self.api.stop(supervisor, self.floor.sessions[label])
        assert result["errors"] == [] and result["session"]["state"] == "ENDED", (label, result)

    async def take_over(self, label: str, supervisor: str) -> None:
        result = await self.api.take_over(supervisor, self.floor.sessions[label])
        assert result["errors"] == [], (label, result)
        assert result["session"]["endReason"] == "TAKEN_OVER", result
        agents = {
            p["user"]["key"]
            for p in result["interaction"]["participants"]
            if p["purpose"] == "AGENT" and p["state"] == "CONNECTED"
        }
        assert supervisor in agents, (label, result)

    async def disconnect(self, label: str, agent: str) -> None:
        result = await self.api.disconnect(self.floor.interactions[label], agent)
        assert result["errors"] == [], result

    async def end(self, label: str) -> None:
        result = await self.api.end(self.floor.interactions[label])
        assert result["errors"] == [], result


async def build_floor(api) -> FloorIds:
    b = _Builder(api)
    await b.create("billing_voice", "billing", "VOICE", "bob")
    await b.monitor("billing_voice", "ann")
    await b.create("billing_chat", "billing", "CHAT")
    await b.create("billing_email", "billing", "EMAIL")
    await b.create("billing_tom", "billing", "VOICE", "tom")
    await b.monitor("billing_tom", "sue")
    await b.create("billing_dropped", "billing", "CHAT", "dina")
    await b.monitor("billing_dropped", "ann")
    await b.disconnect("billing_dropped", "dina")  # the session ends AGENT_DISCONNECTED
    await b.create("max_call", "billing", "VOICE", "max")
    await b.monitor("max_call", "carl")
    await b.create("nia_call", "billing", "VOICE", "nia", "dina")
    await b.disconnect("nia_call", "nia")
    await b.monitor("nia_call", "root", "dina")
    await b.create("carl_call", "support", "VOICE", "carl")
    await b.monitor("carl_call", "ann")
    await b.create("support_multi", "support", "CHAT", "eli", "tom")
    await b.disconnect("support_multi", "tom")
    await b.monitor("support_multi", "kim", "eli")
    await b.create("support_sms", "support", "SMS", "nia")
    await b.disconnect("support_sms", "nia")
    await api.connect(b.floor.interactions["support_sms"], "eli")
    await b.monitor("support_sms", "carl")
    await b.stop("support_sms", "carl")
    await b.create("support_ended", "support", "VOICE", "dina")
    await b.monitor("support_ended", "carl")
    await b.end("support_ended")
    await b.create("escalations_waiting", "escalations", "CALLBACK")
    await b.create("sales_voice", "sales", "VOICE", "tom")
    await b.monitor("sales_voice", "sue")
    await b.create("sales_sms", "sales", "SMS")
    await b.create("sales_callback", "sales", "CALLBACK")
    await b.create("sales_ended", "sales", "VOICE", "tom")
    await b.end("sales_ended")
    await b.create("sales_chat_north", "sales", "CHAT", "eli")
    await b.monitor("sales_chat_north", "root")
    await b.create("retention_call", "retention", "VOICE", "bob", "tom")
    await b.disconnect("retention_call", "bob")
    await b.monitor("retention_call", "sue", "tom")
    # Modes: started in COACH, switched to BARGE or COACH and back, several sessions over
    # time on one interaction, take overs (a chat by an ADMIN, an SMS by a supervisor whose
    # directory entry grants TAKE_OVER).
    await b.create("coached_max", "billing", "VOICE", "max")
    await b.monitor("coached_max", "carl", mode="COACH")
    await b.create("barged_chat", "support", "CHAT", "eli")
    await b.monitor("barged_chat", "kim")
    await b.switch("barged_chat", "kim", "BARGE")
    await b.switch("barged_chat", "kim", "MONITOR")
    await b.create("coached_back", "billing", "VOICE", "dina")
    await b.monitor("coached_back", "ann")
    await b.switch("coached_back", "ann", "COACH")
    await b.switch("coached_back", "ann", "MONITOR")
    await b.create("several_voice", "billing", "VOICE", "nia")
    await b.monitor("several_voice", "ann")
    await b.stop("several_voice", "ann")
    await b.monitor("several_voice", "carl", mode="COACH")
    await b.stop("several_voice", "carl")
    await b.monitor("several_voice", "ann")
    await b.create("taken_chat", "support", "CHAT", "eli")
    await b.monitor("taken_chat", "carl")
    await b.stop("taken_chat", "carl")
    await b.monitor("taken_chat", "root")
    await b.take_over("taken_chat", "root")
    await b.create("taken_sms", "billing", "SMS", "dina")
    await b.monitor("taken_sms", "kim")
    await b.take_over("taken_sms", "kim")
    await b.create("retention_barge", "retention", "VOICE", "bob", "tom")
    await b.disconnect("retention_barge", "bob")
    await b.monitor("retention_barge", "sue", "tom")
    await b.switch("retention_barge", "sue", "BARGE")
    await b.create("coached_ended", "support", "VOICE", "dina")
    await b.monitor("coached_ended", "carl", mode="COACH")
    await b.end("coached_ended")
    return b.floor


@pytest.fixture
async def floor(api, db) -> FloorIds:
    """The floor above, on the test database; `api.ids` also names max, nia, kim and the
    new queues."""
    await _load_extra_directory(db, api.ids)
    return await build_floor(api)
