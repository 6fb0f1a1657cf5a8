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
    # How long a write that re-materialises obligations (a record push, a case decided, an
    # import, a publish) waits for another process's publish or import to finish before it is
    # refused with 503 store_unavailable and Retry-After (store/cluster_lock.py).
    write_wait: float = 300.0
    # Worker processes that run the rules of a publish's rebuild of every subject (None: one per
    # CPU once the store holds REBUILD_POOL_MIN subjects, else none; 0: in the server process).
    rebuild_workers: int | None = None
    # A Dask scheduler (tcp://host:8786) to run rebuilds on instead, or "local" for a LocalCluster
    # on this machine (store/dask_pool.py).
    dask_scheduler: str | None = None
    # The largest request body the API reads, in bytes; a bigger one is answered 413 body_too_large
    # while it streams in (api/body_limit.py). The largest legitimate body is a push of many bundles
    # (up to 10,000 a request) or a whole rulebook's text: a few MB.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
