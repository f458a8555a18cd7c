"""Read results as records: named tuples, one class per set of columns.

A SQLAlchemy Row answers an attribute through its `__getattr__` and a key lookup: about
0.7 us a read, where a named tuple's field is a C descriptor (about 25 ns). The rows of a
large answer are read tens of thousands of times (by the types' constructors, the
visibility checks, the monitoring rules of every agent): reading records instead took a
third off the CPU of a 1,000-interaction queueActivity (bench/README.md). A record is still a tuple of the
row's values, in the row's order, read by the same names, compared and hashed the same.
"""

import functools
import keyword
from collections import namedtuple
from collections.abc import Sequence

import sqlalchemy as sa


def records(result: sa.Result) -> Sequence:
    """Every row of `result` as a record (as Rows where the columns cannot name fields)."""
    make = _maker(tuple(result.keys()))
    rows = result.all()
    return rows if make is None else list(map(make, rows))


def first_record(result: sa.Result):
    """The first row of `result` as a record, or None."""
    make = _maker(tuple(result.keys()))
    row = result.first()
    return row if row is None or make is None else make(row)


@functools.lru_cache(maxsize=512)
def _maker(keys: tuple[str, ...]):
    """A function from a row to a record of these columns; None where a key is not a
    plain field name (a keyword, a leading underscore, or twice: Row keeps its rules)."""
    plain = all(k.isidentifier() and not keyword.iskeyword(k) and k[:1] != "_" for k in keys)
    if not keys or not plain or len(set(keys)) != len(keys):
        return None
    record = namedtuple("Record", keys)
    return functools.partial(tuple.__new__, record)


def remembered_per_record(function):
    """`function` of one row, remembered for the last record it was asked about (by
    identity: a record is immutable, and the one remembered cannot be freed and its id
    reused). The monitoring rules ask the same of one viewer's row for every agent of a
    queue's activity. Anything else (an ORM instance, which can change) is computed each
    time."""
    last: tuple = (None, None)

    @functools.wraps(function)
    def remembered(row):
        nonlocal last
        seen, value = last  # one read: another thread may replace `last` meanwhile
        if seen is row:
            return value
        value = function(row)
        if isinstance(row, tuple):
            last = (row, value)
        return value

    return remembered
