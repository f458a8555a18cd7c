"""Races of starts against one integration call, judged: accept only what some serial order
of the same calls would answer; and one interleaving of such a race, made deterministic."""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util import await_only

from app.graphql.ids import decode_node_id
from app.models import MonitoringSession
from app.models.enums import MonitoringState
from tests.support import Api


@dataclass(frozen=True)
class Rival:
    """An integration call that makes every start after it refuse."""

    call: Callable[[Api, str], Awaitable[dict]]
    refusal: str  # what a start after it answers
    end_reason: str  # how it ends the session of a start before it
    state: str  # the interaction's state after it


END = Rival(lambda api, i: api.end(i), "INTERACTION_ENDED", "INTERACTION_ENDED", "ENDED")
DISCONNECT = Rival(
    lambda api, i: api.disconnect(i, "bob"), "NO_AGENT", "AGENT_DISCONNECTED", "WAITING"
)


def pk_of(global_id: str) -> int:
    return decode_node_id(global_id)[1]


def outcome(results) -> Counter:
    return Counter("WON" if r["session"] else r["errors"][0]["code"] for r in results)


async def race_rounds(
    apis: list[Api],
    db,
    supervisors: list[str],
    rival: Rival,
    rounds: int,
    starters: int,
    spread: float,
) -> list[Counter]:
    """`rounds` rounds, each on a new interaction with bob connected: `starters` starts,
    spread over `apis`, and the rival, on each api in turn, from 0 to `spread` seconds after
    them. Every round is judged; returns each round's outcome."""
    outcomes = []
    for number in range(rounds):
        interaction = await apis[0].create()
        await apis[0].connect(interaction, "bob")
        starts = [
            apis[i % len(apis)].start(key, interaction)
            for i, key in enumerate(supervisors[:starters])
        ]
        results, answer = await _race(
            starts,
            rival.call(apis[number % len(apis)], interaction),
            delay=spread * (number % 10) / 9,
        )
        winner = judge_starts(results, rival.refusal)
        assert answer["errors"] == [] and answer["interaction"]["state"] == rival.state, answer
        await judge_sessions(db, interaction, winner, rival.end_reason)
        outcomes.append(outcome(results))
    return outcomes


async def _race(starts: list[Awaitable], rival: Awaitable, delay: float) -> tuple[list, dict]:
    async def later():
        await asyncio.sleep(delay)
        return await rival

    *answers, rival_answer = await asyncio.gather(*starts, later())
    return answers, rival_answer


def judge_starts(results, refusal: str) -> dict | None:
    """In any serial order of starts and one rival, the first start before the rival wins,
    the other starts before it are ALREADY_MONITORED by that winner, and those after it get
    the rival's `refusal`. Returns the winner's session, or None."""
    codes = outcome(results)
    assert set(codes) <= {"WON", "ALREADY_MONITORED", refusal}, codes
    assert codes["WON"] <= 1, codes
    winner = next((r["session"] for r in results if r["session"]), None)
    for result in results:
        if result["session"] is None and result["errors"][0]["code"] == "ALREADY_MONITORED":
            assert winner is not None, (result, codes)
            assert result["errors"][0]["currentMonitor"] == winner["monitor"], (result, winner)
    return winner


async def judge_sessions(db, interaction: str, winner: dict | None, end_reason: str) -> None:
    """No session left ACTIVE: the winner's, the only one, ended for `end_reason`."""
    async with db.read() as session:
        rows = (
            (
                await session.exec(
                    sa.select(MonitoringSession).where(
                        MonitoringSession.interaction_id == pk_of(interaction)
                    )
                )
            )
            .scalars()
            .all()
        )
    found = [(row.id, row.state, row.end_reason and row.end_reason.value) for row in rows]
    expected = [(pk_of(winner["id"]), MonitoringState.ENDED, end_reason)] if winner else []
    assert found == expected, found


def interleaved(outcomes: list[Counter], rival: Rival) -> int:
    """Rounds where the rival came between starts: some answered before it, some after."""
    return sum(
        1
        for codes in outcomes
        if codes[rival.refusal] and codes[rival.refusal] < sum(codes.values())
    )


def went_round_again(messages) -> Counter:
    """How often starts lost at a unique index, or found the interaction changed since their
    snapshot, from the monitoring log's messages."""
    kinds = {"lost at a unique index": "index", "changed after a start's snapshot": "changed"}
    return Counter(
        kind for message in messages for phrase, kind in kinds.items() if phrase in message
    )


@contextmanager
def committing_before(db, opening: str, change: Callable[[], Awaitable]) -> Iterator[list]:
    """Run `change` (which commits a transaction of its own) just before the first statement
    whose SQL starts with `opening`, wherever that statement comes from: the interleaving that
    a race reaches only now and then. Yields the statements it came before (one, once it has)."""
    before = []

    def commit(_connection, _cursor, statement, *_):
        if statement.startswith(opening) and not before:
            before.append(statement)
            await_only(change())  # in SQLAlchemy's greenlet: the statement waits for it

    event.listen(db.engine.sync_engine, "before_cursor_execute", commit)
    try:
        yield before
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", commit)
