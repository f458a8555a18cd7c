"""Every object of a response, checked against the oracle.

The walk needs no knowledge of the document: a rewritten document (documents.py) makes every
object carry `__typename` and its `id`, and makes every response key name its field. The
walk keeps the chain of enclosing objects, for the rules that depend on how an object was
reached: a queue seen only as an interaction's `queue`, a `Monitorability` under a
participant, the counts of a root field (whose arguments the rewrite kept).
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from app.graphql.ids import decode_node_id
from tests.visibility.documents import Rewritten, field_name
from tests.visibility.oracle import NODE_TYPES, Floor, Sight, is_monitor

# Fields of Interaction that can show monitoring (MONITOR participants among participants).
MONITORING_FIELDS = frozenset({"activeMonitoring", "monitoringSessions", "participants"})
# Words that tell of monitoring in a Monitorability message, whoever the monitor is.
_MONITORING_WORDS = re.compile(r"already monitor|monitored before|monitored once", re.IGNORECASE)


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
        "monitorability for a silenced viewer",
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

    def __init__(self, floor: Floor, sight: Sight, viewer: str, rewritten: Rewritten, tally):
        self.floor = floor
        self.sight = sight
        self.viewer = viewer
        self.rewritten = rewritten
        self.tally = tally

    def run(self, data: dict) -> None:
        for key, value in data.items():
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
        }.get(typename)
        if check is not None:
            check(reached)
        elif typename not in {"Query", "PageInfo", "InteractionEdge", "QueueEdge", "QueueAgent"}:
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
        if asked and self.sight.silenced_reason(pk):
            self.tally.cases["monitoring asked of an interaction by a silenced viewer"] += 1

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

    def _check_Division(self, pk: int, reached: Reached) -> None:
        if pk not in self.sight.divisions:
            self._violate(f"Division the viewer may not see, as {reached.via}", reached)

    def _check_Participant(self, pk: int, reached: Reached) -> None:
        if pk in self.sight.participants:
            return
        row = self.floor.participants[pk]
        if row.interaction_id not in self.sight.interactions:
            self._violate(f"Participant of an invisible interaction, as {reached.via}", reached)
        elif is_monitor(row):
            reason = self.sight.silenced_reason(row.interaction_id)
            self._violate(f"MONITOR participant shown to {reason}, as {reached.via}", reached)

    def _check_MonitoringSession(self, pk: int, reached: Reached) -> None:
        if pk in self.sight.sessions:
            return
        interaction = self.floor.sessions[pk].interaction_id
        if interaction not in self.sight.interactions:
            self._violate(
                f"MonitoringSession of an invisible interaction, as {reached.via}", reached
            )
        else:
            reason = self.sight.silenced_reason(interaction)
            self._violate(f"MonitoringSession shown to {reason}, as {reached.via}", reached)

    # -- Monitoring beyond sessions and participants: no trace to whoever may not see it ----

    def _check_panel_entry(self, reached: Reached) -> None:
        """`monitoring: true` says that the viewer monitors the interaction: only where they
        may see monitoring on it."""
        if True not in _values(reached.value, "monitoring"):
            return
        for interaction in _values(reached.value, "interaction"):
            decoded = _pk(interaction) if interaction else None
            if decoded and decoded[1] in self.sight.interactions:
                reason = self.sight.silenced_reason(decoded[1])
                if reason:
                    self._violate(f"PanelEntry.monitoring shown to {reason}", reached)

    def _check_monitorability(self, reached: Reached) -> None:
        parent = reached.parent
        decoded = _pk(parent) if parent and parent["__typename"] == "Participant" else None
        if decoded is None or decoded[1] not in self.floor.participants:
            return
        interaction = self.floor.participants[decoded[1]].interaction_id
        reason = self.sight.silenced_reason(interaction)
        if reason is None or interaction not in self.sight.interactions:
            return  # sees monitoring, or the participant itself is already a violation
        self.tally.cases["monitorability for a silenced viewer"] += 1
        value = reached.value
        for said in _values(value, "reason"):
            if said in ("ALREADY_MONITORED", "MONITORED_ONCE"):
                self._violate(f"Monitorability says {said} to {reason}", reached)
        if any(monitor is not None for monitor in _values(value, "currentMonitor")):
            self._violate(f"Monitorability names the currentMonitor to {reason}", reached)
        names = self._monitor_names(interaction)
        for message in _values(value, "message"):
            if message and (_MONITORING_WORDS.search(message) or names.search(message)):
                self._violate(f"Monitorability message tells of monitoring to {reason}", reached)

    def _monitor_names(self, interaction: int) -> re.Pattern:
        """The names and keys of the interaction's monitors, as whole words: "ann" is a
        monitor's key, "cannot" is not a trace of her."""
        monitors = {s.monitor_id for s in self.floor.sessions_of.get(interaction, ())}
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
    for key, type_name in (("queueIds", "Queue"), ("agentIds", "User")):
        if filter.get(key) is None:
            continue
        ids = [_decoded_id(value) for value in filter[key]]
        if None in ids:
            return None
        decoded[key] = {pk for kind, pk in ids if kind == type_name}
    return decoded
