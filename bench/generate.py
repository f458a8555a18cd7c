"""Benchmark data: a directory and interactions, written straight into a migrated database.

Defaults are the issue's: 500 agents, 50 supervisors, 20 queues, 10,000 historical and
1,000 live interactions. The live ones all sit in one "hot" queue (queue 1), the one the
queueActivity benchmark watches: 40% waiting, 60% connected (a tenth with two agents), 5%
monitored. Historical ones are spread over every queue, ended, some with a past session.

    python bench/generate.py DATABASE_URL [--agents N ...]   prints a JSON summary
"""

import argparse
import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.db import Database, migrate
from app.models import (
    Division,
    EventLogEntry,
    Interaction,
    MonitoringModeChange,
    MonitoringSession,
    Participant,
    Queue,
    QueueMember,
    User,
)

MEDIA = ["VOICE"] * 50 + ["CHAT"] * 20 + ["SMS"] * 15 + ["EMAIL"] * 10 + ["CALLBACK"] * 5
MONITORABLE = {"VOICE", "CHAT", "SMS"}


def _rows(sizes, rnd: random.Random, now: datetime):
    divisions = [
        {"id": 1, "key": "north", "name": "North"},
        {"id": 2, "key": "south", "name": "South"},
    ]
    users, uid = [], 0

    def user(key, name, division, roles, presence="OFFLINE"):
        nonlocal uid
        uid += 1
        users.append(
            {
                "id": uid,
                "key": key,
                "name": name,
                "division_id": division,
                "roles": roles,
                "presence": presence,
            }
        )
        return uid

    # The hot queue, its agents and its supervisors are all in North.
    agents = [
        user(
            f"agent{i:04d}",
            f"Agent {i:04d}",
            2 if i % 5 == 4 else 1,
            ["AGENT"],
            "ON_QUEUE" if rnd.random() < 0.7 else rnd.choice(["AVAILABLE", "BUSY", "AWAY"]),
        )
        for i in range(sizes.agents)
    ]
    supervisors = [
        user(f"sup{i:03d}", f"Supervisor {i:03d}", 1 if i % 4 else 2, ["SUPERVISOR"])
        for i in range(sizes.supervisors)
    ]
    user("admin", "Ada Admin", 1, ["ADMIN"])
    user("pbx", "Telephony", 1, ["INTEGRATION"])
    queues = [
        {
            "id": q + 1,
            "key": f"queue{q:02d}",
            "name": f"Queue {q:02d}",
            "division_id": 1 if q % 4 else 2,
        }
        for q in range(sizes.queues)
    ]
    queues[0]["division_id"] = 1
    members = {(queues[i % sizes.queues]["id"], agent) for i, agent in enumerate(agents)}
    members |= {(1, agent) for agent in agents[:: max(1, sizes.agents // 60)]}
    north_agents = [a for a in agents if users[a - 1]["division_id"] == 1]
    north_supervisors = [s for s in supervisors if users[s - 1]["division_id"] == 1]

    interactions, participants, sessions = [], [], []
    ids = {"interaction": 0, "participant": 0, "session": 0}

    def add_interaction(queue_id, state, started, ended=None):
        ids["interaction"] += 1
        media = rnd.choice(MEDIA)
        interactions.append(
            {
                "id": ids["interaction"],
                "external_id": f"bench-{ids['interaction']}",
                "media_type": media,
                "direction": rnd.choice(["INBOUND"] * 5 + ["OUTBOUND"]),
                "state": state,
                "queue_id": queue_id,
                "started_at": started,
                "ended_at": ended,
                "version": 0,
            }
        )
        return ids["interaction"], media

    def add_participant(interaction, purpose, state, at, user_id=None, name="Customer", left=None):
        ids["participant"] += 1
        participants.append(
            {
                "id": ids["participant"],
                "interaction_id": interaction,
                "purpose": purpose,
                "state": state,
                "user_id": user_id,
                "name": users[user_id - 1]["name"] if user_id else name,
                "connected_at": at,
                "disconnected_at": left,
            }
        )
        return ids["participant"]

    def add_session(interaction, media, monitor, agent, at, ended=None):
        state = "ENDED" if ended else "ACTIVE"
        participant = add_participant(
            interaction,
            "MONITOR",
            "DISCONNECTED" if ended else "CONNECTED",
            at,
            monitor,
            left=ended,
        )
        ids["session"] += 1
        sessions.append(
            {
                "id": ids["session"],
                "interaction_id": interaction,
                "media_type": media,
                "monitor_id": monitor,
                "agent_id": agent,
                "monitor_participant_id": participant,
                "state": state,
                "started_at": at,
                "ended_at": ended,
                "end_reason": "INTERACTION_ENDED" if ended else None,
            }
        )

    for n in range(sizes.historical):
        started = (
            now - timedelta(days=7) + timedelta(seconds=n * 600_000 / max(sizes.historical, 1))
        )
        ended = started + timedelta(seconds=rnd.randint(60, 900))
        queue = queues[n % sizes.queues]["id"]
        interaction, media = add_interaction(queue, "ENDED", started, ended)
        add_participant(interaction, "CUSTOMER", "DISCONNECTED", started, left=ended)
        agent = rnd.choice(agents)
        add_participant(
            interaction, "AGENT", "DISCONNECTED", started + timedelta(seconds=20), agent, left=ended
        )
        if media in MONITORABLE and rnd.random() < 0.05:
            add_session(
                interaction,
                media,
                rnd.choice(supervisors),
                agent,
                started + timedelta(seconds=30),
                ended,
            )

    hot_agents = [a for (q, a) in sorted(members) if q == 1 and a in north_agents]
    for n in range(sizes.live):
        started = now - timedelta(seconds=(sizes.live - n) * 3)
        connected = rnd.random() < 0.6
        interaction, media = add_interaction(1, "CONNECTED" if connected else "WAITING", started)
        add_participant(interaction, "CUSTOMER", "CONNECTED", started, name=f"Customer {n:04d}")
        if connected:
            agent = rnd.choice(hot_agents)
            add_participant(
                interaction, "AGENT", "CONNECTED", started + timedelta(seconds=2), agent
            )
            if rnd.random() < 0.1:
                add_participant(
                    interaction,
                    "AGENT",
                    "CONNECTED",
                    started + timedelta(seconds=4),
                    rnd.choice([a for a in hot_agents if a != agent]),
                )
            if media in MONITORABLE and rnd.random() < 0.05 * 1 / 0.6:
                add_session(
                    interaction,
                    media,
                    rnd.choice(north_supervisors),
                    agent,
                    started + timedelta(seconds=5),
                )
    queue_members = [{"queue_id": q, "user_id": u} for (q, u) in sorted(members)]
    return {
        Division: divisions,
        User: users,
        Queue: queues,
        QueueMember: queue_members,
        Interaction: interactions,
        Participant: participants,
        MonitoringSession: sessions,
        # Every session's audit trail starts with its mode (MONITOR) at its start.
        MonitoringModeChange: [
            {"session_id": row["id"], "mode": "MONITOR", "at": row["started_at"]}
            for row in sessions
        ],
    }


def generate(url: str, sizes, seed: int = 1) -> dict:
    """Migrate, empty and fill the database; returns the row count of each table."""
    migrate(url)
    return asyncio.run(_fill(url, sizes, seed))


async def _fill(url: str, sizes, seed: int) -> dict:
    db = Database(url)
    rows = _rows(sizes, random.Random(seed), datetime.now(UTC))
    async with db.transaction() as session:
        # The event log first: it refers to sessions of a previous run.
        await session.exec(sa.delete(EventLogEntry))
        for model in reversed(
            (
                Division,
                User,
                Queue,
                QueueMember,
                Interaction,
                Participant,
                MonitoringSession,
                MonitoringModeChange,
            )
        ):
            await session.exec(sa.delete(model))
        for model, values in rows.items():
            for start in range(0, len(values), 2000):
                await session.exec(sa.insert(model), params=values[start : start + 2000])
    if not db.sqlite:  # the sequences must follow the explicit ids
        async with db.transaction() as session:
            for model in rows:
                if model is not QueueMember:
                    table = model.__tablename__
                    await session.exec(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                        )
                    )
            await session.exec(sa.text("ANALYZE"))
    await db.dispose()
    return {model.__tablename__: len(values) for model, values in rows.items()}


def sizes_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--supervisors", type=int, default=50)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--historical", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=1_000)
    return parser


if __name__ == "__main__":
    parser = sizes_parser()
    parser.add_argument("database_url")
    arguments = parser.parse_args()
    print(json.dumps(generate(arguments.database_url, arguments)))
