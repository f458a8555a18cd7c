"""The per-operation context: the database, the viewer (from the bearer token) and loaders."""

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from graphql import GraphQLError
from strawberry.fastapi import BaseContext

from app.auth import bearer_token, token_expiry, token_subject
from app.db import Database
from app.events.broker import Broker
from app.graphql.loaders import Loaders, RowLoaders
from app.models import User
from app.ops.metrics import Metrics

if TYPE_CHECKING:
    from app.graphql.live.engine import LiveViews


# The viewer's users row (a Core row: read-only, and its attributes read at C speed by the
# rules, which read them for every agent of a queue's activity).
_VIEWER = sa.select(User.__table__).where(User.__table__.c.key == sa.bindparam("key"))


def unauthenticated() -> GraphQLError:
    return GraphQLError(
        "Authentication required: send a valid bearer token.",
        extensions={"code": "UNAUTHENTICATED"},
    )


class Context(BaseContext):
    def __init__(
        self,
        db: Database,
        broker: Broker,
        metrics: Metrics,
        jwt_secret: str,
        live_views: "LiveViews | None" = None,
        compiled_execution: bool = True,
    ) -> None:
        super().__init__()
        self.db = db
        self.broker = broker
        self.live_views = live_views
        self.metrics = metrics
        # Documents run compiled (app/graphql/compiled), or all on graphql-core.
        self.compiled_execution = compiled_execution
        self._jwt_secret = jwt_secret
        self._viewer: User | None = None
        self._authentication: asyncio.Future[User | None] | None = None
        self._loaders: Loaders | None = None
        self._operation_ended = False

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
        # Shielded: shared by the operation's resolvers (see RowLoader.load).
        self._viewer = await asyncio.shield(self._authentication)
        return self._viewer

    async def _authenticate(self) -> User | None:
        token = bearer_token(self._authorization())
        key = token and token_subject(self._jwt_secret, token)
        if not key:
            return None
        return await self.db.first_row(_VIEWER, {"key": key})

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
            if self._operation_ended:
                # A resolver that outlived its operation (graphql-core settles the siblings
                # of a failed field in the background): it reads on connections it gives
                # back at once, rather than open a snapshot that nobody would close.
                self._loaders.reader.outlived()
        return self._loaders

    def for_operation(self) -> "Context":
        """A context for one operation, with reads of its own, that authenticates again:
        the operations of one WebSocket run side by side, each in its own snapshot, and each
        sees the token's expiry and the directory as they are when it starts."""
        operation = copy.copy(self)
        operation._loaders = None
        operation._viewer = operation._authentication = None
        return operation

    def token_expiry(self) -> datetime | None:
        """When the bearer token stops being accepted; None without a valid one."""
        token = bearer_token(self._authorization())
        return token_expiry(self._jwt_secret, token) if token else None

    def follow_directory(self, current: User) -> None:
        """A subscription's viewer as the directory has it now (roles and division may have
        changed since the subscription began): what follows is decided for them."""
        self._viewer = current

    async def end_operation(self) -> None:
        """The operation is over: end its reads, and any that come after it."""
        self._operation_ended = True
        await self.forget_reads()

    async def forget_reads(self) -> None:
        """End the operation's snapshot and drop what it cached: later reads see a new moment."""
        loaders, self._loaders = self._loaders, None
        if loaders is not None:
            await loaders.close()

    async def read_again(self) -> None:
        """Start the operation's reads over, authentication included, unless they are
        shared with other subscribers (their loaders hold what the others read too): an
        execution given up by the compiled code runs again on graphql-core as if it had run
        alone, with every await where it would have been."""
        if self._loaders is not None and self._loaders.shared:
            return
        await self.forget_reads()
        self._viewer = self._authentication = None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around a mutation's write. The operation's snapshot ends before it, so that a
        request never holds a read connection while it waits for a write, and again after
        it, so that the payload reads what the write committed."""
        await self.forget_reads()
        try:
            yield
        finally:
            await self.forget_reads()

    def for_live_update(self, viewer: User, loaders: Loaders) -> "Context":
        """A context for one live view update: the viewer as the directory has them now, and
        loaders over the batch's shared rows (app/graphql/live)."""
        update = copy.copy(self)
        update._viewer = viewer
        update._loaders = loaders
        return update

    def share_reads(self, shared: RowLoaders) -> None:
        """Read rows through loaders (and their snapshot) shared with other subscribers of
        the same events (see SharedAnswers); a subscription has no reads of its own."""
        self._loaders = Loaders(self.db, self._viewer, shared)
