"""Request bodies of the rulebook-editing endpoints."""
from __future__ import annotations

from pydantic import Field

from .schemas import StrictBody as _Strict


class DraftRequest(_Strict):
    text: str = Field(description="The whole rulebook, YAML.", min_length=1)
    comment: str = Field(description="Why the change is made; required, kept in the audit trail.")


class DryRunRequest(_Strict):
    revision: str = Field(description="A revision of this rulebook (a draft's ETag).")
    as_of: str | None = Field(default=None, description="Date the impact is measured on (default today).",
                              examples=["2025-06-30"])


_RETROACTIVE = ("Admins only: why the revision must answer for days already past. Required to publish with an "
               "effective_from before today (else 409 retroactive_publish); kept in the audit trail.")


class PublishRequest(_Strict):
    revision: str
    effective_from: str | None = Field(default=None, description="First day the revision answers (default today).")
    comment: str = ""
    retroactive_reason: str | None = Field(default=None, description=_RETROACTIVE, max_length=2000)


class RollbackRequest(_Strict):
    to: str = Field(description="The earlier revision to put back in force.")
    effective_from: str | None = None
    comment: str = ""
    retroactive_reason: str | None = Field(default=None, description=_RETROACTIVE, max_length=2000)
