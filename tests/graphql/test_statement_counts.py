"""Lists load in a fixed number of SQL statements, whatever their lengths (DataLoaders), all
in one snapshot."""

import asyncio
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event

from app.models import EventLogEntry

INTERACTION_FIELDS = """
  id state mediaType startedAt
  queue { name division { name } members { name } }
  participants {
    purpose name user { name division { key } }
    monitoredBy { monitor { name } agent { name } }
    monitorability { allowed reason currentMonitor { name } }
  }
  agents { name }
  activeMonitoring { monitor { name } interaction { id } }
  monitoringSessions { state monitor { key } }
"""

QUEUE_ACTIVITY = f"""query($queue: ID!) {{
  queueActivity(queueId: $queue) {{
    waitingCount interactingCount onQueueAgentCount
    waiting {{ {INTERACTION_FIELDS} }}
    interacting {{ {INTERACTION_FIELDS} }}
    onQueueAgents {{ agent {{ name division {{ name }} }} interactions {{ id queue {{ name }} }} }}
  }}
}}"""

INTERACTIONS = f"""{{
  interactions(first: 100) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {INTERACTION_FIELDS} }} }}
  }}
}}"""

PANEL = """{ interactionPanel { monitoring session { agent { name } }
                                interaction { participants { name } queue { name } } } }"""


@contextmanager
def counting_statements(db):
    """The request's statements: not SQLite's BEGIN, nor the event reader's periodic poll
    (`event_log`; it has read the writes' events before, see `statements_for`)."""
    statements = []

    def count(conn, cursor, statement, *args):
        if statement != "BEGIN" and "event_log" not in statement:
            statements.append((statement, conn.get_transaction()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def populate(api, count: int) -> None:
    """`count` interactions in billing: waiting, connected, monitored, ended, in turn."""
    for i in range(count):
        interaction = await api.create(media=["VOICE", "SMS", "CHAT", "EMAIL"][i % 4])
        if i % 4 == 0:
            continue
        await api.connect(interaction, "bob" if i % 2 else "dina")
        if i % 4 == 1:
            await api.start("ann", interaction)
        if i % 8 == 7:
            await api.end(interaction)


async def caught_up(app) -> None:
    """Until the event reader has read every event of the writes before."""
    broker = app.state.broker
    E = EventLogEntry
    async with app.state.db.read() as session:
        newest = await session.exec(
            sa.select(E.xid, E.position).order_by(E.xid.desc(), E.position.desc()).limit(1)
        )
        last = tuple(newest.first() or (0, 0))
    while broker.position < last:
        broker.wake()
        await asyncio.sleep(0.01)


async def statements_for(api, db, query, variables=None, user="ann") -> tuple[int, int]:
    """How many statements the query ran, and in how many transactions."""
    await caught_up(api.app)
    with counting_statements(db) as statements:
        await api.data(query, variables, user=user)
    return len(statements), len({transaction for _, transaction in statements})


async def measure(api, db, count: int) -> dict[str, tuple[int, int]]:
    await populate(api, count)
    return {
        "queueActivity": await statements_for(
            api, db, QUEUE_ACTIVITY, {"queue": api.ids["billing"]}
        ),
        "interactions": await statements_for(api, db, INTERACTIONS),
        "interactionPanel": await statements_for(api, db, PANEL),
    }


async def test_statement_counts_do_not_grow_with_the_lists(api, db):
    small = await measure(api, db, 5)
    # 45 more on top of the first 5: the same queries then cover 50 interactions.
    large = await measure(api, db, 45)
    assert small == large, f"5 interactions: {small}; 50 interactions: {large}"
    assert all(statements <= 20 for statements, _ in large.values()), large
    # One to read the viewer, one snapshot for all the rest.
    assert all(transactions == 2 for _, transactions in large.values()), large
