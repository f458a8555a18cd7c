"""Live views on two `binocular serve` processes of one PostgreSQL database: the randomized
equivalence test of tests/graphql/test_live_equivalence.py with its subscribers split over
both processes and its mutations sent to each in turn. At every quiet point each subscriber,
wherever it is, holds exactly what a fresh query by its viewer answers (on either process)."""

import time

import pytest

from tests.conftest import JWT_SECRET, live_api_for
from tests.graphql.live_traffic import (
    FIRST_INTERACTIONS,
    Subscribers,
    Traffic,
    load_people,
    run_rounds,
)
from tests.servers import ServeProcess, metric

ROUNDS = 5
MUTATIONS = 20
VIEW = '{view="queueActivity"}'


@pytest.fixture(scope="module")
def two_servers(database_url, tmp_path_factory):
    if database_url.startswith("sqlite"):
        pytest.skip("several processes share a database on PostgreSQL only")
    processes = []
    try:
        for name in ("here", "there"):
            processes.append(
                ServeProcess(
                    database_url,
                    JWT_SECRET,
                    tmp_path_factory.mktemp(f"live-{name}") / "log",
                    extra_env={"BINOCULAR_POOL_SIZE": "5"},
                )
            )
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def people(db, directory) -> dict[str, str]:
    await load_people(db, directory)
    return directory


def counted(servers: list[ServeProcess]) -> dict[str, float]:
    return {
        name: sum(metric(s, f"binocular_live_view_{name}_total", VIEW) for s in servers)
        for name in ("executions", "deliveries")
    }


async def test_subscribers_on_two_processes_hold_fresh_answers_at_every_quiet_point(
    two_servers, people
):
    apis = [live_api_for(server, people) for server in two_servers]
    traffic = Traffic(4242, apis)
    subscribers = Subscribers([server.ws_url for server in two_servers], apis[0])
    started = time.monotonic()
    try:
        first = [await traffic.create(queue, media) for queue, media in FIRST_INTERACTIONS]
        traffic.protected.update(first)
        before = counted(two_servers)
        await subscribers.open(first)
        on_each = [metric(s, "binocular_live_view_subscribers") for s in two_servers]
        assert sum(on_each) == len(subscribers.subs) and all(on_each), on_each
        failures = await run_rounds(traffic, subscribers, apis, ROUNDS, MUTATIONS)
        assert not failures, "\n".join(failures[:10])
        assert not subscribers.problems(), subscribers.problems()
        after = counted(two_servers)
    finally:
        await subscribers.close()
        for api in apis:
            await api.client.aclose()
    figures = subscribers.figures()
    delta = {k: after[k] - before[k] for k in after}
    print(
        f"two processes: {ROUNDS} rounds x {MUTATIONS} mutations in "
        f"{time.monotonic() - started:.1f}s; {dict(traffic.outcomes)}; {figures}; {delta}"
    )
    queue_subs = [s for s in subscribers.subs if s.kind == "queueActivityChanged"]
    assert all(s.state.snapshots == 1 for s in queue_subs), [
        (s.label, s.state.snapshots) for s in queue_subs
    ]
    assert all(s.updates > 0 for s in queue_subs), [(s.label, s.updates) for s in queue_subs]
    assert figures["with removed"] and figures["with agentsChanged"], figures
    assert figures["with agentsRemoved"], figures
    assert figures["interaction updates"] and figures["panel updates"], figures
    assert figures["interaction completed"] == len(
        [s for s in subscribers.subs if s.kind == "interactionUpdated"]
    ), figures
    # Subscribers on both processes, mutations sent to both in turn: each process's followed
    # what the other committed.
    sockets = {s.client for s in subscribers.subs}
    assert {c.ws_url for c in sockets} == {s.ws_url for s in two_servers}
    assert 0 < delta["executions"] < delta["deliveries"], delta
