"""The README's GraphiQL walk-through, run as a newcomer runs it: every document as written
in the README's newcomer section, in order, against a real `binocular demo` process, with
the tokens it prints.

The simulator ends interactions when it likes, and North's three agents are not always on a
call or a chat. So each part picks the newest fitting interaction on the floor, starts again
on a fresh one when the simulator ended it mid-way (a refusal such as INTERACTION_ENDED or
SESSION_ENDED, never anything else), and, when the floor offers none in time or the retries
are used up, places one through the README's own `Place` and `Connect` as the telephony
platform, which the simulator never ends. Every wait is bounded.
"""

import re
import textwrap
import time

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from tests.demo.test_demo_process import printed_address, running_demo

NEWCOMER = "## For the newcomer: the demo"
RATE = "2"  # new interactions per second: North's agents are busy from the first seconds
START_SECONDS = 30  # for the demo to answer /healthz
FLOOR_SECONDS = 12  # for a fitting interaction on the floor, before placing one
ATTEMPTS = 3  # the last one on a placed interaction
POLL = 0.5
ANN = "Ann Lee"
# What a start may meet when the simulator ends the interaction or its agent leaves first.
START_RACES = {"INTERACTION_ENDED", "AGENT_NOT_ON_INTERACTION", "NO_AGENT"}
SESSION = "query($id: ID!) { node(id: $id) { id } }"  # for the agent: not a README step


def walkthrough(repo_root) -> dict[str, str]:
    """Operation name -> the README block that holds it, as written (GraphiQL sends the
    whole tab and the operation's name)."""
    section = (repo_root / "README.md").read_text().split(NEWCOMER, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```graphql\n(.*?)^\1```", section, re.MULTILINE | re.DOTALL)
    documents = {}
    for _, block in blocks:
        block = textwrap.dedent(block)
        for definition in parse(block).definitions:
            if isinstance(definition, OperationDefinitionNode):
                documents[definition.name.value] = block
    return documents


@pytest.fixture
def busy_demo(tmp_path):
    """`binocular demo` as in tests/demo/test_demo_process.py, with more traffic."""
    with running_demo(tmp_path, "--rate", RATE, start_seconds=START_SECONDS) as running:
        yield running


class Walk:
    """The README's documents, sent as GraphiQL sends them, with the printed tokens."""

    def __init__(self, demo, documents: dict[str, str]) -> None:
        self.demo = demo
        self.documents = documents
        self.run_names: set[str] = set()
        self.client = httpx.Client(base_url=demo.url, timeout=10)
        self.tokens: dict[str, str] = {}
        self.tried: set[str] = set()  # interactions a part began on
        self.placed = 0
        self.panel: dict[str, dict] = {}  # Ann's panel after the take over, by interaction

    def token(self, name: str) -> str:
        if name not in self.tokens:
            self.tokens[name] = printed_address(self.demo, name).split("#token=", 1)[1]
        return self.tokens[name]

    def post(self, as_user: str, query: str, name: str | None = None, **variables) -> dict:
        body = {"query": query, "variables": variables}
        if name:
            body["operationName"] = name
        response = self.client.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {self.token(as_user)}"}
        )
        answer = response.json()
        assert response.status_code == 200 and "errors" not in answer, (name, answer)
        return answer["data"]

    def step(self, name: str, as_user: str = ANN, **variables) -> dict:
        self.run_names.add(name)
        return self.post(as_user, self.documents[name], name, **variables)

    def floor(self) -> list[dict]:
        """Interactions on Ann's floor, each queue's newest first (it lists oldest first):
        those most likely to last a while."""
        data = self.step("Floor")
        assert data["viewer"] == {
            "name": ANN,
            "monitoringPermissions": ["MONITOR", "COACH", "BARGE", "TAKE_OVER"],
        }
        found = [i for queue in ("billing", "support") for i in data[queue]["interacting"]]
        return found[::-1]

    def fitting(self, media: str, modes: set[str], only: str | None = None):
        """An interaction of that media type, not tried yet, with a connected agent Ann may
        monitor in those modes, and that agent; None when there is none."""
        for interaction in self.floor():
            if interaction["mediaType"] != media or interaction["id"] in self.tried:
                continue
            if only and interaction["id"] != only:
                continue
            for agent in interaction["agents"]:
                able = agent["monitorability"]
                if (
                    agent["state"] == "CONNECTED"
                    and able["allowed"]
                    and modes <= set(able["modes"])
                ):
                    assert able["canTakeOver"] is False  # not before Ann monitors it
                    return interaction, agent
        return None

    def find(self, media: str, modes: set[str], place: bool) -> tuple[dict, dict]:
        """The newest fitting interaction on the floor; one placed when there is none in
        FLOOR_SECONDS, or at once with `place`."""
        deadline = time.monotonic() + (0 if place else FLOOR_SECONDS)
        while time.monotonic() < deadline:
            if found := self.fitting(media, modes):
                break
            time.sleep(POLL)
        else:
            self.placed += 1
            created = self.step(
                "Place", "Telephony", externalId=f"walkthrough-{self.placed}", media=media
            )["createInteraction"]
            assert created["errors"] == [], created
            interaction = created["interaction"]["id"]
            connected = self.step("Connect", "Telephony", interaction=interaction)
            assert connected["connectAgent"] == {
                "interaction": {"state": "CONNECTED"},
                "errors": [],
            }
            found = self.fitting(media, modes, only=interaction)
            assert found, f"{interaction} is not on the floor"
        self.tried.add(found[0]["id"])
        return found

    def start(self, interaction: dict, agent: dict) -> dict | None:
        started = self.step("Start", interaction=interaction["id"], agent=agent["user"]["id"])[
            "startMonitoring"
        ]
        if started["errors"]:
            assert {e["code"] for e in started["errors"]} <= START_RACES, started
            return None
        session = started["session"]
        assert session["state"] == "ACTIVE" and session["mode"] == "MONITOR", session
        assert session["agent"] == {"name": agent["user"]["name"]}
        return session

    def agent_sees(self, agent: dict, session: dict) -> bool:
        return self.post(agent["user"]["name"], SESSION, id=session["id"])["node"] is not None

    def change(self, session: dict, mode: str, history: list[str]) -> bool:
        changed = self.step("Change", session=session["id"], mode=mode)["changeMonitoringMode"]
        if changed["errors"]:
            assert [e["code"] for e in changed["errors"]] == ["SESSION_ENDED"], changed
            return False
        assert changed["session"]["mode"] == mode
        steps = changed["session"]["modeHistory"]
        assert [s["mode"] for s in steps] == history
        assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
        return True

    def call(self, place: bool) -> tuple[dict, dict] | None:
        """Steps 1 to 3 on a call: its interaction and agent, or None to start again."""
        interaction, agent = self.find("VOICE", {"MONITOR", "COACH", "BARGE"}, place)
        session = self.start(interaction, agent)
        if session is None:
            return None
        assert not self.agent_sees(agent, session)  # silent while only ever MONITOR
        if not self.change(session, "COACH", ["MONITOR", "COACH"]):
            return None
        assert self.agent_sees(agent, session)  # disclosed from the first coach on
        if not self.change(session, "BARGE", ["MONITOR", "COACH", "BARGE"]):
            return None
        return interaction, agent

    def chat(self, place: bool) -> tuple[dict, dict] | None:
        """Steps 4 and 5 on a chat: its interaction and agent, or None to start again."""
        interaction, agent = self.find("CHAT", {"MONITOR", "BARGE"}, place)
        session = self.start(interaction, agent)
        if session is None:
            return None
        now = next((i for i in self.floor() if i["id"] == interaction["id"]), None)
        mine = [a for a in (now or {}).get("agents", []) if a["user"]["id"] == agent["user"]["id"]]
        if not mine or mine[0]["state"] != "CONNECTED":
            return None  # ended, or its agent left, since
        assert mine[0]["monitorability"]["canTakeOver"] is True
        taken = self.step("TakeOver", session=session["id"])["takeOverInteraction"]
        if taken["errors"]:
            assert [e["code"] for e in taken["errors"]] == ["SESSION_ENDED"], taken
            return None
        assert taken["session"] == {"state": "ENDED", "endReason": "TAKEN_OVER"}
        assert taken["interaction"]["state"] == "CONNECTED"
        agents = {(a["name"], a["state"]) for a in taken["interaction"]["agents"]}
        assert {(agent["user"]["name"], "DISCONNECTED"), (ANN, "CONNECTED")} <= agents, agents
        panel = {e["interaction"]["id"]: e for e in self.step("Panel")["interactionPanel"]}
        if interaction["id"] not in panel:
            return None  # the simulator ended the chat since
        assert panel[interaction["id"]] == {
            "monitoring": False,
            "interaction": {"id": interaction["id"], "mediaType": "CHAT"},
            "session": None,
        }
        self.panel = panel
        return interaction, agent

    def part(self, run) -> tuple[dict, dict]:
        for attempt in range(ATTEMPTS):
            if done := run(place=attempt == ATTEMPTS - 1):
                return done
        raise AssertionError("unreachable: the last attempt is on a placed interaction")


def test_the_readme_walkthrough_runs_as_written_on_the_demo(busy_demo, repo_root):
    documents = walkthrough(repo_root)
    assert set(documents) == {
        "Floor",
        "Place",
        "Connect",
        "Start",
        "Change",
        "TakeOver",
        "Panel",
        "Audit",
    }
    walk = Walk(busy_demo, documents)
    # Ann may take over because the demo directory says so; Carl has a supervisor's defaults.
    carl = walk.step("Floor", "Carl Diaz")["viewer"]
    assert carl == {"name": "Carl Diaz", "monitoringPermissions": ["MONITOR", "COACH", "BARGE"]}

    call, call_agent = walk.part(walk.call)
    _, chat_agent = walk.part(walk.chat)
    if call["id"] in walk.panel:  # while the call lasts
        assert walk.panel[call["id"]] == {
            "monitoring": True,
            "interaction": {"id": call["id"], "mediaType": "VOICE"},
            "session": {"mode": "BARGE"},
        }

    audit = walk.step("Audit")["monitoringSessions"]["nodes"]
    # Newest first: the chat taken over, then (past any chats begun again) the call.
    assert audit[0] == {
        "interaction": {"mediaType": "CHAT"},
        "mode": "MONITOR",
        "modeHistory": [{"mode": "MONITOR", "at": audit[0]["modeHistory"][0]["at"]}],
        "state": "ENDED",
        "endReason": "TAKEN_OVER",
        "monitor": {"name": ANN},
        "agent": {"name": chat_agent["user"]["name"]},
    }
    voice = next(n for n in audit if n["interaction"]["mediaType"] == "VOICE")
    assert [step["mode"] for step in voice["modeHistory"]] == ["MONITOR", "COACH", "BARGE"]
    assert voice["mode"] == "BARGE" and voice["monitor"] == {"name": ANN}
    assert voice["agent"] == {"name": call_agent["user"]["name"]}
    assert (voice["state"], voice["endReason"]) in {
        ("ACTIVE", None),
        ("ENDED", "INTERACTION_ENDED"),
        ("ENDED", "AGENT_DISCONNECTED"),
    }, voice

    if walk.placed == 0:  # the fallback's documents work too, as the README offers them
        walk.find("CHAT", {"MONITOR", "BARGE"}, place=True)
    assert walk.run_names == set(documents)
