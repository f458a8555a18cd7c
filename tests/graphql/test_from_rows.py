"""app/graphql/from_rows.py: `of(row)` builds the same object as the type's `__init__` with
every field given, for each type built from rows; the decorator refuses what `of` could not
build faithfully."""

from collections import namedtuple
from datetime import UTC, datetime

import pytest
import strawberry

from app import models
from app.graphql import types
from app.graphql.from_rows import built_from_rows
from app.models.enums import (
    Direction,
    InteractionState,
    MediaType,
    MonitoringEndReason,
    MonitoringMode,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
)

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
# A row of each table (every column, as a record has them), and the fields __init__ takes.
CASES = [
    (
        types.Division,
        models.Division,
        {"id": 3, "key": "north", "name": "North"},
        {"pk": 3, "key": "north", "name": "North"},
    ),
    (
        types.Queue,
        models.Queue,
        {"id": 4, "key": "billing", "name": "Billing", "division_id": 3},
        {"pk": 4, "key": "billing", "name": "Billing", "division_pk": 3},
    ),
    (
        types.Participant,
        models.Participant,
        {
            "id": 5,
            "interaction_id": 6,
            "purpose": ParticipantPurpose.AGENT,
            "state": ParticipantState.CONNECTED,
            "user_id": 7,
            "name": "Ann",
            "connected_at": AT,
            "disconnected_at": None,
        },
        {
            "pk": 5,
            "purpose": ParticipantPurpose.AGENT,
            "state": ParticipantState.CONNECTED,
            "name": "Ann",
            "connected_at": AT,
            "disconnected_at": None,
            "user_pk": 7,
            "interaction_pk": 6,
        },
    ),
    (
        types.Interaction,
        models.Interaction,
        {
            "id": 6,
            "external_id": "call-6",
            "media_type": MediaType.VOICE,
            "direction": Direction.INBOUND,
            "state": InteractionState.CONNECTED,
            "queue_id": 4,
            "started_at": AT,
            "ended_at": None,
            "version": 2,
        },
        {
            "pk": 6,
            "media_type": MediaType.VOICE,
            "direction": Direction.INBOUND,
            "state": InteractionState.CONNECTED,
            "started_at": AT,
            "ended_at": None,
            "queue_pk": 4,
        },
    ),
    (
        types.MonitoringSession,
        models.MonitoringSession,
        {
            "id": 8,
            "interaction_id": 6,
            "media_type": MediaType.VOICE,
            "monitor_id": 9,
            "agent_id": 7,
            "monitor_participant_id": 10,
            "state": MonitoringState.ENDED,
            "started_at": AT,
            "ended_at": AT,
            "end_reason": MonitoringEndReason.STOPPED,
            "mode": MonitoringMode.COACH,
            "disclosed_at": AT,
        },
        {
            "pk": 8,
            "state": MonitoringState.ENDED,
            "started_at": AT,
            "ended_at": AT,
            "end_reason": MonitoringEndReason.STOPPED,
            "mode": MonitoringMode.COACH,
            "interaction_pk": 6,
            "monitor_pk": 9,
            "agent_pk": 7,
        },
    ),
]


@pytest.mark.parametrize(
    ("cls", "model", "row", "fields"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_of_builds_what_init_builds(cls, model, row, fields):
    assert set(row) == set(model.__table__.columns.keys())  # a row of every column
    record = namedtuple("Record", row)(**row)
    built = cls.of(record)
    assert type(built) is cls
    assert vars(built) == vars(cls(**fields))  # every field, in __init__'s order
    assert list(vars(built)) == list(vars(cls(**fields)))
    assert built == cls(**fields)


def test_a_row_without_a_column_fails_loudly():
    with pytest.raises(AttributeError):
        types.Division.of(namedtuple("Record", "id name")(1, "North"))


def test_the_decorator_refuses_what_of_would_build_wrong():
    def a_type(**members):
        return strawberry.type(type("Kind", (), {"__annotations__": {"name": str}, **members}))

    with pytest.raises(TypeError, match="no field"):
        built_from_rows(label="name")(a_type())
    with pytest.raises(TypeError, match="__post_init__"):
        built_from_rows()(a_type(__post_init__=lambda self: None))
    with pytest.raises(TypeError, match="plain name"):
        built_from_rows(name="class")(a_type())
    kind = built_from_rows()(a_type())
    assert kind.of(namedtuple("Record", "name")("x")).name == "x"
