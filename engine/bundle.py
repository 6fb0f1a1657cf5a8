"""Subject bundles: the one record format in and out (files, CLI, imports, API).

    {"subject": {"code", "kind", "name"}, "records": [...], "related": [bundles]}

Parsing checks what other systems get wrong: check characters of codes (GB 32100, GB 11643),
dates, codes of lists, schemes, severities and relation types, duplicate record ids. A bad
bundle raises BundleError naming the bundle, the field path and the value; reading a JSONL
file yields errors in place of bad lines so one bad line never stops the others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

from catalog.vocabulary import Vocabulary, load_vocabulary, suggest

from . import jsontext
from .codes import code_kind
from .dates import date_problem
from .errors import BundleError
from .yamlsource import load_data

__all__ = ["Subject", "Record", "Bundle", "parse_bundle", "read_bundles", "SUBJECT_KINDS"]

SUBJECT_KINDS = ("legal_person", "natural_person", "other_org", "individual_business")
_ORG_KINDS = {"legal_person", "other_org", "individual_business"}
_DATE_FIELDS = ("listed_on", "decided_on", "expires_on", "status_on")
# The longest value each text field may hold; the store's columns are at least this wide
# (tests/test_store.py checks), so a value that parses can always be stored.
FIELD_LIMITS = {"id": 100, "kind": 16, "status": 16, "list": 64, "scheme": 32, "grade": 4, "severity": 16,
                "category": 64, "type": 32, "department": 64, "document": 200, "name": 200}


@dataclass(slots=True)
class Subject:
    code: str
    kind: str
    name: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "kind": self.kind, "name": self.name}


@dataclass(slots=True)
class Record:
    """One record of a subject. Dates are ISO strings: they compare correctly as text."""

    id: str
    kind: str
    status: str
    start: str | None  # listed_on or decided_on
    key: str | None = None  # list code, rating scheme or penalty severity: what routes it
    list: str | None = None
    scheme: str | None = None
    grade: str | None = None
    severity: str | None = None
    category: str | None = None
    type: str | None = None
    other: str | None = None
    department: str | None = None
    document: str | None = None
    expires_on: str | None = None
    status_on: str | None = None
    derived_from: tuple = ()

    def to_dict(self) -> dict:
        data = {"id": self.id, "kind": self.kind, "status": self.status}
        for name in ("list", "scheme", "grade", "severity", "category", "type", "other", "department",
                     "document", "expires_on", "status_on"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.start:
            data["decided_on" if self.kind in ("rating", "penalty", "judgment", "commitment") else "listed_on"] = self.start
        return data


@dataclass(slots=True)
class Bundle:
    subject: Subject
    records: list[Record]
    related: list["Bundle"] = field(default_factory=list)
    source: str | None = None

    def related_subject(self, code: str) -> Subject | None:
        for other in self.related:
            if other.subject.code == code:
                return other.subject
        return None


def _date(value, where: str, name: str, raw) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        value = value.isoformat()
    problem = date_problem(value)
    if problem:
        raise BundleError(problem, code="invalid_date", bundle=where, field=name, value=value)
    return value


def _text(obj: dict, name: str, where: str, path: str, *, ints: bool = False) -> str | None:
    """A text field: a string (ids may be numbers), within its length, without NUL characters."""
    value = obj.get(name)
    if value is None:
        return None
    if ints and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _fail(f"`{name}` must be a string", "wrong_type", where, f"{path}.{name}" if path else name, value)
    if "\x00" in value:
        raise _fail("text must not contain NUL characters", "invalid_character", where,
                    f"{path}.{name}" if path else name)
    limit = FIELD_LIMITS.get(name)
    if limit and len(value) > limit:
        raise _fail(f"`{name}` is longer than {limit} characters", "value_too_long", where,
                    f"{path}.{name}" if path else name, value[:40] + "...")
    return value


def _fail(message: str, code: str, where: str, field_name: str, value=None) -> BundleError:
    return BundleError(message, code=code, bundle=where, field=field_name, value=value)


def _check_code(code, where: str, field_name: str) -> str:
    kind = code_kind(code) if isinstance(code, str) else None
    if kind is None:
        raise _fail(f"{code!r} is not a valid unified social credit code (GB 32100) or citizen ID (GB 11643): "
                    "wrong length, characters or check character", "invalid_subject_code", where, field_name, code)
    return kind


def parse_bundle(obj, *, vocab: Vocabulary | None = None, source: str | None = None) -> Bundle:
    """Validate a bundle dict and build a Bundle. Raises BundleError on the first problem."""
    vocab = vocab or load_vocabulary()
    if not isinstance(obj, dict):
        raise BundleError("a bundle must be an object with `subject` and `records`", code="invalid_bundle",
                          bundle=source)
    subject_raw = obj.get("subject")
    if not isinstance(subject_raw, dict):
        raise BundleError("missing `subject` object", code="missing_field", bundle=source, field="subject")
    code = subject_raw.get("code")
    where = code if isinstance(code, str) and code else (source or "?")
    if source and where != source:
        where = f"{where} ({source})"
    implied = _check_code(code, where, "subject.code")
    kind = subject_raw.get("kind") or implied
    if kind not in SUBJECT_KINDS:
        raise _fail(f"unknown subject kind {kind!r}", "invalid_subject_kind", where, "subject.kind", kind)
    if (kind == "natural_person") != (implied == "natural_person"):
        raise _fail(f"a {kind} needs a {'citizen ID' if kind == 'natural_person' else 'unified social credit code'}",
                    "subject_kind_mismatch", where, "subject.kind", kind)
    subject = Subject(code=code, kind=kind, name=_text(subject_raw, "name", where, "subject") or "")
    records_raw = obj.get("records", [])
    if not isinstance(records_raw, list):
        raise _fail("`records` must be a list", "invalid_bundle", where, "records")
    records, seen = [], set()
    for i, raw in enumerate(records_raw):
        record = _parse_record(raw, f"records[{i}]", where, vocab)
        if record.id in seen:
            raise _fail(f"record id {record.id!r} appears twice", "duplicate_record", where, f"records[{i}].id",
                        record.id)
        seen.add(record.id)
        records.append(record)
    related_raw = obj.get("related") or []
    if not isinstance(related_raw, list):
        raise _fail("`related` must be a list of bundles", "invalid_bundle", where, "related")
    related = []
    for i, other in enumerate(related_raw):
        try:
            related.append(parse_bundle(other, vocab=vocab, source=f"{where} related[{i}]"))
        except BundleError as exc:
            raise BundleError(exc.message, code=exc.code, bundle=where, field=f"related[{i}]", value=exc.value) from exc
    return Bundle(subject=subject, records=records, related=related, source=source)


_TEXT_FIELDS = ("id", "kind", "status", "list", "scheme", "grade", "severity", "category", "type", "department",
                "document")


def _parse_record(raw, path: str, where: str, vocab: Vocabulary) -> Record:
    if not isinstance(raw, dict):
        raise _fail("a record must be an object", "invalid_record", where, path)
    if raw.get("id") in (None, ""):
        raise _fail("every record needs an `id`", "missing_field", where, f"{path}.id", raw.get("id"))
    texts = dict.fromkeys(_TEXT_FIELDS)  # a record sets a few of them: only those are checked, in this order
    for name in _TEXT_FIELDS:
        if name in raw:
            texts[name] = _text(raw, name, where, path, ints=(name == "id"))
    rid = texts["id"]
    kind = texts["kind"]
    if kind not in vocab.record_kinds:
        raise _fail(f"unknown record kind {kind!r}", "unknown_record_kind", where, f"{path}.kind", kind)
    status = texts["status"] or "active"
    if status not in vocab.statuses:
        raise _fail(f"unknown status {status!r}" + _dym(status, vocab.statuses), "invalid_status", where,
                    f"{path}.status", status)
    dates = {name: _date(raw.get(name), where, f"{path}.{name}", raw) for name in _DATE_FIELDS}
    start = dates["listed_on"] or dates["decided_on"]
    _check_order(dates, start, where, path)
    record = Record(id=rid, kind=kind, status=status, start=start, department=texts["department"],
                    document=texts["document"], expires_on=dates["expires_on"], status_on=dates["status_on"],
                    category=texts["category"])
    if kind == "list_entry":
        lst = texts["list"]
        if lst not in vocab.lists:
            raise _fail(f"unknown list {lst!r}" + _dym(lst, vocab.lists), "unknown_list", where, f"{path}.list", lst)
        record.list = record.key = lst
        if not start:
            raise _fail("a list entry needs `listed_on`", "missing_field", where, f"{path}.listed_on")
    elif kind == "rating":
        scheme, grade = texts["scheme"], texts["grade"]
        if scheme not in vocab.schemes:
            raise _fail(f"unknown rating scheme {scheme!r}" + _dym(scheme, vocab.schemes), "unknown_scheme", where,
                        f"{path}.scheme", scheme)
        if grade not in vocab.schemes[scheme].grades:
            raise _fail(f"unknown grade {grade!r} of {scheme}", "unknown_grade", where, f"{path}.grade", grade)
        record.scheme, record.grade, record.key = scheme, grade, scheme
        if not start:
            raise _fail("a rating needs `decided_on`", "missing_field", where, f"{path}.decided_on")
    elif kind == "penalty":
        severity = texts["severity"] or "general"
        if severity not in vocab.severities:
            raise _fail(f"unknown severity {severity!r}" + _dym(severity, vocab.severities), "unknown_severity",
                        where, f"{path}.severity", severity)
        record.severity = record.key = severity
        if not start:
            raise _fail("a penalty needs `decided_on`", "missing_field", where, f"{path}.decided_on")
    elif kind == "relation":
        rtype = texts["type"]
        if rtype not in vocab.relation_types:
            raise _fail(f"unknown relation type {rtype!r}" + _dym(rtype, vocab.relation_types), "unknown_relation",
                        where, f"{path}.type", rtype)
        record.type = rtype
        record.other = raw.get("other")
        _check_code(record.other, where, f"{path}.other")
    return record


# A record cannot end, nor change status, before it starts: such a record was typed wrong, and
# stored as it is its state on any date would be nonsense (expired before it was listed).
_AFTER_START = {"expires_on": "expires_before_start", "status_on": "status_before_start"}


def _check_order(dates: dict, start: str | None, where: str, path: str) -> None:
    """ISO days compare as text: `expires_on` and `status_on` may not come before the start."""
    if start is None:
        return
    begins = "listed_on" if dates["listed_on"] else "decided_on"
    for name, code in _AFTER_START.items():
        if dates[name] is not None and dates[name] < start:
            raise _fail(f"`{name}` {dates[name]} is before the record's start (`{begins}` {start})", code, where,
                        f"{path}.{name}", dates[name])


def _dym(value, known) -> str:
    hint = suggest(value, known)
    return f" (did you mean {hint!r}?)" if hint else ""


def read_bundles(path: str | Path, *, vocab: Vocabulary | None = None) -> Iterator[Bundle | BundleError]:
    """Bundles from a .json, .yaml/.yml or .jsonl file ('-' for JSONL on standard input).

    Yields a BundleError in place of each bad bundle, so callers report it and go on; a JSON or
    YAML file that cannot be read (not UTF-8, not JSON, an alias bomb) is one BundleError.
    """
    import sys

    vocab = vocab or load_vocabulary()
    path = str(path)
    if path == "-" or path.endswith(".jsonl") or path.endswith(".ndjson"):
        handle = sys.stdin.buffer if path == "-" else open(path, "rb")
        with handle:
            for number, raw in enumerate(handle, start=1):
                item = _jsonl_line(raw, number, vocab)
                if item is not None:
                    yield item
        return
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        yield BundleError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}", code="invalid_encoding",
                          bundle=path)
        return
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield BundleError(f"cannot parse {path}: {_json_problem(exc)}", code="invalid_json", bundle=path)
            return
    else:
        data, problem = load_data(text)  # with a rulebook's bounds: no aliases, bounded size and depth
        if problem is not None:
            yield BundleError(f"cannot parse {path}: line {problem.line}, column {problem.column}: {problem.message}",
                              code=problem.code, bundle=path)
            return
    items = data if isinstance(data, list) else [data]
    for i, obj in enumerate(items):
        try:
            yield parse_bundle(obj, vocab=vocab, source=f"{Path(path).name}#{i + 1}" if len(items) > 1 else None)
        except BundleError as exc:
            yield exc


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)


def _jsonl_line(raw: bytes, number: int, vocab: Vocabulary) -> Bundle | BundleError | None:
    """The bundle on one line of a JSONL file, its error, or None for a blank line."""
    source = f"line {number}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BundleError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", code="invalid_encoding",
                           bundle=source)
    if not line.strip():
        return None
    try:
        obj = jsontext.loads(line)  # orjson: parsing is much of a big import's reading
    except (json.JSONDecodeError, RecursionError) as exc:
        return BundleError(f"not valid JSON: {_json_problem(exc)}", code="invalid_json", bundle=source)
    try:
        return parse_bundle(obj, vocab=vocab, source=source)
    except BundleError as exc:
        return exc
