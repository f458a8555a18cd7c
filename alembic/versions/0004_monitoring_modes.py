"""Monitoring modes: a session's mode and its audit trail, when it was disclosed to the
agents, users' monitoring permissions, and whether a monitoring event was disclosed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Every session so far was silent monitoring: it is in MONITOR mode, has one entry in its
audit trail (MONITOR at its start) and was never disclosed.
"""

import sqlalchemy as sa
from alembic import op

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import MonitoringMode

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_session") as table:
        table.add_column(
            sa.Column(
                "mode", enum_column(MonitoringMode), nullable=False, server_default="MONITOR"
            )
        )
        table.add_column(sa.Column("disclosed_at", UTCDateTime(), nullable=True))
    # The audit trail reads sessions by start, then id.
    op.create_index("ix_monitoring_session_started", "monitoring_session", ["started_at", "id"])
    op.create_table(
        "monitoring_mode_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("mode", enum_column(MonitoringMode), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_mode_change"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["monitoring_session.id"],
            name="fk_monitoring_mode_change_session_id_monitoring_session",
        ),
    )
    op.create_index(
        "ix_monitoring_mode_change_session",
        "monitoring_mode_change",
        ["session_id", "at", "id"],
    )
    op.execute(
        "INSERT INTO monitoring_mode_change (session_id, mode, at)"
        " SELECT id, 'MONITOR', started_at FROM monitoring_session"
    )
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("permissions", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("event_log") as table:
        table.add_column(sa.Column("disclosed", sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE event_log SET disclosed = false WHERE kind LIKE 'MONITORING_%'"
        if op.get_bind().dialect.name == "postgresql"
        else "UPDATE event_log SET disclosed = 0 WHERE kind LIKE 'MONITORING_%'"
    )


def downgrade() -> None:
    # Only what silent monitoring can hold goes back: modes, disclosures and take overs are
    # lost (a session that ended TAKEN_OVER reads as STOPPED).
    op.execute("UPDATE monitoring_session SET end_reason = 'STOPPED' WHERE end_reason = 'TAKEN_OVER'")
    op.execute("DELETE FROM event_log WHERE kind = 'MONITORING_MODE_CHANGED'")
    with op.batch_alter_table("event_log") as table:
        table.drop_column("disclosed")
    with op.batch_alter_table("users") as table:
        table.drop_column("permissions")
    op.drop_index("ix_monitoring_mode_change_session", table_name="monitoring_mode_change")
    op.drop_table("monitoring_mode_change")
    op.drop_index("ix_monitoring_session_started", table_name="monitoring_session")
    with op.batch_alter_table("monitoring_session") as table:
        table.drop_column("disclosed_at")
        table.drop_column("mode")
