"""The limits hold under concurrency: many clients race, the database lets one through."""

import asyncio
from collections import Counter

import sqlalchemy as sa

from app.models import MonitoringSession
from app.models.enums import MonitoringState

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


def outcome(results) -> Counter:
    return Counter("WON" if r["session"] else r["errors"][0]["code"] for r in results)


def pk_of(global_id: str) -> int:
    from app.graphql.ids import decode_node_id

    return decode_node_id(global_id)[1]


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


async def test_no_active_session_survives_a_racing_end(api, db):
    """Start and endInteraction race, twenty times: never an ACTIVE session on an ENDED call."""
    for _ in range(20):
        interaction = await api.create()
        await api.connect(interaction, "bob")
        start, end = await asyncio.gather(api.start("ann", interaction), api.end(interaction))
        assert await active_sessions(db, pk_of(interaction)) == 0, (start, end)
        assert end["interaction"]["state"] == "ENDED", end
        if start["session"] is None:
            assert start["errors"][0]["code"] == "INTERACTION_ENDED", start


async def test_no_active_session_survives_a_racing_disconnect(api, db):
    for _ in range(20):
        interaction = await api.create()
        await api.connect(interaction, "bob")
        start, left = await asyncio.gather(
            api.start("ann", interaction), api.disconnect(interaction, "bob")
        )
        assert await active_sessions(db, pk_of(interaction)) == 0, (start, left)
        if start["session"] is None:
            assert start["errors"][0]["code"] == "NO_AGENT", start


async def test_racing_connects_make_one_agent_participant(api, db):
    interaction = await api.create()
    await asyncio.gather(*(api.connect(interaction, "bob") for _ in range(10)))
    data = await api.data(
        "query($id: ID!) { interaction(id: $id) { agents { state } } }", {"id": interaction}
    )
    assert data["interaction"]["agents"] == [{"state": "CONNECTED"}]
