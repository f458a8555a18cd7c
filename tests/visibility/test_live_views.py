"""Live views obey the visibility of queries, through sharing.

A live view computes one answer per group of subscribers who get the same one (the viewer
class: division, roles, monitoring permissions), or one per viewer who takes part in what it
shows (app/graphql/live/views.py), and writes it to every socket of the group. Every viewer
of the floor (tests/visibility/conftest.py) opens, at once on a real `binocular serve`:

- queueActivityChanged for every queue, interactionUpdated for every interaction (and for
  ids that name nothing, or something else), each with selections drawn by hypothesis-graphql
  over QueueActivity and Interaction (live_documents.py, the way generate.py draws the
  property test's path documents);
- interactionPanelChanged with selections over PanelEntry;

so that viewers of one class share groups and the involved get their own. The panel and the
queues are opened twice by each viewer (two sockets, as two tabs): a panel is its viewer's
alone, and on the floor most of a queue's watchers take part in it (its agents, their
monitors), so that only a viewer's own sockets may share those. Each first update is then:

- refused with NOT_FOUND exactly where the query (queueActivity, interaction) answers null
  for the same viewer, and where the oracle says the viewer may not see the subject;
- checked, in the query's shape, by the property test's ResponseCheck against the oracle:
  nothing the viewer may not see, nothing missing that they may (a group's answer computed
  for another viewer shows as either; its violations show the query, whose selection the
  subscription selects);
- equal to the answer of the query with the same selection by the same viewer (asOf
  excluded); queueActivityChanged's deltas empty and its counts the oracle's.

The server's metrics must show sharing: fewer executions than deliveries, for each view;
and the answers must show that the sample reaches what sharing must get right: documents
where viewers of one class got one answer, and documents where they did not (one of them
takes part in the view).
"""

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import graphql
import httpx
from hypothesis.configuration import set_hypothesis_home_dir

from app.graphql.ids import decode_node_id, encode_id
from app.graphql.schema import sdl
from tests.graphql.live import LiveClient
from tests.servers import metric
from tests.visibility.checks import ResponseCheck, Tally, Violation
from tests.visibility.conftest import VIEWERS
from tests.visibility.documents import field_name
from tests.visibility.live_documents import LiveDocument, draw_selections, live_document
from tests.visibility.oracle import read_floor
from tests.visibility.test_property import _sights

# The bounded sample: selections per queue, per interaction; panel selections.
PER_QUEUE = 3
PER_INTERACTION = 2
PANEL_SELECTIONS = 6
# Sockets per viewer, and on how many of them each viewer opens each view (see above).
SOCKETS = 2
COPIES = {"queueActivity": 2, "interaction": 1, "panel": 2}
IN_FLIGHT = 32  # subscriptions awaiting their first update at once
QUERY_CONCURRENCY = 6
FIRST_UPDATE_TIMEOUT = 60
METRIC_VIEWS = ("queueActivity", "interaction", "panel")
# Ids that name nothing, or another type: refused as the query answers null, to everyone.
NOWHERE = {
    "queueActivity": (encode_id("Queue", 2**31 - 1), encode_id("Division", 1)),
    "interaction": (encode_id("Interaction", 2**31 - 1), encode_id("Participant", 1)),
}
# Minimums, so that a sample that stops reaching the data cannot pass quietly (the run
# checks about twice as many).
MIN_OBJECTS = {
    "Interaction": 1200,
    "Participant": 1200,
    "MonitoringSession": 800,
    "User": 800,
    "QueueAgent": 150,
    "PanelEntry": 150,
    "Monitorability": 50,
}
MIN_CASES = {
    "a disclosed session shown to an agent of its interaction": 50,
    "monitoring asked of an interaction by a silenced viewer": 150,
    "monitoring asked where the viewer sees some sessions and not others": 10,
    "monitorability for a silenced viewer": 10,
}
MIN_SPLIT = 10  # documents where viewers of one class got different answers
MIN_SHARED_CLASS = 20  # documents where several viewers of one class got one answer


@dataclass
class Opened:
    """One subscription: a viewer's live document on one of its sockets."""

    viewer: str
    document: LiveDocument
    client: LiveClient
    operation: str


@dataclass
class Figures:
    documents: Counter = field(default_factory=Counter)  # by view
    subscriptions: Counter = field(default_factory=Counter)  # by view
    refused: Counter = field(default_factory=Counter)  # by view
    equal: int = 0
    errors: int = 0  # first updates with errors besides data
    # The answered first updates, by document and viewer class: the viewers and their answers.
    by_class: dict = field(default_factory=dict)

    def classes(self) -> tuple[int, int]:
        """(documents where several viewers of one class got one answer, documents where
        viewers of one class got different ones)."""
        shared, split = set(), set()
        for (document, _class), answers in self.by_class.items():
            viewers = {viewer for viewer, _answer in answers}
            if len(viewers) < 2:
                continue
            if len({answer for _viewer, answer in answers}) == 1:
                shared.add(document)
            else:
                split.add(document)
        return len(shared), len(split)


def _without_as_of(value):
    if isinstance(value, dict):
        return {k: _without_as_of(v) for k, v in value.items() if field_name(k) != "asOf"}
    if isinstance(value, list):
        return [_without_as_of(item) for item in value]
    return value


def _codes(body: dict) -> list:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def _documents(schema, rows, floor_ids) -> list[LiveDocument]:
    selections = draw_selections(sdl())
    documents: list[LiveDocument] = []

    def take(view: str, type_name: str, subject: str | None, count: int, start: int) -> int:
        """`count` documents of the view on the subject, from the selections after `start`."""
        pool = selections[type_name]
        taken = 0
        while taken < count and start < len(pool):
            document = live_document(schema, view, pool[start], subject)
            start += 1
            if document is not None:
                documents.append(document)
                taken += 1
        assert taken == count, f"not enough {type_name} selections drawn"
        return start

    at = 0
    for pk in sorted(rows.queues):
        at = take("queueActivity", "QueueActivity", encode_id("Queue", pk), PER_QUEUE, at)
    at = 0
    for label in sorted(floor_ids.interactions):
        subject = floor_ids.interactions[label]
        at = take("interaction", "Interaction", subject, PER_INTERACTION, at)
    take("panel", "PanelEntry", None, PANEL_SELECTIONS, 0)
    for view, subjects in NOWHERE.items():
        type_name = "QueueActivity" if view == "queueActivity" else "Interaction"
        for subject in subjects:
            take(view, type_name, subject, 1, 0)
    return documents


async def _open(server, api, documents: list[LiveDocument]) -> tuple[list, list[Opened], list]:
    """Every viewer's sockets, every subscription and its first message. Subscriptions go
    view by view across viewers, IN_FLIGHT at a time awaiting their first update (each holds
    one of the server's database connections until it follows its view; the server's pool and
    PostgreSQL's connections are shared with other runs)."""
    sockets = {
        viewer: [LiveClient(server.ws_url, api.token(viewer)) for _ in range(SOCKETS)]
        for viewer in VIEWERS
    }
    every = [client for clients in sockets.values() for client in clients]
    await asyncio.gather(*(client.__aenter__() for client in every))
    gate = asyncio.Semaphore(IN_FLIGHT)
    opened: list[Opened] = []
    waiting: list[asyncio.Task] = []

    async def first(subscription: Opened) -> dict | None:
        try:
            messages = await subscription.client.wait_for(
                subscription.operation, 1, FIRST_UPDATE_TIMEOUT
            )
        except TimeoutError:
            return None
        finally:
            gate.release()
        return messages[0] if messages else None

    for number, document in enumerate(documents):
        for viewer in VIEWERS:
            for copy in range(COPIES[document.view]):
                subscription = Opened(
                    viewer, document, sockets[viewer][copy], f"{document.view}-{number}-{copy}"
                )
                await gate.acquire()
                await subscription.client.subscribe(subscription.operation, document.subscription)
                opened.append(subscription)
                waiting.append(asyncio.create_task(first(subscription)))
    return every, opened, list(await asyncio.gather(*waiting))


def _viewer_class(rows, viewer: str) -> tuple:
    """What a live view's answer may depend on, unless the viewer takes part in it, as the
    oracle reads the directory."""
    (user,) = (u for u in rows.users.values() if u.key == viewer)
    return (user.division_id, tuple(sorted(user.roles)), tuple(sorted(rows.permissions(user.id))))


class Check:
    def __init__(self, server, api, rows, session_cursors=None) -> None:
        self.http = httpx.AsyncClient(base_url=server.url, timeout=60)
        self.api = api
        self.rows = rows
        self.sights = _sights(rows)
        self.tally = Tally()
        self.figures = Figures()
        self.session_cursors = session_cursors or {}
        self._queries: dict[tuple[str, str], asyncio.Future] = {}
        self._gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def query(self, viewer: str, document: LiveDocument) -> dict:
        """The query's answer for the viewer, asked once per (viewer, document)."""
        key = (viewer, document.query.text)
        if key not in self._queries:
            self._queries[key] = asyncio.ensure_future(self._ask(viewer, document))
        return await self._queries[key]

    async def _ask(self, viewer: str, document: LiveDocument) -> dict:
        async with self._gate:
            response = await self.http.post(
                "/graphql",
                json={"query": document.query.text},
                headers={"Authorization": f"Bearer {self.api.token(viewer)}"},
            )
        return response.json()

    def violate(self, kind: str, subscription: Opened, path: str, value) -> None:
        self.tally.add(
            Violation(kind, subscription.viewer, subscription.document.subscription, path, value)
        )

    async def one(self, subscription: Opened, message: dict | None) -> None:
        document, viewer = subscription.document, subscription.viewer
        view = document.view
        sight = self.sights[viewer]
        query = await self.query(viewer, document)
        queried = query.get("data")
        if message is None or message.get("type") != "next":
            self.violate("no first update (next) in time", subscription, "", message)
            return
        payload = message["payload"]
        codes = _codes(payload)
        self.tally.error_codes.update(codes)
        data = document.as_query_data(payload.get("data"))
        check = ResponseCheck(
            self.rows,
            sight,
            viewer,
            document.query,
            self.tally,
            self.session_cursors,
            whole=not payload.get("errors"),
        )
        if data is None or data[document.root_key] is None:
            self.figures.refused[view] += 1
            self.tally.refused[codes[0] if codes else None] += 1
            if view == "panel" or codes != ["NOT_FOUND"]:
                self.violate("first update refused, not with NOT_FOUND", subscription, "", payload)
            if queried is None or queried.get(document.root_key) is not None:
                kind = f"{view} live view refused where the query answers"
                self.violate(kind, subscription, document.root_key, query)
            check.run({document.root_key: None})  # the oracle: refused only what it hides
            return
        self.tally.answered += 1
        self.figures.errors += bool(payload.get("errors"))
        check.run(data)
        extras = document.first_update_extras(payload["data"])
        if extras is not None:
            self._check_first_update(subscription, extras)
        answer = (document.subscription, _viewer_class(self.rows, viewer))
        self.figures.by_class.setdefault(answer, set()).add(
            (viewer, json.dumps(_without_as_of(payload), sort_keys=True))
        )
        if queried is not None and queried.get(document.root_key) is None:
            kind = f"{view} live view answers where the query is null"
            self.violate(kind, subscription, document.root_key, data)
            return
        key = document.root_key
        same = _without_as_of(data[key]) == _without_as_of(queried[key]) and Counter(
            codes
        ) == Counter(_codes(query))
        if same:
            self.figures.equal += 1
        else:
            kind = f"{view} live view's first update differs from the query's answer"
            self.violate(kind, subscription, document.root_key, {"live": data, "query": query})

    def _check_first_update(self, subscription: Opened, extras: dict) -> None:
        """queueActivityChanged: no deltas in the first update, and the oracle's counts."""
        deltas = ("changed", "removed", "agentsChanged", "agentsRemoved")
        if any(extras.get(name) != [] for name in deltas) or not extras.get("cursor"):
            self.violate("first update with deltas or no cursor", subscription, "", extras)
        queue_pk = self._queue_pk(subscription.document)
        expected = self.sights[subscription.viewer].queue_activity_counts(queue_pk)
        got = {name: extras.get(name) for name in expected}
        self.tally.counts["QueueActivityUpdate counts"] += 1
        if got != expected:
            kind = "QueueActivityUpdate counts are not the oracle's"
            self.violate(kind, subscription, "", {"got": got, "oracle": expected})

    def _queue_pk(self, document: LiveDocument) -> int:
        (_name, arguments) = document.query.root_arguments[document.root_key]
        return decode_node_id(arguments["queueId"])[1]


def _metrics(server) -> dict[str, tuple[float, float]]:
    return {
        view: (
            metric(server, "binocular_live_view_executions_total", f'{{view="{view}"}}'),
            metric(server, "binocular_live_view_deliveries_total", f'{{view="{view}"}}'),
        )
        for view in METRIC_VIEWS
    }


def _summary(backend, check: Check, opened, seconds: float, sharing) -> str:
    figures, tally = check.figures, check.tally
    documents = ", ".join(f"{v} {n}" for v, n in sorted(figures.documents.items()))
    subscriptions = ", ".join(f"{v} {n}" for v, n in sorted(figures.subscriptions.items()))
    refused = ", ".join(f"{v} {n}" for v, n in sorted(figures.refused.items()))
    objects = ", ".join(f"{name} {n}" for name, n in tally.objects.most_common())
    counts = ", ".join(f"{name} {n}" for name, n in sorted(tally.counts.items()))
    cases = ", ".join(f"{name}: {n}" for name, n in sorted(tally.cases.items()))
    shared = ", ".join(
        f"{view} {int(executed)} executions for {int(delivered)} deliveries"
        for view, (executed, delivered) in sharing.items()
    )
    kinds = "".join(f"\n    {n:5d}  {kind}" for kind, n in tally.kinds().most_common())
    shared_class, split = figures.classes()
    return (
        f"live views {backend}: {sum(figures.documents.values())} documents ({documents}), "
        f"{len(opened)} subscriptions by {len(VIEWERS)} viewers ({subscriptions}); "
        f"refused with NOT_FOUND where the query is null: {refused}; {tally.answered} first "
        f"updates with data, {figures.equal} equal to the query's answer, {figures.errors} "
        f"with errors, in {seconds:.0f} s;"
        f"\n  sharing: {shared}; documents where several viewers of one class got one answer: "
        f"{shared_class}, different answers (a viewer who takes part): {split};"
        f"\n  objects checked {sum(tally.objects.values())}: {objects};"
        f"\n  counts compared with the oracle: {counts};"
        f"\n  edges of the rules reached: {cases};"
        f"\n  types without a rule of their own: {dict(tally.unchecked) or 'none'};"
        f"\n  {len(tally.violations)} violations{kinds}"
    )


async def test_live_views_obey_the_visibility_of_queries_through_sharing(
    server, api, db, floor, backend, tmp_path_factory
):
    started = time.monotonic()
    schema = graphql.build_schema(sdl())
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    try:
        await asyncio.to_thread(draw_selections, sdl())
    finally:
        set_hypothesis_home_dir(None)
    rows = await read_floor(db.engine)
    assert rows.disagreements() == [], "the rows contradict the oracle's reading of them"
    documents = _documents(schema, rows, floor)
    check = Check(server, api, rows)
    for document in documents:
        check.figures.documents[document.view] += 1

    before = _metrics(server)
    sockets, opened, firsts = await _open(server, api, documents)
    try:
        after = _metrics(server)
    finally:
        await asyncio.gather(*(client.__aexit__(None, None, None) for client in sockets))
    try:
        for subscription in opened:
            check.figures.subscriptions[subscription.document.view] += 1
        await asyncio.gather(*(check.one(s, m) for s, m in zip(opened, firsts, strict=True)))
    finally:
        await check.http.aclose()
    sharing = {
        view: (after[view][0] - before[view][0], after[view][1] - before[view][1])
        for view in METRIC_VIEWS
    }
    tally = check.tally
    summary = _summary(backend, check, opened, time.monotonic() - started, sharing)
    print(summary)

    examples = "\n\n".join(v.describe() for v in tally.examples())
    report = f"{summary}\n\nThe first of each kind:\n\n{examples}" if examples else summary
    errors = [r for r in server.log_records() if r.get("level") == "error"]
    if errors:  # what the server says of them (an exhausted database, say)
        report += f"\n\n{len(errors)} errors in the server's log, the first:\n{errors[0]}"
    assert not tally.violations, report
    # Every viewer got every view: nothing hangs, and each subject was refused to some
    # viewers and shown to others (the floor's divisions).
    for view in ("queueActivity", "interaction"):
        assert 0 < check.figures.refused[view] < check.figures.subscriptions[view], report
    assert check.figures.refused["panel"] == 0, report
    for typename, least in MIN_OBJECTS.items():
        assert tally.objects[typename] >= least, report
    for case, least in MIN_CASES.items():
        assert tally.cases[case] >= least, report
    shared_class, split = check.figures.classes()
    assert shared_class >= MIN_SHARED_CLASS and split >= MIN_SPLIT, report
    for view, (executed, delivered) in sharing.items():
        assert 0 < executed < delivered, report
    # Every answered first update was delivered through a live view: none went missing.
    assert sum(delivered for _e, delivered in sharing.values()) >= tally.answered, report
