"""Who may see what: queues of one's own division, and interactions whose queue or any agent
(connected now or earlier) is in it. ADMIN and INTEGRATION see every division."""

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from app.models import Interaction, Participant, Queue, User
from app.models.enums import ALL_SEEING_ROLES, ParticipantPurpose


def sees_everything(viewer: User) -> bool:
    return bool(viewer.role_set & ALL_SEEING_ROLES)


def queue_visible(viewer: User) -> ColumnElement[bool]:
    if sees_everything(viewer):
        return sa.true()
    return Queue.division_id == viewer.division_id


def interaction_visible(viewer: User) -> ColumnElement[bool]:
    """SQL condition on `Interaction`: the viewer may see the row."""
    if sees_everything(viewer):
        return sa.true()
    division_queues = sa.select(Queue.id).where(Queue.division_id == viewer.division_id)
    division_agent = (
        sa.select(Participant.id)
        .join(User, User.id == Participant.user_id)
        .where(
            Participant.interaction_id == Interaction.id,
            Participant.purpose == ParticipantPurpose.AGENT,
            User.division_id == viewer.division_id,
        )
        .exists()
    )
    return sa.or_(Interaction.queue_id.in_(division_queues), division_agent)


def user_visible(viewer: User) -> ColumnElement[bool]:
    """SQL condition on `User`: in the viewer's division, or on an interaction they can see."""
    if sees_everything(viewer):
        return sa.true()
    on_visible_interaction = (
        sa.select(Participant.id)
        .join(Interaction, Interaction.id == Participant.interaction_id)
        .where(Participant.user_id == User.id, interaction_visible(viewer))
        .exists()
    )
    return sa.or_(User.division_id == viewer.division_id, on_visible_interaction)
