"""Every object of a response, checked against the oracle.

The walk needs no knowledge of the document: a rewritten document (documents.py) makes every
object carry `__typename` and its `id`, and makes every response key name its field. The
walk keeps the chain of enclosing objects, for the rules that depend on how an object was
reached: a queue seen only as an interaction's `queue`, a `Monitorability` under a
participant, the counts of a root field (whose arguments the rewrite kept).

Two kinds of checks: nothing the viewer may not see is there (every object), and nothing
they may see is missing where the answer is a whole list or a single object the oracle can
name: an interaction's participants, monitoringSessions and activeMonitoring, an agent's
monitoredBy, the root `monitoringSessions` page (exactly the visible sessions that match,
newest first), and `node`/`interaction`/`queueActivity` that are null. Without the second,
a policy that hid too much (disclosed sessions kept from the agents, say) would pass.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from app.graphql.ids import decode_node_id
from tests.visibility.documents import Rewritten, field_name
from tests.visibility.oracle import (
    MODES_BY_MEDIA,
    NODE_TYPES,
    TAKE_OVER_MEDIA,
    Floor,
    Sight,
    _enum,
    is_agent,
    is_monitor,
)

# Fields of Interaction that can show monitoring (MONITOR participants among participants).
MONITORING_FIELDS = frozenset({"activeMonitoring", "monitoringSessions", "participants"})
# Types that are only ever checked through the object that holds them.
CHECKED_IN_PLACE = frozenset(
    {"Query", "PageInfo", "InteractionEdge", "QueueEdge", "QueueAgent", "MonitoringSessionEdge"}
)
CHECKED_BY_PARENT = frozenset({"MonitoringModeChange"})  # a MonitoringSession's modeHistory
# Words that tell of monitoring in a Monitorability message, whoever the monitor is: of an
# active session, of a past one.
_ALREADY = re.compile(r"already monitor", re.IGNORECASE)
_BEFORE = re.compile(r"monitored before|monitored once", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    kind: str
    viewer: str
    document: str
    path: str
    value: object

    def describe(self) -> str:
        value = json.dumps(self.value, sort_keys=True)
        value = value if len(value) <= 600 else value[:600] + "..."
        return (
            f"{self.kind}\n    viewer: {self.viewer}\n    at: {self.path}\n    object: {value}"
            f"\n    document: {' '.join(self.document.split())}"
        )


@dataclass
class Tally:
    """What the property test sent, what came back, and what it checked."""

    sent: int = 0
    sent_by_kind: Counter = field(default_factory=Counter)  # root or path documents
    answered: int = 0  # responses with data
    skipped: int = 0  # generated documents whose rewrite did not validate
    refused: Counter = field(default_factory=Counter)  # no data, by first error code
    error_codes: Counter = field(default_factory=Counter)
    objects: Counter = field(default_factory=Counter)  # checked, by __typename
    counts: Counter = field(default_factory=Counter)  # count fields compared with the oracle
    cases: Counter = field(default_factory=Counter)  # the edges of the rules, as reached
    unchecked: Counter = field(default_factory=Counter)  # typenames the oracle has no rule for
    violations: list[Violation] = field(default_factory=list)

    CASES = (
        "queue in its own right",
        "queue by reference",
        "queue by reference, members asked",
        "monitoring asked of an interaction by a silenced viewer",
        "monitoring asked where the viewer sees some sessions and not others",
        "a disclosed session shown to an agent of its interaction",
        "monitorability for a silenced viewer",
        "monitorability that offers modes",
        "monitorability that offers a take over",
        "monitoringSessions page compared",
        "monitoringSessions page after a cursor",
    )

    def add(self, violation: Violation) -> None:
        self.violations.append(violation)

    def kinds(self) -> Counter:
        return Counter(v.kind for v in self.violations)

    def examples(self, per_kind: int = 1) -> list[Violation]:
        seen: Counter = Counter()
        chosen = []
        for violation in self.violations:
            if seen[violation.kind] < per_kind:
                seen[violation.kind] += 1
                chosen.append(violation)
        return chosen


@dataclass(frozen=True)
class Reached:
    """An object of the response and how the walk got there."""

    value: dict
    path: str
    field: str  # the field it is the value of
    parents: tuple[dict, ...]  # enclosing objects, innermost last

    @property
    def parent(self) -> dict | None:
        return self.parents[-1] if self.parents else None

    @property
    def via(self) -> str:
        owner = self.parent["__typename"] if self.parent else "Query"
        return f"{owner}.{self.field}"


def _pk(value: dict) -> tuple[str, int] | None:
    try:
        return decode_node_id(value["id"])
    except Exception:  # noqa: BLE001 - not an id of ours: reported by the caller
        return None


def _values(obj: dict, name: str) -> list:
    """The values of every response key that answers field `name` (aliases included)."""
    return [value for key, value in obj.items() if field_name(key) == name]


class ResponseCheck:
    """The checks of one response, for one viewer."""

    def __init__(
        self,
        floor: Floor,
        sight: Sight,
        viewer: str,
        rewritten: Rewritten,
        tally,
        session_cursors: dict[str, int] | None = None,
        whole: bool = True,
    ):
        self.floor = floor
        self.sight = sight
        self.viewer = viewer
        self.rewritten = rewritten
        self.tally = tally
        self.session_cursors = session_cursors or {}  # cursor -> the session it is at
        # No error in the response: nulls and lists are the server's whole answer, and are
        # checked for what is missing too.
        self.whole = whole

    def run(self, data: dict) -> None:
        for key, value in data.items():
            if value is None and self.whole:
                self._check_null_root(key)
            self._walk(value, key, field_name(key), ())

    def _walk(self, value, path: str, name: str, parents: tuple) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self._walk(item, f"{path}[{index}]", name, parents)
        elif isinstance(value, dict):
            if "__typename" in value:
                self._check(Reached(value, path, name, parents))
                parents = (*parents, value)
            for key, child in value.items():
                self._walk(child, f"{path}.{key}", field_name(key), parents)

    def _violate(self, kind: str, reached: Reached, note: str = "") -> None:
        parent = reached.parent
        if not note and parent is not None and "id" in parent:
            note = f"in {parent['__typename']} {parent['id']}"  # the walk's context, as data
        path = f"{reached.path} ({note})" if note else reached.path
        self.tally.add(Violation(kind, self.viewer, self.rewritten.text, path, reached.value))

    # -- Dispatch ----------------------------------------------------------------------------

    def _check(self, reached: Reached) -> None:
        typename = reached.value["__typename"]
        self.tally.objects[typename] += 1
        if typename in NODE_TYPES:
            self._check_node(typename, reached)
            return
        check = {
            "PanelEntry": self._check_panel_entry,
            "Monitorability": self._check_monitorability,
            "InteractionConnection": self._check_interaction_connection,
            "QueueConnection": self._check_queue_connection,
            "QueueActivity": self._check_queue_activity,
            "MonitoringSessionConnection": self._check_session_connection,
        }.get(typename)
        if check is not None:
            check(reached)
        elif typename in CHECKED_BY_PARENT:
            self._check_in_parent(typename, reached)
        elif typename not in CHECKED_IN_PLACE:
            # Types added after this test: the Node objects under them are checked all the same.
            self.tally.unchecked[typename] += 1

    def _check_node(self, typename: str, reached: Reached) -> None:
        decoded = _pk(reached.value)
        if decoded is None or decoded[0] != typename:
            self._violate(f"{typename} with an id that is not one of its own", reached)
            return
        pk = decoded[1]
        if pk not in self.floor.rows(typename):
            self._violate(f"{typename} that is not in the database", reached)
            return
        getattr(self, f"_check_{typename}")(pk, reached)

    # -- Node types --------------------------------------------------------------------------

    def _check_Interaction(self, pk: int, reached: Reached) -> None:
        if pk not in self.sight.interactions:
            self._violate(f"Interaction of another division, as {reached.via}", reached)
            return
        asked = {field_name(key) for key in reached.value} & MONITORING_FIELDS
        hidden = self.sight.hidden_on(pk)
        if asked and hidden:
            self.tally.cases["monitoring asked of an interaction by a silenced viewer"] += 1
            if self.sight.sessions_on(pk):
                self.tally.cases[
                    "monitoring asked where the viewer sees some sessions and not others"
                ] += 1
        if not self.whole:
            return
        value = reached.value
        visible = self.sight.sessions_on(pk)
        active = next((s.id for s in visible if _enum(s.state) == "ACTIVE"), None)
        self._compare_ids(reached, "monitoringSessions", [s.id for s in visible])
        self._compare_ids(reached, "participants", [p.id for p in self.sight.participants_on(pk)])
        for got in _values(value, "activeMonitoring"):
            self.tally.counts["Interaction.activeMonitoring"] += 1
            got_pk = _pk(got)[1] if isinstance(got, dict) and _pk(got) else None
            if got_pk != active:
                kind = "Interaction.activeMonitoring is not the active session the viewer may see"
                self._violate(kind, reached, f"got {got_pk}, oracle {active}")

    def _compare_ids(self, reached: Reached, name: str, expected: list[int]) -> None:
        """A list field of the object: exactly these objects, in this order."""
        for got in _values(reached.value, name):
            self._compare_list(reached, f"{reached.value['__typename']}.{name}", got, expected)

    def _compare_list(self, reached: Reached, label: str, got, expected: list[int]) -> None:
        if not isinstance(got, list) or not all(isinstance(item, dict) for item in got):
            return
        self.tally.counts[label] += 1
        ids = [(_pk(item) or (None, None))[1] for item in got]
        if ids != expected:
            kind = f"{label} is not exactly what the viewer may see"
            self._violate(kind, reached, f"got {ids}, oracle {expected}")

    def _check_Queue(self, pk: int, reached: Reached) -> None:
        if pk in self.sight.own_queues:
            self.tally.cases["queue in its own right"] += 1
            return
        if not self._is_reference(pk, reached):
            self._violate(
                f"Queue not visible in its own right, outside an interaction, as {reached.via}",
                reached,
            )
            return
        members = _values(reached.value, "members")
        self.tally.cases["queue by reference"] += 1
        self.tally.cases["queue by reference, members asked"] += bool(members)
        if any(members):
            self._violate("Queue members through a reference (Interaction.queue)", reached)

    def _is_reference(self, pk: int, reached: Reached) -> bool:
        """The queue is the `queue` of the visible interaction that encloses it."""
        parent = reached.parent
        if reached.field != "queue" or parent is None or parent["__typename"] != "Interaction":
            return False
        decoded = _pk(parent)
        if decoded is None or decoded[1] not in self.sight.interactions:
            return False
        return self.floor.interactions[decoded[1]].queue_id == pk

    def _check_User(self, pk: int, reached: Reached) -> None:
        if pk not in self.sight.users:
            self._violate(f"User the viewer may not see, as {reached.via}", reached)
            return
        expected = self.floor.permissions(pk)
        for got in _values(reached.value, "monitoringPermissions"):
            self.tally.counts["User.monitoringPermissions"] += 1
            if got is not None and (set(got) != expected or len(got) != len(expected)):
                kind = "User.monitoringPermissions is not the directory's or the roles' defaults"
                self._violate(kind, reached, f"got {got}, oracle {sorted(expected)}")

    def _check_Division(self, pk: int, reached: Reached) -> None:
        if pk not in self.sight.divisions:
            self._violate(f"Division the viewer may not see, as {reached.via}", reached)

    def _check_Participant(self, pk: int, reached: Reached) -> None:
        row = self.floor.participants[pk]
        if pk in self.sight.participants:
            if self.whole:
                self._check_monitored_by(row, reached)
            return
        if row.interaction_id not in self.sight.interactions:
            self._violate(f"Participant of an invisible interaction, as {reached.via}", reached)
        elif is_monitor(row):
            session = self.floor.session_of_monitor.get(pk)
            reason = self.sight.session_hidden_reason(session) if session else "anyone"
            self._violate(
                f"MONITOR participant of a hidden session shown to {reason}, as {reached.via}",
                reached,
            )

    def _check_monitored_by(self, row, reached: Reached) -> None:
        """An AGENT's monitoredBy: the active session monitoring that agent there, where the
        viewer may see it; null otherwise."""
        expected = None
        if is_agent(row):
            expected = next(
                (
                    s.id
                    for s in self.sight.sessions_on(row.interaction_id)
                    if _enum(s.state) == "ACTIVE" and s.agent_id == row.user_id
                ),
                None,
            )
        for got in _values(reached.value, "monitoredBy"):
            self.tally.counts["Participant.monitoredBy"] += 1
            got_pk = _pk(got)[1] if isinstance(got, dict) and _pk(got) else None
            if got_pk != expected:
                kind = "Participant.monitoredBy is not the active session the viewer may see"
                self._violate(kind, reached, f"got {got_pk}, oracle {expected}")

    def _check_MonitoringSession(self, pk: int, reached: Reached) -> None:
        row = self.floor.sessions[pk]
        if pk not in self.sight.sessions:
            if row.interaction_id not in self.sight.interactions:
                self._violate(
                    f"MonitoringSession of an invisible interaction, as {reached.via}", reached
                )
            else:
                reason = self.sight.session_hidden_reason(pk)
                self._violate(f"MonitoringSession shown to {reason}, as {reached.via}", reached)
            return
        if self.sight.was_agent_of(row.interaction_id):
            self.tally.cases["a disclosed session shown to an agent of its interaction"] += 1
        for got in _values(reached.value, "mode"):
            self.tally.counts["MonitoringSession.mode"] += 1
            if got != _enum(row.mode):
                self._violate("MonitoringSession.mode is not the session's mode", reached)
        history = list(self.floor.histories.get(pk, ()))
        for got in _values(reached.value, "modeHistory"):
            if got is None:
                continue
            self.tally.counts["MonitoringSession.modeHistory"] += 1
            # Each step's `mode` where asked (under aliases too); the length in any case.
            modes = [[v for k, v in step.items() if field_name(k) == "mode"] for step in got]
            if len(got) != len(history) or any(
                any(mode != expected for mode in asked)
                for asked, expected in zip(modes, history, strict=False)
            ):
                kind = "MonitoringSession.modeHistory is not the session's modes"
                self._violate(kind, reached, f"got {got}, oracle {history}")

    def _check_in_parent(self, typename: str, reached: Reached) -> None:
        """MonitoringModeChange: only inside a session's modeHistory (checked there)."""
        parent = reached.parent
        if parent is None or parent["__typename"] != "MonitoringSession":
            self._violate(f"{typename} outside a MonitoringSession, as {reached.via}", reached)

    # -- Monitoring beyond sessions and participants: no trace to whoever may not see it ----

    def _check_panel_entry(self, reached: Reached) -> None:
        """`monitoring: true` says that the viewer monitors the interaction: only with an
        active session of theirs on it that they may see."""
        if True not in _values(reached.value, "monitoring"):
            return
        for interaction in _values(reached.value, "interaction"):
            decoded = _pk(interaction) if interaction else None
            if not decoded or decoded[1] not in self.sight.interactions:
                continue
            own = [
                s
                for s in self.floor.sessions_of.get(decoded[1], ())
                if s.monitor_id == self.sight.viewer.id and _enum(s.state) == "ACTIVE"
            ]
            if not own:
                self._violate(
                    "PanelEntry.monitoring without an active session of the viewer's", reached
                )
            for session in own:
                reason = self.sight.session_hidden_reason(session.id)
                if reason:
                    self._violate(f"PanelEntry.monitoring shown to {reason}", reached)

    def _check_monitorability(self, reached: Reached) -> None:
        parent = reached.parent
        decoded = _pk(parent) if parent and parent["__typename"] == "Participant" else None
        if decoded is None or decoded[1] not in self.floor.participants:
            return
        participant = self.floor.participants[decoded[1]]
        interaction = participant.interaction_id
        if interaction not in self.sight.interactions:
            return  # the participant itself is already a violation
        self._check_options(participant, reached)
        hidden = self.sight.hidden_on(interaction)
        if not hidden:
            return  # sees every session of it
        self.tally.cases["monitorability for a silenced viewer"] += 1
        visible = self.sight.sessions_on(interaction)
        active_seen = any(_enum(s.state) == "ACTIVE" for s in visible)
        reason = self.sight.session_hidden_reason(hidden[0].id)
        value = reached.value
        for said in _values(value, "reason"):
            if said == "ALREADY_MONITORED" and not active_seen:
                self._violate(f"Monitorability says {said} to {reason}", reached)
            if said == "MONITORED_ONCE" and not visible:
                self._violate(f"Monitorability says {said} to {reason}", reached)
        if not active_seen and any(m is not None for m in _values(value, "currentMonitor")):
            self._violate(f"Monitorability names the currentMonitor to {reason}", reached)
        names = self._monitor_names(interaction, hidden, visible)
        for message in _values(value, "message"):
            if not message:
                continue
            if (
                (not active_seen and _ALREADY.search(message))
                or (not visible and _BEFORE.search(message))
                or names.search(message)
            ):
                self._violate(f"Monitorability message tells of monitoring to {reason}", reached)

    def _check_options(self, participant, reached: Reached) -> None:
        """modes and canTakeOver, from the media type, the viewer's permissions and their own
        active session (the rewrite selects `allowed` in every Monitorability)."""
        value = reached.value
        allowed = _values(value, "allowed")
        if not allowed or None in allowed:
            return
        media = _enum(self.floor.interactions[participant.interaction_id].media_type)
        permissions = self.sight.permissions
        if allowed[0]:
            modes = [m for m in MODES_BY_MEDIA.get(media, ()) if m in permissions]
            own = any(
                _enum(s.state) == "ACTIVE"
                and s.monitor_id == self.sight.viewer.id
                and s.agent_id == participant.user_id
                for s in self.sight.sessions_on(participant.interaction_id)
            )
            take_over = own and media in TAKE_OVER_MEDIA and "TAKE_OVER" in permissions
        else:
            modes, take_over = [], False
        for got in _values(value, "modes"):
            self.tally.counts["Monitorability.modes"] += 1
            self.tally.cases["monitorability that offers modes"] += bool(got)
            if got is None or sorted(got) != sorted(modes) or len(set(got)) != len(got):
                kind = "Monitorability.modes is not what the media and the permissions offer"
                self._violate(kind, reached, f"got {got}, oracle {modes}")
        for got in _values(value, "canTakeOver"):
            self.tally.counts["Monitorability.canTakeOver"] += 1
            self.tally.cases["monitorability that offers a take over"] += bool(got)
            if got is not take_over:
                kind = "Monitorability.canTakeOver is not what the oracle says"
                self._violate(kind, reached, f"got {got}, oracle {take_over}")

    def _monitor_names(self, interaction: int, hidden: list, visible: list) -> re.Pattern:
        """The names and keys of the monitors of hidden sessions, as whole words ("ann" is a
        monitor's key, "cannot" is not a trace of her), but for users the viewer sees on the
        interaction anyway (its agents, the monitors of visible sessions)."""
        known = {s.monitor_id for s in visible} | {
            p.user_id for p in self.floor.participants_of.get(interaction, ()) if is_agent(p)
        }
        monitors = {s.monitor_id for s in hidden} - known
        words = sorted(
            {self.floor.users[pk].name for pk in monitors}
            | {self.floor.users[pk].key for pk in monitors}
        )
        if not words:
            return re.compile(r"(?!)")  # matches nothing
        return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)

    # -- Counts ----------------------------------------------------------------------------------

    def _arguments(self, reached: Reached) -> dict | None:
        if reached.parents:
            return None
        root_key = reached.path.split(".")[0].split("[")[0]
        _name, arguments = self.rewritten.root_arguments.get(root_key, (None, None))
        return arguments

    def _compare(self, reached: Reached, name: str, expected: int) -> None:
        for got in _values(reached.value, name):
            self.tally.counts[name] += 1
            if got != expected:
                kind = f"{reached.value['__typename']}.{name} is not the oracle's count"
                self._violate(kind, reached, f"got {got}, oracle {expected}")

    def _check_queue_connection(self, reached: Reached) -> None:
        self._compare(reached, "totalCount", len(self.sight.own_queues))

    def _check_interaction_connection(self, reached: Reached) -> None:
        arguments = self._arguments(reached)
        if arguments is None:
            return
        filter = _decoded_filter(arguments.get("filter"))
        if filter is not None:
            self._compare(reached, "totalCount", self.sight.interactions_matching(filter))

    def _check_queue_activity(self, reached: Reached) -> None:
        arguments = self._arguments(reached)
        decoded = _decoded_id(arguments.get("queueId")) if arguments else None
        if decoded is None or decoded[0] != "Queue":
            return
        if decoded[1] not in self.sight.own_queues:
            self._violate("queueActivity of a queue not visible in its own right", reached)
            return
        for name, expected in self.sight.queue_activity_counts(decoded[1]).items():
            self._compare(reached, name, expected)

    def _check_session_connection(self, reached: Reached) -> None:
        """The audit trail: the visible sessions that match, newest first, paged."""
        arguments = self._arguments(reached)
        if arguments is None:
            return
        filter = _decoded_filter(arguments.get("filter"))
        if filter is None:
            return
        matching = self.sight.sessions_matching(filter)
        self._compare(reached, "totalCount", len(matching))
        if not self.whole:
            return
        after = arguments.get("after")
        if after is not None:
            if after not in self.session_cursors:
                return  # not a session's cursor of ours: refused, or not placed by the oracle
            at = self.floor.sessions[self.session_cursors[after]]
            matching = [s for s in matching if (s.started_at, s.id) < (at.started_at, at.id)]
        first = arguments.get("first")
        size = 25 if first is None else first
        page = [s.id for s in matching[:size]]
        self.tally.cases["monitoringSessions page compared"] += 1
        self.tally.cases["monitoringSessions page after a cursor"] += after is not None
        self._compare_ids(reached, "nodes", page)
        for edges in _values(reached.value, "edges"):
            nodes = [edge[key] for edge in edges for key in edge if field_name(key) == "node"]
            if len(nodes) == len(edges):  # one node each (not selected twice under aliases)
                self._compare_list(reached, "MonitoringSessionConnection.edges", nodes, page)
        for info in _values(reached.value, "pageInfo"):
            for got in _values(info, "hasNextPage"):
                self.tally.counts["MonitoringSessionConnection.hasNextPage"] += 1
                if got != (len(matching) > size):
                    self._violate(
                        "MonitoringSessionConnection.pageInfo.hasNextPage is not the oracle's",
                        reached,
                    )

    # -- Nulls at the root: what the viewer may see must be there -----------------------------

    def _check_null_root(self, key: str) -> None:
        name, arguments = self.rewritten.root_arguments.get(key, (None, None))
        if name not in NULLABLE_ROOTS or not arguments:
            return
        decoded = _decoded_id(arguments.get("queueId" if name == "queueActivity" else "id"))
        if decoded is None or decoded[1] not in self.floor.rows(decoded[0]):
            return
        kind, pk = decoded
        if name in ("interaction", "queueActivity") and kind != NULLABLE_ROOTS[name]:
            return
        visible = {
            "Division": self.sight.own_divisions,
            "User": self.sight.users,
            "Queue": self.sight.own_queues,
            "Interaction": self.sight.interactions,
            "Participant": self.sight.participants,
            "MonitoringSession": self.sight.sessions,
        }[kind]
        self.tally.counts[f"null {name}"] += 1
        if pk in visible:
            value = {"__typename": kind, "id": arguments.get("id") or arguments.get("queueId")}
            self._violate(
                f"{name} is null for a {kind} the viewer may see",
                Reached(value, key, name, ()),
            )


# Root fields that answer null for what the viewer may not see, and the type they look up
# (`node`: any).
NULLABLE_ROOTS = {"node": None, "interaction": "Interaction", "queueActivity": "Queue"}


def _decoded_id(value) -> tuple[str, int] | None:
    try:
        return decode_node_id(value)
    except Exception:  # noqa: BLE001 - the server refuses it too
        return None


def _decoded_filter(filter: dict | None) -> dict | None:
    """The filter with ids as primary keys (ids of another type name nothing), or None when
    the oracle does not count it: a date condition, or an id the server refuses."""
    if filter is None:
        return {}
    if filter.get("startedAfter") is not None or filter.get("startedBefore") is not None:
        return None
    decoded = dict(filter)
    for key, type_name in (("queueIds", "Queue"), ("agentIds", "User"), ("monitorIds", "User")):
        if filter.get(key) is None:
            continue
        ids = [_decoded_id(value) for value in filter[key]]
        if None in ids:
            return None
        decoded[key] = {pk for kind, pk in ids if kind == type_name}
    return decoded
