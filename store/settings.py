"""Settings from the environment (prefix JOINTCREDIT_), shared by the server and the CLI."""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOINTCREDIT_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///jointcredit.sqlite"
    rulebooks: str | None = None  # directory of rulebooks; default: the shipped rulebooks/
    load_demo: bool = True  # load demo/bundles.jsonl into an empty store on first start
    log_level: str = "info"
    # FastAPI's own OpenTelemetry spans, metrics and logs for each request. Off unless asked for:
    # on, FastAPI looks for configured providers on every request even when there are none,
    # ~2% of an eligibility check's server time (py-spy, 1M-subject store, 8 in flight).
    telemetry: bool = False
    # The largest request body the API reads, in bytes; a bigger one is answered 413 body_too_large
    # while it streams in (api/body_limit.py). The largest legitimate body is a push of many bundles
    # (up to 10,000 a request) or a whole rulebook's text: a few MB.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
