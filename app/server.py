"""The ASGI application: GraphQL over HTTP and WebSocket at /graphql, and /healthz."""

from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app.config import Settings
from app.db import Database
from app.events.broker import Broker
from app.graphql.context import Context
from app.graphql.schema import schema


class _Router(GraphQLRouter):
    async def on_ws_connect(self, context: Context):
        """A WebSocket needs a valid token in its connection_init payload, else 4403."""
        if await context.viewer() is None:
            raise ConnectionRejectionError()
        return await super().on_ws_connect(context)


def create_app(settings: Settings) -> FastAPI:
    if not settings.jwt_secret:
        raise ValueError("BINOCULAR_JWT_SECRET is not set: the server cannot check tokens.")
    db = Database(settings.database_url, settings.pool_size)
    broker = Broker(db, poll_seconds=settings.event_poll_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await db.dispose()

    async def context() -> Context:
        return Context(db, broker, settings.jwt_secret)

    router = _Router(
        schema,
        context_getter=context,
        # Only graphql-transport-ws: the legacy graphql-ws protocol stays off.
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        graphql_ide="graphiql",
    )
    app = FastAPI(title="Binocular", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(router, prefix="/graphql")
    app.state.db = db
    app.state.broker = broker

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        try:
            async with db.read() as session:
                await session.exec(sa.select(1))
        except Exception:  # noqa: BLE001 - whatever the failure, the database is unreachable
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    return app
