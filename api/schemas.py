"""Request and response bodies, with examples so /docs can be tried as it stands.

Requests forbid unknown fields: a misspelt `asof` must be refused, not silently answered for
today, and texts that UTF-8 cannot carry (StrictBody). Ids in paths and queries are bounded by
what the database's integer columns hold (MAX_ID): a larger one overflowed the driver, a 500. Dates and codes are plain strings here and checked by the service, so a bad one gets
the service's stable code (`invalid_date`, `invalid_subject_code`) wherever it arrives.
Nested provenance (legal bases, records) is passed through as the engine describes it.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

EXAMPLE_SUBJECT = "91511702MA62X8Q157"
EXAMPLE_DATE = "2025-06-30"
AS_OF = Field(None, description="The date asked about, YYYY-MM-DD; default today.", examples=[EXAMPLE_DATE])
AsOf = Annotated[str | None, Query(description="The date asked about, YYYY-MM-DD; default today.",
                                   examples=[EXAMPLE_DATE])]


# The largest id a path or query may name: PostgreSQL's `integer` (SQLite's is 2**63 - 1).
MAX_ID = 2**31 - 1
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's id.")]
ChangeId = Annotated[int | None, Query(ge=0, le=MAX_ID, description="Changes after this change id.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


class StrictBody(BaseModel):
    """The base of every request body: no unknown field, and no text holding an unpaired
    surrogate. JSON may escape one (`"\\ud800"`), but UTF-8 cannot carry it: stored, it failed
    the database driver; echoed in an error, the encoding of the answer (both 500s)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_unpaired_surrogates(self):
        fields = self.__dict__
        if all(v is None or (v.__class__ is str and v.isascii()) for v in fields.values()):
            return self  # the usual question: nothing to walk
        where = _unencodable(fields, "")
        if where is not None:
            raise ValueError(f"`{where or 'body'}` holds an unpaired surrogate (\\ud800-\\udfff), "
                             "which UTF-8 cannot carry")
        return self


def _unencodable(value, path: str) -> str | None:
    """The path of the first text in `value` (keys included) that UTF-8 cannot encode, or None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")  # a key may be the bad text
            where = f"{path}.{shown}" if path else shown
            found = _unencodable(key, where) or _unencodable(item, where)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _unencodable(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class EligibilityRequest(StrictBody):
    subject: str = Field(description="Unified social credit code or citizen ID.", examples=[EXAMPLE_SUBJECT])
    activity: str = Field(description="An activity of the catalog.", examples=["government_procurement"])
    as_of: str | None = AS_OF


class BatchRequest(StrictBody):
    subjects: list[str] = Field(max_length=1000, description="The subjects asked about (the members of a consortium).",
                                examples=[[EXAMPLE_SUBJECT, "91511724MA62R7T35A"]])
    activity: str = Field(examples=["public_bidding"])
    as_of: str | None = AS_OF
    consortium: bool = Field(False, description="True: one barred member bars the whole consortium (联合体).")


EXAMPLE_BUNDLE = {
    "subject": {"code": EXAMPLE_SUBJECT, "kind": "legal_person", "name": "达州某建材有限公司"},
    "records": [
        {"id": "T-1", "kind": "list_entry", "list": "tax.major_violation", "status": "active",
         "listed_on": "2024-03-15", "department": "tax", "document": "达税稽罚〔2024〕12号"},
        {"id": "L-1", "kind": "relation", "type": "legal_representative", "other": "511702199106244592"}],
    "related": [{"subject": {"code": "511702199106244592", "kind": "natural_person", "name": "张某"}}],
}


class RecordsRequest(StrictBody):
    # Bundles stay raw JSON: the engine's parser checks them and reports each bad one with its code.
    bundles: list[Any] = Field(min_length=1, max_length=10_000, description="Subject bundles, as in the import files.",
                               examples=[[EXAMPLE_BUNDLE]])


# -- responses -------------------------------------------------------------------------------
class Department(BaseModel):
    code: str
    name: str


class Restriction(BaseModel):
    measure: str = Field(examples=["tax.procurement_ban"])
    department: Department
    effect: str = Field(examples=["deny"])
    rule: str
    basis: list[dict[str, Any]] = Field(description="Legal bases: document, title, article, level.")
    records: list[dict[str, Any]] = Field(description="The records behind it: id, list, document, dates.")
    valid_from: str
    valid_until: str | None = Field(description="The first day it no longer holds; null: open.")
    disputed: bool = Field(description="It rests on a record under dispute.")
    source_subject: str = Field(description="Whose records caused it (a company, for its legal representative).")
    relation: str = Field(description="`subject`, or how the subject is linked to source_subject.")


class Incentive(Restriction):
    status: str = Field(examples=["active", "suspended"])
    suspended_by: list[str] = Field(description="Punishments that suspend it.")


class EligibilityAnswer(BaseModel):
    subject: str
    activity: str
    as_of: str
    eligible: bool = Field(description="False when an obligation in force denies or restricts the activity.")
    known: bool = Field(description="False: the store holds nothing about this subject.")
    restrictions: list[Restriction]
    incentives: list[Incentive]
    decision_id: str | None = Field(None, description="Where the answer was logged (GET /v1/decisions/{id}).")


class RestrictedMember(BaseModel):
    subject: str
    restrictions: list[Restriction]


class BatchAnswer(BaseModel):
    activity: str
    as_of: str
    consortium: bool
    answers: list[EligibilityAnswer]
    eligible: bool | None = Field(None, description="Consortium only: false when any member is barred.")
    restricted_members: list[RestrictedMember] | None = Field(None, description="Consortium only: who bars it, why.")
    decision_id: str


class SubjectRef(BaseModel):
    code: str
    kind: str
    name: str


class SubjectOut(BaseModel):
    subject: SubjectRef
    records: list[dict[str, Any]]
    related: list[SubjectRef]


class Obligation(BaseModel):
    """An action a department is obliged to take, unchanged over [valid_from, valid_until)."""

    measure: str
    kind: str = Field(examples=["punishment", "reward"])
    department: str
    department_name: str
    target_code: str
    target_relation: str | None
    source_subject: str
    rule: str
    rulebook: str
    revision: str
    status: str = Field(examples=["active", "disputed", "suspended"])
    effects: list[dict[str, Any]]
    provenance: dict[str, Any] = Field(description="records, basis, suspended_by, assigned_as, target_name, ended_by")
    valid_from: str
    valid_until: str | None
    obligation_key: str | None = Field(default=None, description="Stable across re-materialisation: give feedback on it.")


class SubjectActions(BaseModel):
    subject: str
    as_of: str
    known: bool
    obligations: list[Obligation]


class DepartmentActions(BaseModel):
    department: Department
    as_of: str
    obligations: list[Obligation]
    limit: int
    offset: int


class RecordsResult(BaseModel):
    subjects: list[str] = Field(description="The subjects stored or updated, linked persons included.")
    refreshed: int = Field(description="How many subjects' obligations were brought up to date.")


class Decision(BaseModel):
    id: str
    seq: int
    created_at: str
    caller: str
    request: dict[str, Any]
    answer: dict[str, Any]
    revisions: dict[str, str]
    prev_hash: str
    hash: str


class BrokenLink(BaseModel):
    seq: int
    id: str | None
    problem: str


class Verification(BaseModel):
    ok: bool
    checked: int = Field(description="Entries found intact before the first broken one.")
    broken_at: BrokenLink | None


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_subject_code"])
    message: str
    errors: list[dict[str, Any]]


def error_responses(*statuses: int) -> dict:
    """The `responses=` of a route: the error body under each status it can answer with."""
    text = {400: "The body could not be read (not UTF-8 JSON)", 401: "No or bad API key", 403: "The key's role may not do this", 404: "Not found",
            409: "Conflict: the rulebook changed since your copy, or its tests fail",
            413: "The body is larger than the server's limit", 422: "Invalid input (stable code in `code`)",
            428: "If-Match is required"}
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}
