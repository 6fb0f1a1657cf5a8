"""API keys: random, shown once, stored as SHA-256 (a 256-bit random key needs no slow hash)."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select

from .driver import param_mark, read
from .models import ApiKey
from .repository import now_iso

__all__ = ["ROLES", "Principal", "KeyStore"]

ROLES = ("system", "department", "auditor", "admin")


@dataclass(frozen=True)
class Principal:
    id: int
    name: str
    role: str
    department: str | None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.name}" + (f"@{self.department}" if self.department else "")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    LOOKUP_COLUMNS = ("id", "name", "role", "department")  # a Principal's fields; id is never NULL

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, role: str, name: str, department: str | None = None) -> str:
        """A new key; the plaintext is returned once and never stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if (role == "department") != bool(department):
            raise ValueError("a department key needs --department, and only a department key takes one")
        key = "jc_" + secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            c.execute(ApiKey.__table__.insert(), {"prefix": key[:10], "key_hash": _digest(key), "name": name,
                                                  "role": role, "department": department, "created_at": now_iso(),
                                                  "revoked": False})
        return key

    def principal(self, key: str) -> Principal | None:
        """The key's principal, or None (unknown or revoked). Every request pays for this read,
        so it is one DB-API statement on the unique key_hash index (store/driver.py)."""
        return self.principal_of(read(self.engine, *self.lookup(key)))

    def lookup(self, key: str) -> tuple[str, tuple]:
        """The statement `principal` runs, for a caller that joins it to its own (driver.beside)."""
        mark = param_mark(self.engine)
        return (f"SELECT {', '.join(self.LOOKUP_COLUMNS)} FROM api_keys WHERE key_hash = {mark} AND revoked = {mark}",
                (_digest(key), False))

    @staticmethod
    def principal_of(result: tuple[list[str], list[tuple]]) -> Principal | None:
        """The principal from what `lookup`'s statement returned."""
        rows = result[1]
        return Principal(*rows[0]) if rows else None

    def revoke(self, key_id: int) -> bool:
        """Revoke a key by id; it stops working at once. False if there is no such key."""
        with self.engine.begin() as c:
            return c.execute(ApiKey.__table__.update().where(ApiKey.id == key_id).values(revoked=True)).rowcount > 0

    def list(self) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(ApiKey).order_by(ApiKey.id)).all()
        return [{"id": r.id, "prefix": r.prefix, "name": r.name, "role": r.role, "department": r.department,
                 "created_at": r.created_at, "revoked": r.revoked} for r in rows]
