"""Mutation root: monitoring for supervisors, and the telephony platform's reports."""

from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry
from graphql import GraphQLError

from app.graphql.enums import (
    Direction,
    MediaType,
    MonitoringErrorCodeEnum,
    MonitoringMode,
    Presence,
)
from app.graphql.ids import decode_id
from app.graphql.types import Info, Interaction, MonitoringSession, User
from app.models import User as UserRow
from app.models.directory import role_set
from app.models.enums import Role
from app.monitoring import integration
from app.monitoring.errors import IntegrationError, MonitoringError
from app.monitoring.modes import change_mode, take_over
from app.monitoring.rules import NOT_A_USER
from app.monitoring.sessions import start_monitoring, stop_monitoring


@strawberry.interface(description="A business rule refused the input; nothing was written.")
class UserError:
    message: str = strawberry.field(description="What went wrong, in words for the user.")
    field: list[str] | None = strawberry.field(
        description="The input field the error is about, as a path, where there is one."
    )


@strawberry.type(name="MonitoringError", description="Why a monitoring mutation refused.")
class MonitoringErrorType(UserError):
    code: MonitoringErrorCodeEnum = strawberry.field(description="What rule refused.")
    current_monitor: User | None = strawberry.field(
        description="Who is monitoring the interaction, for ALREADY_MONITORED."
    )


@strawberry.type(
    name="IntegrationError",
    description="An integration call named nothing, or the interaction refused it.",
)
class IntegrationErrorType(UserError):
    pass


@strawberry.input(description="Start monitoring an agent on an interaction.")
class StartMonitoringInput:
    interaction_id: strawberry.ID = strawberry.field(description="The interaction to monitor.")
    agent_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The agent (a User id) to monitor; required when several agents are connected.",
    )
    mode: MonitoringMode | None = strawberry.field(
        default=MonitoringMode.MONITOR, description="How to join; MONITOR when omitted."
    )


@strawberry.type(description="The result of startMonitoring.")
class StartMonitoringPayload:
    session: MonitoringSession | None = strawberry.field(
        description="The new session, or the viewer's existing active session on that interaction."
    )
    errors: list[MonitoringErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


@strawberry.input(description="Stop a monitoring session.")
class StopMonitoringInput:
    session_id: strawberry.ID = strawberry.field(description="The session to stop.")


@strawberry.type(description="The result of stopMonitoring.")
class StopMonitoringPayload:
    session: MonitoringSession | None = strawberry.field(
        description="The ended session (already ended sessions come back as they are)."
    )
    errors: list[MonitoringErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


@strawberry.input(description="Switch a session to another mode.")
class ChangeMonitoringModeInput:
    session_id: strawberry.ID = strawberry.field(
        description="The session, which must be the viewer's own and active."
    )
    mode: MonitoringMode = strawberry.field(description="The mode from now on.")


@strawberry.type(description="The result of changeMonitoringMode.")
class ChangeMonitoringModePayload:
    session: MonitoringSession | None = strawberry.field(
        description="The session as it is after the call."
    )
    errors: list[MonitoringErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


@strawberry.input(description="Take an interaction over from the monitored agent.")
class TakeOverInteractionInput:
    session_id: strawberry.ID = strawberry.field(
        description="The viewer's own active session on a CHAT or SMS interaction."
    )


@strawberry.type(description="The result of takeOverInteraction.")
class TakeOverInteractionPayload:
    interaction: Interaction | None = strawberry.field(
        description="The interaction, with the viewer as a connected agent and the previous agent "
        "disconnected."
    )
    session: MonitoringSession | None = strawberry.field(
        description="The session, ended with TAKEN_OVER."
    )
    errors: list[MonitoringErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


@strawberry.input(description="A new interaction arrives in a queue.")
class CreateInteractionInput:
    external_id: str = strawberry.field(
        description="The platform's own id; creating twice with one externalId returns the first "
        "interaction."
    )
    media_type: MediaType = strawberry.field(description="Voice, SMS, chat, email or callback.")
    direction: Direction = strawberry.field(description="Inbound or outbound.")
    queue_id: strawberry.ID = strawberry.field(description="The queue it arrives in.")
    customer_name: str = strawberry.field(description="The customer's name or address.")


@strawberry.input(description="An agent and an interaction.")
class AgentOnInteractionInput:
    interaction_id: strawberry.ID = strawberry.field(description="The interaction.")
    agent_id: strawberry.ID = strawberry.field(description="The agent (a User id).")


@strawberry.input(description="The interaction that is over.")
class EndInteractionInput:
    interaction_id: strawberry.ID = strawberry.field(description="The interaction.")


@strawberry.input(description="A user's new presence.")
class SetPresenceInput:
    user_id: strawberry.ID = strawberry.field(description="The user.")
    presence: Presence = strawberry.field(description="Their presence now.")


@strawberry.type(description="The result of an integration call about an interaction.")
class InteractionPayload:
    interaction: Interaction | None = strawberry.field(
        description="The interaction as it is after the call."
    )
    errors: list[IntegrationErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


@strawberry.type(description="The result of an integration call about a user.")
class UserPayload:
    user: User | None = strawberry.field(description="The user as it is after the call.")
    errors: list[IntegrationErrorType] = strawberry.field(
        description="Why it was refused; empty on success."
    )


async def _monitoring_error(info: Info, error: MonitoringError) -> MonitoringErrorType:
    monitor = error.current_monitor_id
    return MonitoringErrorType(
        code=error.code,
        message=error.message,
        field=list(error.field) if error.field else None,
        current_monitor=User.of(await info.context.loaders.user.load(monitor)) if monitor else None,
    )


async def _integration_viewer(info: Info) -> UserRow:
    viewer = await info.context.require_viewer()
    if Role.INTEGRATION not in role_set(viewer):
        raise GraphQLError(
            "Only the telephony integration (INTEGRATION role) may report interactions.",
            extensions={"code": "FORBIDDEN"},
        )
    return viewer


async def _integration_call(info: Info, change: Callable[..., Awaitable], wrap):
    """Run one integration change in its own transaction; refusals become `errors`."""
    try:
        async with info.context.writing(), info.context.db.transaction() as session:
            row = await change(session)
    except IntegrationError as error:
        return None, [
            IntegrationErrorType(
                message=error.message, field=list(error.field) if error.field else None
            )
        ]
    return wrap(row), []


INPUT = strawberry.argument(description="What to do, as one input object.")


@strawberry.type(
    description="Monitoring for supervisors; the integration's reports for the "
    "telephony platform. Business refusals come back in `errors`."
)
class Mutation:
    @strawberry.mutation(
        description="Start monitoring an agent on an interaction (SUPERVISOR or ADMIN). Starting "
        "again returns the viewer's own active session."
    )
    async def start_monitoring(
        self, info: Info, input: Annotated[StartMonitoringInput, INPUT]
    ) -> StartMonitoringPayload | None:
        viewer = await info.context.require_viewer()
        interaction_pk = decode_id(input.interaction_id, "Interaction")
        agent_pk = None
        if input.agent_id is not None:
            agent_pk = decode_id(input.agent_id, "User") or NOT_A_USER
        # An explicit null is the default too.
        mode = input.mode or MonitoringMode.MONITOR
        try:
            async with info.context.writing():
                row = await start_monitoring(
                    info.context.db, viewer, interaction_pk, agent_pk, mode
                )
        except MonitoringError as error:
            return StartMonitoringPayload(
                session=None, errors=[await _monitoring_error(info, error)]
            )
        return StartMonitoringPayload(session=MonitoringSession.of(row), errors=[])

    @strawberry.mutation(
        description="Stop a monitoring session: its monitor, or an ADMIN of the agent's division."
    )
    async def stop_monitoring(
        self, info: Info, input: Annotated[StopMonitoringInput, INPUT]
    ) -> StopMonitoringPayload | None:
        viewer = await info.context.require_viewer()
        session_pk = decode_id(input.session_id, "MonitoringSession")
        try:
            async with info.context.writing():
                row = await stop_monitoring(info.context.db, viewer, session_pk)
        except MonitoringError as error:
            return StopMonitoringPayload(
                session=None, errors=[await _monitoring_error(info, error)]
            )
        return StopMonitoringPayload(session=MonitoringSession.of(row), errors=[])

    @strawberry.mutation(
        description="Switch the viewer's own active session between MONITOR, COACH and BARGE."
    )
    async def change_monitoring_mode(
        self, info: Info, input: Annotated[ChangeMonitoringModeInput, INPUT]
    ) -> ChangeMonitoringModePayload | None:
        viewer = await info.context.require_viewer()
        session_pk = decode_id(input.session_id, "MonitoringSession")
        try:
            async with info.context.writing():
                row, history = await change_mode(info.context.db, viewer, session_pk, input.mode)
        except MonitoringError as error:
            return ChangeMonitoringModePayload(
                session=None, errors=[await _monitoring_error(info, error)]
            )
        # The session as this call left it, its history included.
        info.context.loaders.mode_changes.prime(row.id, history)
        return ChangeMonitoringModePayload(session=MonitoringSession.of(row), errors=[])

    @strawberry.mutation(
        description="CHAT or SMS: the monitoring supervisor takes the interaction over from the "
        "agent."
    )
    async def take_over_interaction(
        self, info: Info, input: Annotated[TakeOverInteractionInput, INPUT]
    ) -> TakeOverInteractionPayload | None:
        viewer = await info.context.require_viewer()
        session_pk = decode_id(input.session_id, "MonitoringSession")
        try:
            async with info.context.writing():
                interaction, ended = await take_over(info.context.db, viewer, session_pk)
        except MonitoringError as error:
            return TakeOverInteractionPayload(
                interaction=None, session=None, errors=[await _monitoring_error(info, error)]
            )
        return TakeOverInteractionPayload(
            interaction=Interaction.of(interaction),
            session=MonitoringSession.of(ended),
            errors=[],
        )

    @strawberry.mutation(
        description="Integration (INTEGRATION role only): a new interaction arrives in a queue."
    )
    async def create_interaction(
        self, info: Info, input: Annotated[CreateInteractionInput, INPUT]
    ) -> InteractionPayload | None:
        await _integration_viewer(info)
        queue_pk = decode_id(input.queue_id, "Queue")
        interaction, errors = await _integration_call(
            info,
            lambda s: integration.create_interaction(
                s,
                input.external_id,
                input.media_type,
                input.direction,
                queue_pk,
                input.customer_name,
            ),
            Interaction.of,
        )
        return InteractionPayload(interaction=interaction, errors=errors)

    @strawberry.mutation(description="Integration: an agent joins the interaction.")
    async def connect_agent(
        self, info: Info, input: Annotated[AgentOnInteractionInput, INPUT]
    ) -> InteractionPayload | None:
        return await _agent_change(info, input, integration.connect_agent)

    @strawberry.mutation(description="Integration: an agent leaves the interaction.")
    async def disconnect_agent(
        self, info: Info, input: Annotated[AgentOnInteractionInput, INPUT]
    ) -> InteractionPayload | None:
        return await _agent_change(info, input, integration.disconnect_agent)

    @strawberry.mutation(description="Integration: the interaction is over.")
    async def end_interaction(
        self, info: Info, input: Annotated[EndInteractionInput, INPUT]
    ) -> InteractionPayload | None:
        await _integration_viewer(info)
        interaction_pk = decode_id(input.interaction_id, "Interaction")
        interaction, errors = await _integration_call(
            info, lambda s: integration.end_interaction(s, interaction_pk), Interaction.of
        )
        return InteractionPayload(interaction=interaction, errors=errors)

    @strawberry.mutation(description="Integration: a user's presence changed.")
    async def set_presence(
        self, info: Info, input: Annotated[SetPresenceInput, INPUT]
    ) -> UserPayload | None:
        await _integration_viewer(info)
        user_pk = decode_id(input.user_id, "User")
        user, errors = await _integration_call(
            info, lambda s: integration.set_presence(s, user_pk, input.presence), User.of
        )
        return UserPayload(user=user, errors=errors)


async def _agent_change(info: Info, input: AgentOnInteractionInput, change) -> InteractionPayload:
    await _integration_viewer(info)
    interaction_pk = decode_id(input.interaction_id, "Interaction")
    agent_pk = decode_id(input.agent_id, "User")
    interaction, errors = await _integration_call(
        info, lambda s: change(s, interaction_pk, agent_pk), Interaction.of
    )
    return InteractionPayload(interaction=interaction, errors=errors)
