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
from app.models import Interaction, MonitoringSession
from app.models.enums import MonitoringState
from app.server import create_app, server_for


async def run_demo(settings: Settings, port: int, rate: float, console: Console) -> None:
    app = create_app(settings)
    server = server_for(app, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            return  # uvicorn has said why (the port is taken, say)
        await asyncio.sleep(0.05)
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
