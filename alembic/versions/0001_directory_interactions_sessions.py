"""Directory, interactions, participants and monitoring sessions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written by hand: autogenerate does not render the partial unique indexes that hold the
monitoring limits.
"""

import sqlalchemy as sa
from alembic import op

from app.models.columns import UTCDateTime, enum_column
from app.models.enums import (
    Direction,
    InteractionState,
    MediaType,
    MonitoringEndReason,
    MonitoringState,
    ParticipantPurpose,
    ParticipantState,
    Presence,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _partial_unique(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(
        name,
        table,
        columns,
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.create_table(
        "division",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_division"),
        sa.UniqueConstraint("key", name="uq_division_key"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("division_id", sa.Integer(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("presence", enum_column(Presence), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("key", name="uq_users_key"),
        sa.ForeignKeyConstraint(
            ["division_id"], ["division.id"], name="fk_users_division_id_division"
        ),
    )
    op.create_index("ix_users_division_id", "users", ["division_id"])
    op.create_table(
        "queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("division_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue"),
        sa.UniqueConstraint("key", name="uq_queue_key"),
        sa.ForeignKeyConstraint(
            ["division_id"], ["division.id"], name="fk_queue_division_id_division"
        ),
    )
    op.create_index("ix_queue_division_id", "queue", ["division_id"])
    op.create_table(
        "queue_member",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "user_id", name="pk_queue_member"),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"], name="fk_queue_member_queue_id_queue"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_queue_member_user_id_users"),
    )
    op.create_index("ix_queue_member_user_id", "queue_member", ["user_id"])
    op.create_table(
        "interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("media_type", enum_column(MediaType), nullable=False),
        sa.Column("direction", enum_column(Direction), nullable=False),
        sa.Column("state", enum_column(InteractionState), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_interaction"),
        sa.UniqueConstraint("external_id", name="uq_interaction_external_id"),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"], name="fk_interaction_queue_id_queue"),
    )
    op.create_index(
        "ix_interaction_queue_state_started",
        "interaction",
        ["queue_id", "state", "started_at", "id"],
    )
    op.create_index("ix_interaction_started", "interaction", ["started_at", "id"])
    op.create_table(
        "participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("purpose", enum_column(ParticipantPurpose), nullable=False),
        sa.Column("state", enum_column(ParticipantState), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.Column("disconnected_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_participant"),
        sa.ForeignKeyConstraint(
            ["interaction_id"], ["interaction.id"], name="fk_participant_interaction_id_interaction"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_participant_user_id_users"),
    )
    op.create_index(
        "ix_participant_interaction", "participant", ["interaction_id", "connected_at", "id"]
    )
    op.create_index("ix_participant_user_state", "participant", ["user_id", "state"])
    _partial_unique(
        "uq_participant_connected_agent",
        "participant",
        ["interaction_id", "user_id"],
        "purpose = 'AGENT' AND state = 'CONNECTED'",
    )
    op.create_table(
        "monitoring_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("media_type", enum_column(MediaType), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("monitor_participant_id", sa.Integer(), nullable=False),
        sa.Column("state", enum_column(MonitoringState), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", enum_column(MonitoringEndReason), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_session"),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interaction.id"],
            name="fk_monitoring_session_interaction_id_interaction",
        ),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["users.id"], name="fk_monitoring_session_monitor_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name="fk_monitoring_session_agent_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["monitor_participant_id"],
            ["participant.id"],
            name="fk_monitoring_session_monitor_participant_id_participant",
        ),
    )
    op.create_index(
        "ix_monitoring_session_interaction",
        "monitoring_session",
        ["interaction_id", "started_at", "id"],
    )
    op.create_index(
        "ix_monitoring_session_monitor_state", "monitoring_session", ["monitor_id", "state"]
    )
    _partial_unique(
        "uq_monitoring_session_active", "monitoring_session", ["interaction_id"], "state = 'ACTIVE'"
    )
    _partial_unique(
        "uq_monitoring_session_sms_once",
        "monitoring_session",
        ["interaction_id"],
        "media_type = 'SMS'",
    )


def downgrade() -> None:
    op.drop_table("monitoring_session")
    op.drop_table("participant")
    op.drop_table("interaction")
    op.drop_table("queue_member")
    op.drop_table("queue")
    op.drop_table("users")
    op.drop_table("division")
