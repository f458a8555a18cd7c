"""`binocular demo`: the server, simulated traffic and a live status line, in one process."""

import asyncio
import contextlib
import time

import sqlalchemy as sa
from rich.console import Console
from rich.live import Live
from rich.text import Text

from app.auth import issue_token
from app.config import Settings
from app.demo.traffic import Traffic
from app.graphql.ids import encode_id
from app.models import Interaction, MonitoringSession, Queue, User
from app.models.directory import role_set
from app.models.enums import MonitoringState, Role
from app.server import create_app, server_for


async def run_demo(settings: Settings, port: int, rate: float, console: Console) -> None:
    app = create_app(settings)
    server = server_for(app, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            return  # uvicorn has said why (the port is taken, say)
        await asyncio.sleep(0.05)
    await print_live_subscription(app, console)
    traffic = Traffic(
        f"http://127.0.0.1:{port}", issue_token(settings.jwt_secret, "pbx", 24 * 3600), rate=rate
    )
    await traffic.end_leftovers()
    simulating = asyncio.create_task(traffic.run())
    status = _Status(app)
    with Live(await status.line(traffic), console=console, refresh_per_second=2) as live:
        while not serving.done():
            await asyncio.sleep(1)
            live.update(await status.line(traffic))
    simulating.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await simulating


# The live queue activity a supervisor pastes into GraphiQL: the whole view first
# (`snapshot`), then what changed (app/graphql/live/views.py). Printed with a real queue id.
LIVE_SUBSCRIPTION = """\
subscription LiveQueue {
  queueActivityChanged(queueId: "QUEUE_ID") {
    cursor
    snapshot {
      queue { id name }
      waiting { ...LiveInteraction }
      interacting { ...LiveInteraction }
      onQueueAgents { ...LiveAgent }
      waitingCount interactingCount onQueueAgentCount
    }
    changed { ...LiveInteraction }
    removed
    agentsChanged { ...LiveAgent }
    agentsRemoved
    waitingCount interactingCount onQueueAgentCount
  }
}
fragment LiveInteraction on Interaction {
  id state mediaType startedAt
  participants { id purpose state name user { id name }
    monitorability { allowed reason modes canTakeOver } }
  activeMonitoring { id mode monitor { id name } }
}
fragment LiveAgent on QueueAgent {
  agent { id name }
  interactions { id state mediaType }
}
"""


async def print_live_subscription(app, console: Console) -> None:
    """The queueActivityChanged subscription of the first supervisor's first queue, ready to
    paste into their GraphiQL, and the other queues' ids (the API's global ids)."""
    async with app.state.db.read() as session:
        users = (await session.exec(sa.select(User).order_by(User.id))).scalars().all()
        queues = (await session.exec(sa.select(Queue).order_by(Queue.id))).scalars().all()
    supervisors: dict[int, User] = {}  # the first of each division
    for user in users:
        if Role.SUPERVISOR in role_set(user):
            supervisors.setdefault(user.division_id, user)
    queues = [queue for queue in queues if queue.division_id in supervisors]
    if not queues:
        return
    queue = queues[0]
    supervisor = supervisors[queue.division_id]
    others = ", ".join(
        f'{other.name} "{encode_id("Queue", other.id)}" '
        f"({supervisors[other.division_id].name}'s"
        + (" too)" if other.division_id == queue.division_id else ")")
        for other in queues[1:]
    )
    lines = [
        (
            f"Live queue activity: paste this subscription of {queue.name} into "
            f"{supervisor.name}'s GraphiQL."
        ),
        (
            f"  {supervisor.name}'s address above puts the token in the Headers tab, "
            '{"Authorization": "Bearer ..."},'
        ),
        "  and GraphiQL sends those headers in the WebSocket's connection_init too.",
        "  The first update has the whole view in `snapshot`; each later one only what changed.",
    ]
    if others:
        lines.append(f"  Other queues: {others}.")
    document = LIVE_SUBSCRIPTION.replace("QUEUE_ID", encode_id("Queue", queue.id))
    for line in [*lines, "", *document.splitlines(), ""]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


class _Status:
    """Interactions per state and active sessions from the database; events per second from
    the event log's position."""

    def __init__(self, app) -> None:
        self._db = app.state.db
        self._broker = app.state.broker
        self._last = (time.monotonic(), self._events_read())

    def _events_read(self) -> int:
        # Positions are taken in order, with gaps only where a write rolled back.
        return self._broker.position[1] if self._broker.position else 0

    async def line(self, traffic: Traffic) -> Text:
        async with self._db.read() as session:
            states = dict(
                (
                    await session.exec(
                        sa.select(Interaction.state, sa.func.count()).group_by(Interaction.state)
                    )
                ).all()
            )
            active = (
                await session.exec(
                    sa.select(sa.func.count())
                    .select_from(MonitoringSession)
                    .where(MonitoringSession.state == MonitoringState.ACTIVE)
                )
            ).scalar_one()
        now, position = time.monotonic(), self._events_read()
        rate = (position - self._last[1]) / max(now - self._last[0], 1e-6)
        self._last = (now, position)
        count = {state.value: n for state, n in states.items()}
        line = Text()
        line.append("interactions ", style="bold")
        line.append(f"{count.get('WAITING', 0)} waiting", style="yellow")
        line.append(" · ")
        line.append(f"{count.get('CONNECTED', 0)} connected", style="green")
        line.append(f" · {count.get('ENDED', 0)} ended   ")
        line.append("monitoring ", style="bold")
        line.append(f"{active} active", style="magenta")
        line.append(
            f"   events {rate:.1f}/s   simulator calls {traffic.stats.calls}"
            f" ({traffic.stats.errors} refused)"
        )
        return line
