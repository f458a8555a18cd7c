"""The event log records every change: monitoring_event becomes event_log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The monitoring events move over with their positions, so that a cursor handed out before the
upgrade resumes where it left off. The log has no foreign keys: it is history, pruned from
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
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", enum_column(EventKind), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("presence", enum_column(Presence), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_event_log"),
    )
    op.execute(
        "INSERT INTO event_log (position, kind, occurred_at, interaction_id, queue_id, session_id)"
        " SELECT position, 'MONITORING_' || kind, occurred_at, interaction_id, queue_id,"
        " session_id FROM monitoring_event"
    )
    op.drop_table("monitoring_event")
    # Retention deletes ended interactions oldest first.
    op.create_index("ix_interaction_ended", "interaction", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_interaction_ended", table_name="interaction")
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
