"""Each decision reads one moment: a change that commits in the middle of a decision's reads
is either all seen or not at all."""

import pytest
import sqlalchemy as sa

from app.models import Participant, User
from app.monitoring import integration
from app.monitoring.errors import MonitoringError
from app.monitoring.errors import MonitoringErrorCode as Code
from app.monitoring.sessions import start_monitoring
from tests.monitoring.serial import committing_before, pk_of

# load_facts' second statement: the participants, read after the interaction.
PARTICIPANTS = f"SELECT {Participant.__tablename__}.id"


async def user(db, key: str) -> User:
    async with db.read() as session:
        return (await session.exec(sa.select(User).where(User.key == key))).scalars().one()


def ending(db, interaction: str):
    async def end():
        async with db.transaction() as session:
            await integration.end_interaction(session, pk_of(interaction))

    return end


async def test_an_end_committed_between_a_starts_reads_is_interaction_ended(api, db):
    """The torn reading of issue #10: the interaction read before the end, its participants
    after, said NO_AGENT, which no moment justifies. Read in one snapshot, the start sees a
    live call and goes to write, finds it changed, and reads again: INTERACTION_ENDED."""
    interaction = await api.create()
    await api.connect(interaction, "bob")
    ann = await user(db, "ann")
    with (
        committing_before(db, PARTICIPANTS, ending(db, interaction)) as came_before,
        pytest.raises(MonitoringError) as refusal,
    ):
        await start_monitoring(db, ann, pk_of(interaction), None)
    assert came_before, "the end never came between the start's reads"
    assert refusal.value.code == Code.INTERACTION_ENDED


async def test_a_start_that_never_settles_answers_no_rule(api, db, monkeypatch):
    """Changed under it round after round, a start gives up with an internal error rather
    than a refusal that no moment justifies, and writes nothing."""

    async def always_changed(*_args, **_kwargs):
        return False

    monkeypatch.setattr("app.monitoring.sessions.bump_version", always_changed)
    interaction = await api.create()
    await api.connect(interaction, "bob")
    body = await api.raw(
        """mutation($id: ID!) { startMonitoring(input: {interactionId: $id}) {
             session { id } errors { code } } }""",
        {"id": interaction},
        user="ann",
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_SERVER_ERROR"], body
    data = await api.data(
        "query($id: ID!) { interaction(id: $id) { monitoringSessions { id } } }",
        {"id": interaction},
    )
    assert data["interaction"]["monitoringSessions"] == []
