"""The event log records every change: monitoring_event becomes event_log, ordered by
transaction id and position instead of a counter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The monitoring events move over with their positions (and transaction id 0), so that a
cursor handed out before the upgrade resumes where it left off. The log has no foreign keys: it is history, pruned from
its oldest end, and an append must not lock the rows it names.
"""

import sqlalchemy as sa
from alembic import op

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import EventKind, Presence

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("kind", enum_column(EventKind), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("presence", enum_column(Presence), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_event_log"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_log_cursor", "event_log", ["xid", "position"])
    # The monitoring events keep their positions, with xid 0: before every new one.
    op.execute(
        "INSERT INTO event_log"
        " (position, xid, kind, occurred_at, interaction_id, queue_id, session_id)"
        " SELECT position, 0, 'MONITORING_' || kind, occurred_at, interaction_id, queue_id,"
        " session_id FROM monitoring_event"
    )
    if op.get_bind().dialect.name == "postgresql":  # new positions follow every one handed out
        op.execute(
            "SELECT setval(pg_get_serial_sequence('event_log', 'position'),"
            " (SELECT position FROM event_counter WHERE id = 1) + 1, false)"
        )
    else:
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'event_log'")
        op.execute(
            "INSERT INTO sqlite_sequence (name, seq)"
            " SELECT 'event_log', position FROM event_counter WHERE id = 1"
        )
    retention = op.create_table(
        "event_retention",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_retention"),
    )
    op.bulk_insert(retention, [{"id": 1, "xid": 0, "position": 0}])
    op.drop_table("monitoring_event")
    op.drop_table("event_counter")
    # Retention deletes ended interactions oldest first.
    op.create_index("ix_interaction_ended", "interaction", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_interaction_ended", table_name="interaction")
    counter = op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_counter"),
    )
    op.bulk_insert(counter, [{"id": 1, "position": 0}])
    op.execute(
        "UPDATE event_counter SET position = (SELECT coalesce(max(position), 0) FROM event_log)"
    )
    op.drop_table("event_retention")
    op.create_table(
        "monitoring_event",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_monitoring_event"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["monitoring_session.id"],
            name="fk_monitoring_event_session_id_monitoring_session",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interaction.id"],
            name="fk_monitoring_event_interaction_id_interaction",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name="fk_monitoring_event_queue_id_queue"
        ),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["users.id"], name="fk_monitoring_event_monitor_id_users"
        ),
    )
    op.create_index("ix_monitoring_event_session_id", "monitoring_event", ["session_id"])
    # Only monitoring events can go back, and only those whose session is still there.
    op.execute(
        "INSERT INTO monitoring_event"
        " (position, kind, occurred_at, session_id, interaction_id, queue_id, monitor_id)"
        " SELECT e.position, substr(e.kind, 12), e.occurred_at, e.session_id,"
        " e.interaction_id, e.queue_id, s.monitor_id"
        " FROM event_log e JOIN monitoring_session s ON s.id = e.session_id"
        " WHERE e.kind LIKE 'MONITORING_%'"
    )
    op.drop_table("event_log")
