"""A contact-center floor that shows every visibility case, built through the API.

On top of the test directory (tests/conftest.py): two users with both AGENT and SUPERVISOR
roles (max, the connected agent of a call that carl monitors; nia, who was an agent of a
call that root still monitors, and of an SMS monitored once), and two queues whose members
cross divisions (tom, of south, is a member of north's Escalations; bob, of north, of south's
Retention).

The interactions, by label (the queue's division first; "monitors" is an ACTIVE session):

    billing_voice        north  bob                         ann monitors bob
    billing_chat         north  waiting
    billing_email        north  waiting (not monitorable)
    billing_tom          north  tom, a south agent          sue monitors tom
    billing_dropped      north  dina, then none: waiting    ann's session ended with her
    max_call             north  max (AGENT+SUPERVISOR)      carl monitors max
    nia_call             north  nia then dina               root monitors dina
    carl_call            north  carl (a supervisor)         ann monitors carl
    support_multi        north  eli, and tom earlier        carl monitors eli
    support_sms          north  nia earlier, eli            carl's session stopped
    support_ended        north  dina, ended                 carl's session ended with it
    escalations_waiting  north  waiting
    sales_voice          south  tom                         sue monitors tom
    sales_sms            south  waiting
    sales_callback       south  waiting
    sales_ended          south  tom, ended
    sales_chat_north     south  eli, a north agent          ann monitors eli
    retention_call       south  bob earlier, tom            sue monitors tom
"""

from dataclasses import dataclass

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
EXTRA_USERS = ("max", "nia")
VIEWERS = tuple(user["key"] for user in DIRECTORY["users"]) + EXTRA_USERS


@dataclass
class FloorIds:
    interactions: dict[str, str]  # label -> Interaction id
    sessions: dict[str, str]  # label -> MonitoringSession id (the last one started there)


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

    async def monitor(self, label: str, supervisor: str, agent: str | None = None) -> str:
        result = await self.api.start(supervisor, self.floor.interactions[label], agent)
        assert result["session"], (label, supervisor, result)
        self.floor.sessions[label] = result["session"]["id"]
        return result["session"]["id"]

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
    await b.monitor("support_multi", "carl", "eli")
    await b.create("support_sms", "support", "SMS", "nia")
    await b.disconnect("support_sms", "nia")
    await api.connect(b.floor.interactions["support_sms"], "eli")
    session = await b.monitor("support_sms", "carl")
    assert (await api.stop("carl", session))["errors"] == []
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
    await b.monitor("sales_chat_north", "ann")
    await b.create("retention_call", "retention", "VOICE", "bob", "tom")
    await b.disconnect("retention_call", "bob")
    await b.monitor("retention_call", "sue", "tom")
    return b.floor


@pytest.fixture
async def floor(api, db) -> FloorIds:
    """The floor above, on the test database; `api.ids` also names max, nia and the new
    queues."""
    await _load_extra_directory(db, api.ids)
    return await build_floor(api)
