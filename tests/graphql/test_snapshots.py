"""An operation's reads are one snapshot: what it shows is the state of a single moment, and
no connection outlives the operation."""

import asyncio

import sqlalchemy as sa

from app.auth import issue_token
from app.graphql.context import Context
from app.graphql.loaders import Loaders
from app.graphql.schema import schema
from app.graphql.subscriptions import _SharedWork
from app.models import Participant, User
from app.monitoring import integration
from tests.conftest import JWT_SECRET
from tests.monitoring.serial import committing_before, pk_of


async def user(db, key: str) -> User:
    async with db.read() as session:
        return (await session.exec(sa.select(User).where(User.key == key))).scalars().one()


async def rename(db, key: str, name: str) -> None:
    async with db.transaction() as session:
        await session.exec(sa.update(User).where(User.key == key).values(name=name))


def name_of(key: str):
    return sa.select(User.name).where(User.key == key)


async def checked_out_settles_at(db, count: int) -> int:
    """The pool's checked-out connections, once the event reader's poll has let go of its."""
    for _ in range(50):
        if db.engine.pool.checkedout() == count:
            break
        await asyncio.sleep(0.02)
    return db.engine.pool.checkedout()


async def test_a_readers_statements_see_the_moment_of_its_first(db, directory):
    loaders = Loaders(db, await user(db, "ann"))
    assert await loaders.scalars(name_of("bob")) == ["Bob Ray"]
    await rename(db, "bob", "Robert Ray")
    assert await loaders.scalars(name_of("bob")) == ["Bob Ray"]  # the same moment
    fresh = Loaders(db, await user(db, "ann"))
    assert await fresh.scalars(name_of("bob")) == ["Robert Ray"]  # a new one
    await loaders.close()
    await fresh.close()


async def test_a_closed_reader_reads_alone_and_holds_no_connection(db, directory):
    before = db.engine.pool.checkedout()
    loaders = Loaders(db, await user(db, "ann"))
    await loaders.scalars(name_of("bob"))
    assert db.engine.pool.checkedout() == before + 1
    await loaders.close()
    await rename(db, "bob", "Robert Ray")
    assert await loaders.scalars(name_of("bob")) == ["Robert Ray"]
    assert await checked_out_settles_at(db, before) == before


# The participants loader's statement.
PARTICIPANTS = f"SELECT {Participant.__tablename__}.id"

MONITORABILITY = """query($id: ID!) {
  interaction(id: $id) { state agents { state monitorability { allowed reason } } }
}"""


async def test_a_query_shows_one_moment_when_an_end_commits_between_its_reads(api, db):
    """Read statement by statement, the interaction came before the end and its agents after:
    a live call with a disconnected agent, "NO_AGENT", which no moment justifies."""
    interaction = await api.create()
    await api.connect(interaction, "bob")

    async def end():
        async with db.transaction() as session:
            await integration.end_interaction(session, pk_of(interaction))

    with committing_before(db, PARTICIPANTS, end) as came_before:
        data = await api.data(MONITORABILITY, {"id": interaction})
    assert came_before, "the end never came between the query's reads"
    assert data["interaction"] == {
        "state": "CONNECTED",
        "agents": [{"state": "CONNECTED", "monitorability": {"allowed": True, "reason": None}}],
    }
    again = await api.data(MONITORABILITY, {"id": interaction})  # a new operation, a new moment
    assert again["interaction"]["agents"][0]["monitorability"]["reason"] == "INTERACTION_ENDED"


async def test_each_mutation_payload_reads_after_its_own_write(api):
    interaction = await api.create()
    data = await api.data(
        """mutation($id: ID!, $dina: ID!) {
          joined: connectAgent(input: {interactionId: $id, agentId: $dina}) {
            interaction { participants { name state } }
          }
          left: disconnectAgent(input: {interactionId: $id, agentId: $dina}) {
            interaction { state participants { name state } }
          }
        }""",
        {"id": interaction, "dina": api.ids["dina"]},
        user="pbx",
    )
    joined = data["joined"]["interaction"]["participants"]
    assert [p["state"] for p in joined] == ["CONNECTED", "CONNECTED"]
    left = data["left"]["interaction"]
    assert left["state"] == "WAITING"
    assert [p["state"] for p in left["participants"]] == ["CONNECTED", "DISCONNECTED"]


async def test_no_connection_outlives_its_operation(api, db):
    """Queries, mutations, refusals and errors, one after another and side by side: every
    connection is back in the pool once they are answered."""
    before = await checked_out_settles_at(db, 0)
    interaction = await api.create()
    await api.connect(interaction, "bob")
    await asyncio.gather(
        api.raw(MONITORABILITY, {"id": interaction}, user="ann"),
        api.raw("{ interactions(first: 5) { totalCount nodes { id } } }", user="ann"),
        api.raw(
            "{ a: interactions { totalCount } b: interactions(first: 101) { totalCount } }",
            user="ann",
        ),
        api.raw("{ nope }", user="ann"),
        api.raw("{ interactions { totalCount } }"),  # no token
        *(api.start(key, interaction) for key in ("carl", "ann", "sue")),  # sue: NOT_FOUND
        *(api.raw(MONITORABILITY, {"id": interaction}, user=key) for key in ("root", "dina")),
    )
    await api.end(interaction)
    await api.start("ann", interaction)  # INTERACTION_ENDED, with its own reads
    assert await checked_out_settles_at(db, before) == before


async def test_a_batch_snapshot_ends_with_the_last_execution_that_reads_it(db, directory):
    """Subscribers of one batch share its rows and snapshot while they execute side by side;
    the last to finish gives the connection back, and a later one reads a moment of its own."""
    before = db.engine.pool.checkedout()
    bob = await user(db, "bob")
    shared = _SharedWork(db)
    first, second = shared.begin(), shared.begin()
    assert first is second
    assert (await first.user.load(bob.id)).name == "Bob Ray"
    assert db.engine.pool.checkedout() == before + 1
    await shared.end()
    assert db.engine.pool.checkedout() == before + 1  # the second still reads it
    await shared.end()
    assert await checked_out_settles_at(db, before) == before
    await rename(db, "bob", "Robert Ray")
    later = shared.begin()
    assert later is not first
    assert (await later.user.load(bob.id)).name == "Robert Ray"
    await shared.end()
    assert await checked_out_settles_at(db, before) == before


def websocket_context(app, db, user: str) -> Context:
    """A WebSocket connection's context: every operation of the connection is given it."""
    context = Context(db, app.state.broker, app.state.metrics, JWT_SECRET)
    context.connection_params = {"Authorization": f"Bearer {issue_token(JWT_SECRET, user, 60)}"}
    return context


async def test_each_operation_on_a_websocket_reads_current_data_and_keeps_nothing(
    app, db, directory
):
    context = websocket_context(app, db, "ann")
    query = "query($id: ID!) { node(id: $id) { ... on User { name } } }"
    before = await checked_out_settles_at(db, 0)

    async def bobs_name() -> str:
        result = await schema.execute(query, {"id": directory["bob"]}, context_value=context)
        assert result.errors is None, result.errors
        return result.data["node"]["name"]

    assert await bobs_name() == "Bob Ray"
    await rename(db, "bob", "Robert Ray")
    assert await bobs_name() == "Robert Ray"
    assert await checked_out_settles_at(db, before) == before


async def test_operations_side_by_side_on_one_websocket_each_read_their_own_moment(
    app, db, directory
):
    connection = websocket_context(app, db, "ann")
    first, second = connection.for_operation(), connection.for_operation()
    await first.require_viewer()
    await second.require_viewer()
    assert await first.loaders.scalars(name_of("bob")) == ["Bob Ray"]
    await rename(db, "bob", "Robert Ray")
    assert await second.loaders.scalars(name_of("bob")) == ["Robert Ray"]
    assert await first.loaders.scalars(name_of("bob")) == ["Bob Ray"]
    await first.forget_reads()
    await second.forget_reads()
