"""The rebuilds' log: what each full re-materialisation is doing, for any process to show.

A publish at a million subjects takes minutes; the department that asked, and anybody else,
should see how far it has got (`GET /v1/rebuilds`), from whichever server process they ask.
The process doing the rebuild writes its progress here, one small transaction per batch.
"""
from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update

from .models import Rebuild
from .repository import now_iso

__all__ = ["RebuildLog"]

_FIELDS = ("id", "kind", "scope", "rulebooks", "actor", "state", "total", "done", "generation", "started_at", "updated_at",
           "message")


def _dict(row) -> dict:
    return {name: getattr(row, name) for name in _FIELDS}


class RebuildLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def start(self, kind: str, rulebooks: str, actor: str, total: int, scope: str = "full") -> int:
        """A running rebuild's entry; `scope`: full (every subject) or incremental (those affected)."""
        stamp = now_iso()
        with self.engine.begin() as c:
            return c.execute(Rebuild.__table__.insert().values(
                kind=kind, scope=scope, rulebooks=rulebooks, actor=actor, state="running", total=total, done=0, generation=None,
                started_at=stamp, updated_at=stamp, message="")).inserted_primary_key[0]

    def progress(self, rebuild_id: int, done: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(done=done, updated_at=now_iso()))

    def finish(self, c: Connection, rebuild_id: int, generation: int) -> None:
        """On `c`, the switch's transaction: the rebuild is done exactly when its generation answers."""
        c.execute(update(Rebuild).where(Rebuild.id == rebuild_id).values(state="done", generation=generation,
                                                                         updated_at=now_iso()))

    def fail(self, rebuild_id: int, message: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(Rebuild).where(Rebuild.id == rebuild_id, Rebuild.state == "running")
                      .values(state="failed", message=message[:2000], updated_at=now_iso()))

    def abandon_running(self) -> int:
        """Mark rebuilds still `running` as abandoned: called under the cluster lock, when none can
        be running (their process died). Returns how many."""
        with self.engine.begin() as c:
            return c.execute(update(Rebuild).where(Rebuild.state == "running").values(
                state="abandoned", message="its process stopped before the switch; the generation before it "
                                           "stayed in force", updated_at=now_iso())).rowcount

    def recent(self, limit: int = 20) -> list[dict]:
        with self.engine.connect() as c:
            return [_dict(r) for r in c.execute(select(Rebuild).order_by(Rebuild.id.desc()).limit(limit)).all()]

    def get(self, rebuild_id: int) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(Rebuild).where(Rebuild.id == rebuild_id)).first()
        return _dict(row) if row is not None else None
