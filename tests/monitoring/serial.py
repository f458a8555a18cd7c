"""Races of starts against one integration call, judged: accept only what some serial order
of the same calls would answer; and one interleaving of such a race, made deterministic."""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util import await_only

from app.graphql.ids import decode_node_id
from app.models import EventLogEntry, MonitoringSession
from app.models.enums import EventKind, MonitoringState
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


# --- mode switches racing stops on one session ----------------------------------------------

MODES = ("MONITOR", "COACH", "BARGE")


async def race_modes_and_stops(
    apis: list[Api], db, rounds: int, calls: int = 20, stops: int = 2
) -> Counter:
    """`rounds` rounds, each on a new voice session of ann on bob: `calls` calls at once,
    `stops` of them stopMonitoring and the rest changeMonitoringMode to modes in turn, spread
    over `apis`. Every round is judged as a serial order must explain it (judge_modes).
    Returns, over all rounds, how many changes succeeded, how many found the session ended,
    and in how many rounds both happened with the changes that made the history coming from
    more than one api: the calls really interleaved."""
    tally = Counter()
    for number in range(rounds):
        interaction = await apis[0].create()
        await apis[0].connect(interaction, "bob")
        session = (await apis[0].start("ann", interaction))["session"]["id"]
        stop_at = {(number * 7 + k * calls // stops) % calls for k in range(stops)}
        planned = []
        for i in range(calls):
            api = apis[i % len(apis)]
            if i in stop_at:
                planned.append(("STOP", i % len(apis), api.stop("ann", session)))
            else:
                mode = MODES[(i + number) % len(MODES)]
                planned.append((mode, i % len(apis), api.change_mode("ann", session, mode)))
        answers = await asyncio.gather(*(call for _, _, call in planned))
        results = [(mode, via, answer) for (mode, via, _), answer in zip(planned, answers)]
        makers = await judge_modes(apis[0], db, session, results)
        changed = sum(1 for mode, _, a in results if mode != "STOP" and not a["errors"])
        ended = sum(1 for mode, _, a in results if mode != "STOP" and a["errors"])
        tally["changes"] += changed
        tally["found ended"] += ended
        tally["interleaved rounds"] += bool(changed and ended and len(makers) > 1)
    return tally


SESSION = """query($id: ID!) { node(id: $id) { ... on MonitoringSession {
  state endReason endedAt mode modeHistory { mode at } } } }"""


async def judge_modes(api: Api, db, session_id: str, results) -> set[int]:
    """Accept only what a serial order of the calls explains: every stop succeeds and the
    session ends STOPPED; a change succeeds in its mode (with a history that is a prefix of
    the final one) or, after the stop, answers SESSION_ENDED; the final history starts with
    MONITOR, never repeats a mode twice in a row, and each of its later entries was made by a
    change that succeeded; the log has one MODE_CHANGED event per entry and one end. Returns
    the apis (by index) whose changes made the history."""
    final = (await api.data(SESSION, {"id": session_id}, user="ann"))["node"]
    assert final["state"] == "ENDED" and final["endReason"] == "STOPPED", final
    history = [entry["mode"] for entry in final["modeHistory"]]
    assert history[0] == "MONITOR", history
    assert all(a != b for a, b in pairwise(history)), history
    ended_at = datetime.fromisoformat(final["endedAt"])
    assert all(datetime.fromisoformat(e["at"]) <= ended_at for e in final["modeHistory"]), final
    made_by: dict[int, set[int]] = {}
    for mode, via, answer in results:
        if mode == "STOP":
            assert answer["errors"] == [] and answer["session"]["state"] == "ENDED", answer
            continue
        if answer["errors"]:
            assert [e["code"] for e in answer["errors"]] == ["SESSION_ENDED"], answer
            continue
        seen = [entry["mode"] for entry in answer["session"]["modeHistory"]]
        assert answer["session"]["mode"] == mode == seen[-1], answer
        assert history[: len(seen)] == seen, (seen, history)
        made_by.setdefault(len(seen), set()).add(via)
    assert set(range(2, len(history) + 1)) <= set(made_by), (history, made_by)
    async with db.read() as session:
        logged = Counter(
            (
                await session.exec(
                    sa.select(EventLogEntry.kind).where(
                        EventLogEntry.session_id == pk_of(session_id)
                    )
                )
            ).scalars()
        )
    assert logged == Counter(
        {
            EventKind.MONITORING_STARTED: 1,
            EventKind.MONITORING_MODE_CHANGED: len(history) - 1,
            EventKind.MONITORING_ENDED: 1,
        }
    ), logged
    return {via for length, vias in made_by.items() if length >= 2 for via in vias}
