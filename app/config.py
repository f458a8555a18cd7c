"""Configuration, read from BINOCULAR_* environment variables."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINOCULAR_")

    database_url: str = "sqlite:///./binocular.db"
    jwt_secret: str | None = None
    # Connections kept open per process, and as many more opened under load; PostgreSQL only
    # (SQLite uses one connection per thread). Connections opened beyond the pool are closed
    # after use: at 32 concurrent writers on a pool of 10, opening them cost PostgreSQL more
    # CPU than the writes.
    pool_size: int = 25
    # How often each process reads the event log even without a wake-up.
    event_poll_seconds: float = 2.0
    # Retention: when set, each process prunes events and ended interactions older than this
    # many days, at start and then every `retention_check_seconds` (`binocular prune` too).
    retention_days: float | None = Field(default=None, gt=0)
    retention_check_seconds: float = Field(default=3600, gt=0)
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 1_048_576
    # Origins (scheme://host:port) besides the server's own whose pages may call the API: open
    # WebSockets, and send HTTP requests (CORS); a comma-separated list in the environment,
    # "*" for any.
    allowed_origins: Annotated[list[str], NoDecode] = []
    log_level: str = "INFO"
    # Compute every shared live view update again for each subscriber alone and count the
    # differences (binocular_live_view_sharing_mismatches): a check for tests and canaries,
    # at the cost of sharing nothing.
    live_view_verify_sharing: bool = False
    # Execute documents compiled into Python functions (app/graphql/compiled); false runs
    # every document on graphql-core, with the same answers, slower.
    compiled_execution: bool = True

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value
