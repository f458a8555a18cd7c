"""app/records.py on both backends: a record is the row it was read from (the same values in
the same order, read by the same names, equal and hashed alike), with a C field per column;
the Reader and the viewer's authentication read records; what is remembered per record is
recomputed for anything else."""

from collections import namedtuple

import sqlalchemy as sa

from app.graphql.context import _VIEWER
from app.graphql.loaders import Reader
from app.models import Division, Queue, User
from app.records import first_record, records, remembered_per_record

Q = Queue.__table__


async def _queues(db) -> None:
    async with db.transaction() as session:
        session.add(Division(id=1, key="north", name="North"))
        await session.flush()
        session.add(Queue(id=1, key="billing", name="Billing", division_id=1))
        session.add(Queue(id=2, key="sales", name="Sales", division_id=1))
        session.add(User(key="ann", name="Ann", division_id=1, roles=["SUPERVISOR"]))


async def test_a_record_is_its_row(db):
    await _queues(db)
    statement = sa.select(Q).order_by(Q.c.id)
    async with db.snapshot() as connection:
        rows = (await connection.execute(statement)).all()
        found = records(await connection.execute(statement))
    assert [tuple(r) for r in found] == [tuple(r) for r in rows]
    assert found == rows and [hash(r) for r in found] == [hash(r) for r in rows]
    for record, row in zip(found, rows, strict=True):
        assert record._fields == tuple(row._fields) == ("id", "key", "name", "division_id")
        assert (record.id, record.key, record.name) == (row.id, row.key, row.name)
    # A field is a C descriptor of the record's class, not a __getattr__ lookup.
    assert type(type(found[0]).__dict__["name"]).__name__ == "_tuplegetter"


async def test_columns_that_name_no_field_stay_rows(db):
    await _queues(db)
    unusual = sa.select(Q.c.id, Q.c.name.label("from"), Q.c.key.label("_key"))
    twice = sa.select(Q.c.id, Q.c.division_id.label("id"))
    async with db.snapshot() as connection:
        for statement in (unusual, twice):
            found = records(await connection.execute(statement.order_by(Q.c.id)))
            assert all(isinstance(r, sa.Row) for r in found) and len(found) == 2
        empty = records(await connection.execute(sa.select(Q).where(Q.c.id < 0)))
        assert empty == []
        assert first_record(await connection.execute(sa.select(Q).where(Q.c.id < 0))) is None
        first = first_record(await connection.execute(sa.select(Q).order_by(Q.c.id)))
    assert not isinstance(first, sa.Row) and first.key == "billing"


async def test_the_reader_and_the_viewer_read_records(db):
    await _queues(db)
    reader = Reader(db)
    try:
        (queue,) = await reader.rows(sa.select(Q).where(Q.c.id == 2))
    finally:
        await reader.close()
    assert not isinstance(queue, sa.Row) and (queue.key, queue.division_id) == ("sales", 1)
    viewer = await db.first_row(_VIEWER, {"key": "ann"})
    assert not isinstance(viewer, sa.Row)
    assert (viewer.name, viewer.roles) == ("Ann", ["SUPERVISOR"])


async def test_statements_built_once_run_with_their_keys_bound(db):
    await _queues(db)

    def by_ids(database, table):
        return sa.select(table).where(database.one_of(table.c.id)).order_by(table.c.id)

    statement = db.statement(by_ids, Q)
    assert db.statement(by_ids, Q) is statement  # built once
    reader = Reader(db)
    try:
        both = await reader.rows(statement, {"keys": [2, 1]})
        one = await reader.rows(statement, {"keys": [2]})
        none = await reader.rows(statement, {"keys": []})
    finally:
        await reader.close()
    assert [q.key for q in both] == ["billing", "sales"]
    assert [q.key for q in one] == ["sales"] and none == []


def test_remembered_per_record_by_identity_and_only_for_records():
    calls = []

    @remembered_per_record
    def name_of(row):
        calls.append(row)
        return row.name.upper()

    Record = namedtuple("Record", ("id", "name"))  # what records() makes
    ann, bob = Record(1, "Ann"), Record(2, "Bob")
    assert [name_of(ann), name_of(ann), name_of(bob), name_of(ann)] == ["ANN", "ANN", "BOB", "ANN"]
    assert calls == [ann, bob, ann]  # the last record only, by identity
    assert name_of(Record(1, "Ann")) == "ANN" and len(calls) == 4  # equal, not the same

    class Mutable:  # an ORM instance, say: changed in place, answered again
        name = "carl"

    carl = Mutable()
    assert name_of(carl) == "CARL"
    carl.name = "karl"
    assert name_of(carl) == "KARL" and len(calls) == 6
