"""The limits hold under concurrency: many clients race, the database lets one through; and
every answer is one that some serial order of the same calls would give."""

import asyncio
import logging
from collections import Counter

import pytest
import sqlalchemy as sa

from app.models import MonitoringSession
from app.models.enums import MonitoringState
from tests.monitoring.serial import (
    DISCONNECT,
    END,
    interleaved,
    judge_sessions,
    outcome,
    pk_of,
    race_modes_and_stops,
    race_rounds,
    went_round_again,
)

RACERS = 50


async def active_sessions(db, interaction_pk: int) -> int:
    async with db.read() as session:
        return (
            await session.exec(
                sa.select(sa.func.count())
                .select_from(MonitoringSession)
                .where(
                    MonitoringSession.interaction_id == interaction_pk,
                    MonitoringSession.state == MonitoringState.ACTIVE,
                )
            )
        ).scalar_one()


async def test_fifty_supervisors_race_on_one_voice_interaction(api, db, supervisors):
    interaction = await api.create()
    await api.connect(interaction, "bob")
    results = await asyncio.gather(*(api.start(key, interaction) for key in supervisors))
    assert outcome(results) == {"WON": 1, "ALREADY_MONITORED": RACERS - 1}
    winner = next(r["session"] for r in results if r["session"])
    assert all(
        r["errors"][0]["currentMonitor"] == winner["monitor"] for r in results if not r["session"]
    )
    assert await active_sessions(db, pk_of(interaction)) == 1


async def test_fifty_supervisors_race_on_an_sms_monitored_before(api, db, supervisors):
    interaction = await api.create(media="SMS")
    await api.connect(interaction, "bob")
    first = (await api.start("ann", interaction))["session"]
    await api.stop("ann", first["id"])
    results = await asyncio.gather(*(api.start(key, interaction) for key in supervisors))
    assert outcome(results) == {"MONITORED_ONCE": RACERS}
    assert await active_sessions(db, pk_of(interaction)) == 0


async def test_fifty_supervisors_race_on_a_fresh_sms(api, db, supervisors):
    interaction = await api.create(media="SMS")
    await api.connect(interaction, "bob")
    results = await asyncio.gather(*(api.start(key, interaction) for key in supervisors))
    assert outcome(results) == {"WON": 1, "ALREADY_MONITORED": RACERS - 1}


async def test_a_double_click_returns_one_session_twice(api, db):
    interaction = await api.create()
    await api.connect(interaction, "bob")
    results = await asyncio.gather(*(api.start("ann", interaction) for _ in range(10)))
    assert {r["session"]["id"] for r in results} == {results[0]["session"]["id"]}
    assert all(r["errors"] == [] for r in results)
    assert await active_sessions(db, pk_of(interaction)) == 1


@pytest.mark.parametrize("rival", [END, DISCONNECT], ids=["end", "disconnect"])
async def test_starts_racing_a_rival_answer_as_in_a_serial_order(
    api, db, supervisors, rival, caplog
):
    """Twenty rounds of ten starts racing endInteraction, or disconnectAgent. The race is
    proven to happen: starts lost at the unique index to each other, and found the rival's
    change between their snapshot and their write."""
    caplog.set_level(logging.INFO, logger="binocular.monitoring")
    outcomes = await race_rounds([api], db, supervisors, rival, rounds=20, starters=10, spread=0.03)
    again = went_round_again(caplog.messages)
    print(f"{sum(outcomes, Counter())}; {interleaved(outcomes, rival)} interleaved; {again}")
    assert again["index"] and again["changed"], again


async def test_a_stop_racing_an_end_answers_as_in_a_serial_order(api, db):
    """Stopped first, the session ends STOPPED; ended first, the stop returns it as the end
    left it. Never an error, never an ACTIVE session left."""
    for _ in range(20):
        interaction = await api.create()
        await api.connect(interaction, "bob")
        session = (await api.start("ann", interaction))["session"]
        stopped, ended = await asyncio.gather(api.stop("ann", session["id"]), api.end(interaction))
        assert stopped["errors"] == [] and ended["errors"] == [], (stopped, ended)
        reason = stopped["session"]["endReason"]
        assert reason in {"STOPPED", "INTERACTION_ENDED"}, stopped
        await judge_sessions(db, interaction, session, reason)


async def test_racing_connects_make_one_agent_participant(api, db):
    interaction = await api.create()
    await asyncio.gather(*(api.connect(interaction, "bob") for _ in range(10)))
    data = await api.data(
        "query($id: ID!) { interaction(id: $id) { agents { state } } }", {"id": interaction}
    )
    assert data["interaction"]["agents"] == [{"state": "CONNECTED"}]


async def test_mode_switches_racing_stops_end_in_a_state_a_serial_order_explains(api, db):
    """Ten rounds of twenty changeMonitoringMode and stopMonitoring calls on one session."""
    tally = await race_modes_and_stops([api], db, rounds=10)
    print(tally)
    assert tally["changes"] and tally["found ended"], tally
