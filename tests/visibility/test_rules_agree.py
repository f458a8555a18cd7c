"""Each rule of the visibility policy says the same in SQL and in memory, on real rows of
both databases, for every viewer of the test directory."""

from types import SimpleNamespace

import sqlalchemy as sa

from app.directory.load import DirectoryFile, load_directory
from app.graphql.ids import encode_id
from app.models import Interaction, MonitoringSession, Participant, Queue, User
from app.models.enums import ParticipantPurpose
from app.visibility import Policy, SessionFacts
from tests.conftest import DIRECTORY
from tests.events.test_subscription import monitored


async def floor(api, db) -> None:
    """Interactions of both divisions' queues, some taken across divisions, some monitored,
    one with an agent who left, one taken by a supervisor who takes calls too; some sessions
    only ever silent, some disclosed (coached, barged, taken over)."""
    sal = {"key": "sal", "name": "Sal Ito", "division": "north", "roles": ["AGENT", "SUPERVISOR"]}
    await load_directory(
        db, DirectoryFile.model_validate({"divisions": DIRECTORY["divisions"], "users": [sal]})
    )
    async with db.read() as session:
        sal_id = (await session.exec(sa.select(User.id).where(User.key == "sal"))).scalar_one()
    api.ids["sal"] = encode_id("User", sal_id)
    await monitored(api, agent="sal")
    await monitored(api)
    await monitored(api, queue="sales", agent="tom", supervisor="sue")
    coached = await api.create()
    await api.connect(coached, "sal")
    assert (await api.start("ann", coached, mode="COACH"))["errors"] == []
    barged = await api.create(media="CHAT")
    await api.connect(barged, "dina")
    session = (await api.start("carl", barged))["session"]["id"]
    assert (await api.change_mode("carl", session, "BARGE"))["errors"] == []
    taken = await api.create(media="CHAT", queue="support")
    await api.connect(taken, "eli")
    session = (await api.start("root", taken))["session"]["id"]
    assert (await api.take_over("root", session))["errors"] == []
    across = await api.create(queue="sales")
    await api.connect(across, "bob")
    left = await api.create(queue="support")
    await api.connect(left, "tom")
    await api.connect(left, "eli")
    await api.disconnect(left, "tom")
    await api.create(queue="billing")


async def rows(db):
    async with db.read() as session:

        async def all_of(statement):
            return (await session.exec(statement)).all()

        users = {u.id: u for u in await all_of(sa.select(User.__table__))}
        queues = {q.id: q for q in await all_of(sa.select(Queue.__table__))}
        interactions = await all_of(sa.select(Interaction.__table__))
        participants = await all_of(sa.select(Participant.__table__))
        sessions = await all_of(sa.select(MonitoringSession.__table__))
    return users, queues, interactions, participants, sessions


def scopes(queues, interactions, participants, users) -> dict[int, SimpleNamespace]:
    """Each interaction's InteractionScope, built from its rows."""
    return {
        i.id: SimpleNamespace(
            queue_division_id=queues[i.queue_id].division_id,
            agents=[
                SimpleNamespace(user_id=p.user_id, division_id=users[p.user_id].division_id)
                for p in participants
                if p.interaction_id == i.id and p.purpose == ParticipantPurpose.AGENT
            ],
        )
        for i in interactions
    }


async def ids_where(db, select, condition) -> set[int]:
    async with db.read() as session:
        return set((await session.exec(select.where(condition))).scalars())


async def test_sql_and_memory_agree_for_every_viewer(api, db):
    await floor(api, db)
    users, queues, interactions, participants, sessions = await rows(db)
    by_interaction = scopes(queues, interactions, participants, users)
    by_session = {
        s.id: SessionFacts(
            by_interaction[s.interaction_id].agents, disclosed=s.disclosed_at is not None
        )
        for s in sessions
    }
    sessions_sql = sa.select(MonitoringSession.id).join(
        Interaction, Interaction.id == MonitoringSession.interaction_id
    )
    kinds_seen = set()
    for viewer in users.values():
        policy = Policy(viewer)
        for name, select, facts in (
            ("interaction", sa.select(Interaction.id), by_interaction),
            ("session", sessions_sql, by_session),
            ("queue", sa.select(Queue.id), queues),
        ):
            rule = getattr(policy, name)
            in_memory = {pk for pk, fact in facts.items() if rule.check(fact)}
            assert await ids_where(db, select, rule.sql) == in_memory, (viewer.key, name)
            kinds_seen.add((name, 0 < len(in_memory) < len(facts)))
    # The viewers and the floor are varied enough that each rule both allows and refuses.
    assert {("interaction", True), ("session", True), ("queue", True)} <= kinds_seen
