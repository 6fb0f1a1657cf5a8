"""Request bodies of the record-lifecycle endpoints (objections, credit repair, feedback)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .schemas import StrictBody as _Strict


class ObjectionRequest(_Strict):
    subject: str = Field(examples=["91511702MA62X8Q157"])
    record: str = Field(description="The id of the record objected to.")
    grounds: str = Field(description="Why the record is wrong, duplicated, past its period or should not be shown.")
    evidence: list[str] | str | None = None
    on_behalf_of: str | None = Field(default=None, description="The subject's representative, when a desk files it.")


class ObjectionDecision(_Strict):
    decision: Literal["uphold", "reject"]
    reasons: str
    correction: dict | None = Field(default=None, description="Corrected record fields (uphold by correcting).")
    on: str | None = Field(default=None, description="Decision date (default today).")


class RepairRequest(_Strict):
    subject: str
    record: str
    statement: str = Field(description="What the subject did to correct the untrustworthy conduct.")
    on_behalf_of: str | None = None


class RepairDecision(_Strict):
    decision: Literal["approve", "refuse"]
    reasons: str
    on: str | None = None


class FeedbackRequest(_Strict):
    state: Literal["applied", "not_applicable"]
    note: str | None = None
