"""The leaks issue #11 reports, one small test each, on the floor of conftest.py.

(a) Silent monitoring is silent: an agent Ann monitors (bob), a user with both AGENT and
    SUPERVISOR roles who is the connected agent of the call Carl monitors (max), and one who
    was an agent of a call Root still monitors (nia) see no MONITOR participant, no session
    (activeMonitoring, monitoredBy, monitoringSessions, node) and no monitorability that
    names or implies the monitor.
(b) A queue reached only through a visible interaction is a reference: Ann (north) sees the
    Sales queue (south) of a chat that Eli (north) took, without its members; `node` and
    `queueActivity` of Sales are null for her.
(c) The silent rule is per session: an agent sees the sessions of their interaction that were
    disclosed (coached, barged, taken over), with their MONITOR participants and monitors,
    and none of the silent ones, before or after.
"""

OWN_INTERACTION = """
query($id: ID!, $session: ID!) {
  interaction(id: $id) {
    participants { purpose user { key } }
    agents {
      user { key }
      monitoredBy { id }
      monitorability { reason currentMonitor { key } message }
    }
    activeMonitoring { id }
    monitoringSessions { id }
  }
  node(id: $session) { id }
}
"""

# viewer, the interaction they take or took part in as an agent, and who monitors it
MONITORED = [
    ("bob", "billing_voice", "ann"),
    ("max", "max_call", "carl"),
    ("nia", "nia_call", "root"),
]


def _traces_of_monitoring(data: dict, monitor_name: str) -> list[str]:
    """Everything in the answer that tells of the session: empty when silent."""
    interaction = data["interaction"]
    traces = [
        f"MONITOR participant {p['user']}"
        for p in interaction["participants"]
        if p["purpose"] == "MONITOR"
    ]
    if interaction["activeMonitoring"] is not None:
        traces.append(f"activeMonitoring {interaction['activeMonitoring']}")
    traces.extend(f"monitoringSessions {s}" for s in interaction["monitoringSessions"])
    for agent in interaction["agents"]:
        key = agent["user"]["key"]
        if agent["monitoredBy"] is not None:
            traces.append(f"{key}: monitoredBy {agent['monitoredBy']}")
        able = agent["monitorability"] or {}
        if able.get("reason") in ("ALREADY_MONITORED", "MONITORED_ONCE"):
            traces.append(f"{key}: monitorability says {able['reason']}")
        if able.get("currentMonitor") is not None:
            traces.append(f"{key}: currentMonitor {able['currentMonitor']}")
        if monitor_name in (able.get("message") or ""):
            traces.append(f"{key}: monitorability message {able['message']!r}")
    if data["node"] is not None:
        traces.append(f"node(session) {data['node']}")
    return traces


async def test_the_monitored_agent_sees_no_trace_of_monitoring(api, floor):
    traces = {}
    for viewer, label, monitor in MONITORED:  # one floor for all: it takes a while to build
        variables = {"id": floor.interactions[label], "session": floor.sessions[label]}
        data = await api.data(OWN_INTERACTION, variables, user=viewer)
        assert data["interaction"] is not None, "their own interaction is visible to them"
        monitor_name = (await api.data("{ viewer { name } }", user=monitor))["viewer"]["name"]
        traces[viewer, label] = _traces_of_monitoring(data, monitor_name)
    assert traces == {(viewer, label): [] for viewer, label, _ in MONITORED}


QUEUE_BY_REFERENCE = """
query($id: ID!, $queue: ID!) {
  interaction(id: $id) { queue { id key name division { key } members { key } } }
  node(id: $queue) { id }
  queueActivity(queueId: $queue) { queue { id } }
}
"""


async def test_a_queue_seen_through_an_interaction_shows_no_members(api, floor):
    sales = api.ids["sales"]
    variables = {"id": floor.interactions["sales_chat_north"], "queue": sales}
    data = await api.data(QUEUE_BY_REFERENCE, variables, user="ann")
    assert data == {
        "interaction": {
            "queue": {
                "id": sales,
                "key": "sales",
                "name": "Sales",
                "division": {"key": "south"},
                "members": [],
            }
        },
        "node": None,
        "queueActivity": None,
    }


DISCLOSED = """
query($id: ID!, $monitor: ID!) {
  interaction(id: $id) {
    participants { purpose user { key } }
    agents { user { key } monitoredBy { id } }
    activeMonitoring { id }
    monitoringSessions { id mode modeHistory { mode } endReason }
  }
  node(id: $monitor) { id }
}
"""

# viewer, their interaction, the sessions they may see there (by their order among those
# started there), who monitors (or monitored) in those, the current mode of each, whether the
# visible one is the active one
AGENT_SEES = [
    ("nia", "several_voice", [1], "carl", [["COACH"]], False),
    ("eli", "barged_chat", [0], "kim", [["MONITOR", "BARGE", "MONITOR"]], True),
    ("root", "taken_chat", [1], "root", [["MONITOR"]], False),
    ("bob", "retention_barge", [0], "sue", [["MONITOR", "BARGE"]], True),
    ("max", "coached_max", [0], "carl", [["COACH"]], True),
]


async def test_an_agent_sees_exactly_the_disclosed_sessions(api, floor):
    for viewer, label, seen, monitor, modes, active in AGENT_SEES:
        case = (viewer, label)
        sessions = floor.all_sessions[label]
        variables = {"id": floor.interactions[label], "monitor": api.ids[monitor]}
        data = await api.data(DISCLOSED, variables, user=viewer)
        interaction = data["interaction"]
        listed = interaction["monitoringSessions"]
        assert [s["id"] for s in listed] == [sessions[i] for i in seen], case
        assert [[m["mode"] for m in s["modeHistory"]] for s in listed] == modes, case
        monitors = [
            p["user"]["key"] for p in interaction["participants"] if p["purpose"] == "MONITOR"
        ]
        assert monitors == [monitor] * len(seen), case
        expected_active = {"id": sessions[seen[-1]]} if active else None
        assert interaction["activeMonitoring"] == expected_active, case
        assert expected_active in [a["monitoredBy"] for a in interaction["agents"]], case
        assert data["node"] == {"id": api.ids[monitor]}, (
            "the monitor of a disclosed session",
            case,
        )
