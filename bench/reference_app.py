"""The hand-written reference: plain FastAPI endpoints that run the same SQL as Binocular
for `interaction(id)` and `viewer`, and return the same JSON, with no GraphQL layer.

    uvicorn --factory reference_app:create --port P   (BINOCULAR_DATABASE_URL, BINOCULAR_JWT_SECRET)
"""

import sqlalchemy as sa
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from app.auth import bearer_token, token_subject
from app.config import Settings
from app.db import Database
from app.graphql.ids import decode_id, encode_id
from app.models import Interaction, MonitoringSession, Participant, User
from app.visibility import Policy


def create() -> FastAPI:
    settings = Settings()
    db = Database(settings.database_url, settings.pool_size)
    app = FastAPI()

    async def viewer_of(authorization: str | None) -> User | None:
        token = bearer_token(authorization)
        key = token and token_subject(settings.jwt_secret, token)
        if not key:
            return None
        async with db.read() as session:
            return (await session.exec(sa.select(User).where(User.key == key))).scalars().first()

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/viewer")
    async def viewer(authorization: str | None = Header(None)):
        user = await viewer_of(authorization)
        if user is None:
            return JSONResponse({"errors": [{"message": "unauthenticated"}]}, 401)
        return {
            "data": {
                "viewer": _user(user)
                | {"key": user.key, "roles": user.roles, "presence": user.presence.value}
            }
        }

    @app.post("/interaction")
    async def interaction(request: Request, authorization: str | None = Header(None)):
        user = await viewer_of(authorization)
        if user is None:
            return JSONResponse({"errors": [{"message": "unauthenticated"}]}, 401)
        pk = decode_id((await request.json())["variables"]["id"], "Interaction")
        async with db.read() as session:
            visible = (
                await session.exec(
                    sa.select(Interaction.id).where(
                        Interaction.id == pk, Policy(user).interaction.sql
                    )
                )
            ).first()
            if visible is None:
                return {"data": {"interaction": None}}
            row = (
                (await session.exec(sa.select(Interaction).where(Interaction.id == pk)))
                .scalars()
                .one()
            )
            participants = (
                (
                    await session.exec(
                        sa.select(Participant)
                        .where(Participant.interaction_id == pk)
                        .order_by(Participant.connected_at, Participant.id)
                    )
                )
                .scalars()
                .all()
            )
            sessions = (
                (
                    await session.exec(
                        sa.select(MonitoringSession)
                        .where(MonitoringSession.interaction_id == pk)
                        .order_by(MonitoringSession.started_at, MonitoringSession.id)
                    )
                )
                .scalars()
                .all()
            )
            user_ids = (
                {p.user_id for p in participants if p.user_id}
                | {s.monitor_id for s in sessions}
                | {s.agent_id for s in sessions}
            )
            users = (
                {
                    u.id: u
                    for u in (
                        await session.exec(sa.select(User).where(User.id.in_(user_ids)))
                    ).scalars()
                }
                if user_ids
                else {}
            )
        return {
            "data": {
                "interaction": {
                    "id": encode_id("Interaction", row.id),
                    "state": row.state.value,
                    "mediaType": row.media_type.value,
                    "startedAt": row.started_at.isoformat(),
                    "participants": [
                        {
                            "id": encode_id("Participant", p.id),
                            "purpose": p.purpose.value,
                            "state": p.state.value,
                            "name": p.name,
                            "connectedAt": p.connected_at.isoformat(),
                            "user": _user(users[p.user_id]) if p.user_id else None,
                        }
                        for p in participants
                    ],
                    "monitoringSessions": [
                        {
                            "id": encode_id("MonitoringSession", s.id),
                            "state": s.state.value,
                            "startedAt": s.started_at.isoformat(),
                            "monitor": _user(users[s.monitor_id]),
                            "agent": _user(users[s.agent_id]),
                        }
                        for s in sessions
                    ],
                }
            }
        }

    return app


def _user(user: User) -> dict:
    return {"id": encode_id("User", user.id), "name": user.name}
