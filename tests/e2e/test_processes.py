"""Several `binocular serve` processes on one PostgreSQL database form one service."""

import asyncio
from collections import Counter

import pytest
import sqlalchemy as sa

from app.models import EventLogEntry, MonitoringSession
from app.models.enums import INTERACTION_EVENTS, MONITORING_EVENTS, MonitoringState
from tests.conftest import JWT_SECRET, live_api_for
from tests.events.test_subscription import Subscriber, kinds
from tests.monitoring.serial import (
    DISCONNECT,
    END,
    interleaved,
    race_modes_and_stops,
    race_rounds,
    went_round_again,
)
from tests.servers import ServeProcess


@pytest.fixture
def postgres_only(backend):
    if backend != "postgresql":
        pytest.skip("several processes share a database on PostgreSQL only")


@pytest.fixture(scope="module")
def second_server(database_url, tmp_path_factory):
    if database_url.startswith("sqlite"):
        pytest.skip("several processes share a database on PostgreSQL only")
    process = ServeProcess(database_url, JWT_SECRET, tmp_path_factory.mktemp("serve2") / "log")
    yield process
    process.stop()


@pytest.fixture
async def other_api(second_server, directory):
    api = live_api_for(second_server, directory)
    yield api
    await api.client.aclose()


async def test_a_race_split_between_two_processes_has_one_winner(
    postgres_only, live_api, other_api, supervisors, db
):
    interaction = await live_api.create()
    await live_api.connect(interaction, "bob")
    results = await asyncio.gather(
        *(
            (live_api if i % 2 else other_api).start(key, interaction)
            for i, key in enumerate(supervisors)
        )
    )
    outcome = Counter("WON" if r["session"] else r["errors"][0]["code"] for r in results)
    assert outcome == {"WON": 1, "ALREADY_MONITORED": 49}
    async with db.read() as session:
        active = await session.exec(
            sa.select(sa.func.count())
            .select_from(MonitoringSession)
            .where(MonitoringSession.state == MonitoringState.ACTIVE)
        )
        assert active.scalar_one() == 1


async def test_sms_race_after_a_stop_split_between_two_processes(
    postgres_only, live_api, other_api, supervisors
):
    interaction = await live_api.create(media="SMS")
    await live_api.connect(interaction, "bob")
    first = (await other_api.start("ann", interaction))["session"]
    await live_api.stop("ann", first["id"])
    results = await asyncio.gather(
        *(
            (live_api if i % 2 else other_api).start(key, interaction)
            for i, key in enumerate(supervisors)
        )
    )
    assert Counter(r["errors"][0]["code"] for r in results) == {"MONITORED_ONCE": 50}


@pytest.mark.parametrize("rival", [END, DISCONNECT], ids=["end", "disconnect"])
async def test_starts_racing_a_rival_across_processes_answer_as_in_a_serial_order(
    postgres_only, server, second_server, live_api, other_api, supervisors, db, rival
):
    """Fifty rounds of twenty starts, split over the two processes, racing endInteraction or
    disconnectAgent. The race is proven to happen: starts lost at the unique index to each
    other, and found the rival's change between their snapshot and their write."""
    logged = len(server.log_records()), len(second_server.log_records())
    outcomes = await race_rounds(
        [live_api, other_api], db, supervisors, rival, rounds=50, starters=20, spread=0.01
    )
    messages = [
        record["event"]
        for process, already in zip((server, second_server), logged, strict=True)
        for record in process.log_records()[already:]
    ]
    again = went_round_again(messages)
    print(f"{sum(outcomes, Counter())}; {interleaved(outcomes, rival)} interleaved; {again}")
    assert again["index"] and again["changed"], again


async def test_mode_switches_racing_stops_across_processes_end_as_in_a_serial_order(
    postgres_only, live_api, other_api, db
):
    """Twenty rounds of twenty changeMonitoringMode and stopMonitoring calls on one session,
    split over the two processes. The race is proven to happen: changes that made the
    history came from both processes in the same round, and changes found the session
    ended in a round where others had succeeded."""
    tally = await race_modes_and_stops([live_api, other_api], db, rounds=20)
    print(tally)
    assert tally["interleaved rounds"] >= 1, tally


async def test_mutations_on_one_process_reach_subscribers_on_another(
    postgres_only, server, live_api, other_api
):
    async with Subscriber(server, live_api.token("ann")) as subscriber:
        interaction = await other_api.create()
        await other_api.connect(interaction, "bob")
        session = (await other_api.start("ann", interaction))["session"]["id"]
        await other_api.stop("ann", session)
        events = await subscriber.wait_for(2, timeout=10)
    assert kinds(events) == [("STARTED", session), ("ENDED", session)]


async def test_kill_9_of_the_mutating_process_loses_nothing_committed(
    postgres_only, server, live_api, database_url, directory, db, tmp_path
):
    doomed = ServeProcess(database_url, JWT_SECRET, tmp_path / "doomed.log")
    doomed_api = live_api_for(doomed, directory)
    try:
        async with Subscriber(server, live_api.token("ann")) as subscriber:
            interaction = await doomed_api.create()
            await doomed_api.connect(interaction, "bob")
            for _ in range(10):
                session = (await doomed_api.start("ann", interaction))["session"]["id"]
                await doomed_api.stop("ann", session)
            doomed.kill()
            async with db.read() as read:
                committed = list(
                    (
                        await read.exec(
                            sa.select(EventLogEntry.session_id, EventLogEntry.kind)
                            .where(EventLogEntry.kind.in_(MONITORING_EVENTS))
                            .order_by(EventLogEntry.position)
                        )
                    ).all()
                )
            events = await subscriber.wait_for(len(committed), timeout=15)
    finally:
        await doomed_api.client.aclose()
        doomed.stop()
    assert len(committed) == 20
    assert [(e["kind"], e["session"]["id"]) for e in events] == [
        (MONITORING_EVENTS[kind].value, pk_to_id(session_id)) for session_id, kind in committed
    ]


def pk_to_id(session_pk: int) -> str:
    from app.graphql.ids import encode_id

    return encode_id("MonitoringSession", session_pk)


async def test_interaction_events_committed_by_two_processes_reach_each_once_in_order(
    postgres_only, server, second_server, live_api, other_api, db
):
    """Both processes write at once; a subscriber on each gets every event of the log, in
    log order, each once; one resuming halfway through on the other process continues
    exactly where it stopped."""
    from tests.events.test_change_feed import INTERACTIONS

    async def traffic(api, name, n):
        for i in range(n):
            interaction = await api.create(external_id=f"{name}-{i}")
            await api.connect(interaction, "bob")
            await api.set_presence("dina", "BUSY")
            await api.set_presence("dina", "ON_QUEUE")
            await api.end(interaction)

    async with (
        Subscriber(server, live_api.token("root"), INTERACTIONS) as here,
        Subscriber(second_server, live_api.token("root"), INTERACTIONS) as there,
    ):
        await asyncio.gather(traffic(live_api, "here", 10), traffic(other_api, "there", 10))
        await here.wait_for(60, timeout=20)
        await there.wait_for(60, timeout=20)
    async with db.read() as read:
        logged = (
            await read.exec(
                sa.select(EventLogEntry.kind)
                .where(EventLogEntry.kind.in_(list(INTERACTION_EVENTS)))
                .order_by(EventLogEntry.position)
            )
        ).all()
    assert len(logged) == 60
    assert [e["cursor"] for e in here.events] == [e["cursor"] for e in there.events]
    halfway = here.events[29]["cursor"]
    async with Subscriber(
        second_server, live_api.token("root"), INTERACTIONS, after=halfway
    ) as resumed:
        await resumed.wait_for(30, timeout=20)
    assert [e["cursor"] for e in resumed.events] == [e["cursor"] for e in here.events[30:]]


async def test_kill_9_of_the_writing_process_loses_no_committed_interaction_event(
    postgres_only, server, live_api, database_url, directory, db, tmp_path
):
    from tests.events.test_change_feed import INTERACTIONS

    doomed = ServeProcess(database_url, JWT_SECRET, tmp_path / "doomed.log")
    doomed_api = live_api_for(doomed, directory)
    try:
        async with Subscriber(server, live_api.token("root"), INTERACTIONS) as subscriber:
            for _ in range(5):
                interaction = await doomed_api.create()
                await doomed_api.connect(interaction, "bob")
                await doomed_api.end(interaction)
            doomed.kill()
            async with db.read() as read:
                committed = (
                    await read.exec(
                        sa.select(EventLogEntry.interaction_id, EventLogEntry.kind)
                        .where(EventLogEntry.kind.in_(list(INTERACTION_EVENTS)))
                        .order_by(EventLogEntry.position)
                    )
                ).all()
            events = await subscriber.wait_for(len(committed), timeout=15)
    finally:
        await doomed_api.client.aclose()
        doomed.stop()
    assert len(committed) == 15
    assert [e["kind"] for e in events] == [INTERACTION_EVENTS[kind].value for _, kind in committed]
