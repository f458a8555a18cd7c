"""Configuration, read from BINOCULAR_* environment variables."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINOCULAR_")

    database_url: str = "sqlite:///./binocular.db"
    jwt_secret: str | None = None
    # Pool size per process; PostgreSQL only (SQLite uses one connection per thread).
    pool_size: int = 10
    # How often each process reads the event log even without a wake-up.
    event_poll_seconds: float = 2.0
