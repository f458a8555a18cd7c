"""The monitoring event log and its counter.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import MonitoringEventKind

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_event",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", enum_column(MonitoringEventKind), nullable=False),
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
    counter = op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_counter"),
    )
    op.bulk_insert(counter, [{"id": 1, "position": 0}])


def downgrade() -> None:
    op.drop_table("event_counter")
    op.drop_table("monitoring_event")
