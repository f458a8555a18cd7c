"""The per-request context: the database, the viewer (from the bearer token) and loaders."""

import asyncio

import sqlalchemy as sa
from graphql import GraphQLError
from strawberry.fastapi import BaseContext

from app.auth import bearer_token, token_subject
from app.db import Database
from app.events.broker import Broker
from app.graphql.loaders import Loaders, RowLoaders
from app.models import User
from app.ops.metrics import Metrics


def unauthenticated() -> GraphQLError:
    return GraphQLError(
        "Authentication required: send a valid bearer token.",
        extensions={"code": "UNAUTHENTICATED"},
    )


class Context(BaseContext):
    def __init__(self, db: Database, broker: Broker, metrics: Metrics, jwt_secret: str) -> None:
        super().__init__()
        self.db = db
        self.broker = broker
        self.metrics = metrics
        self._jwt_secret = jwt_secret
        self._viewer: User | None = None
        self._authentication: asyncio.Future[User | None] | None = None
        self._loaders: Loaders | None = None

    def _authorization(self) -> str | None:
        if self.connection_params is not None:
            params = self.connection_params if isinstance(self.connection_params, dict) else {}
            return next(
                (
                    v
                    for k, v in params.items()
                    if k.lower() == "authorization" and isinstance(v, str)
                ),
                None,
            )
        return self.request.headers.get("authorization") if self.request else None

    async def viewer(self) -> User | None:
        """The authenticated user, or None; read once per request, however many ask at once."""
        if self._authentication is None:
            self._authentication = asyncio.ensure_future(self._authenticate())
        self._viewer = await self._authentication
        return self._viewer

    async def _authenticate(self) -> User | None:
        token = bearer_token(self._authorization())
        key = token and token_subject(self._jwt_secret, token)
        if not key:
            return None
        async with self.db.read() as session:
            return (await session.exec(sa.select(User).where(User.key == key))).scalars().first()

    @property
    def authenticated_viewer(self) -> User:
        """The viewer, for resolvers below a root field that has required it."""
        if self._viewer is None:
            raise RuntimeError("no authenticated viewer: the root field must require one")
        return self._viewer

    async def require_viewer(self) -> User:
        viewer = await self.viewer()
        if viewer is None:
            raise unauthenticated()
        return viewer

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            if self._viewer is None:
                raise RuntimeError("loaders used before authentication")
            self._loaders = Loaders(self.db, self._viewer)
        return self._loaders

    def forget_reads(self) -> None:
        """After a write: later reads in this request must not come from a stale cache."""
        self._loaders = None

    def share_reads(self, shared: RowLoaders) -> None:
        """Read rows through loaders shared with other subscribers of the same events."""
        self._loaders = Loaders(self.db, self._viewer, shared)
