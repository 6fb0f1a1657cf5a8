"""Read rulebook files: YAML with positions, JSON Schema validation, then model objects.

Every problem of a file is collected, with its line and column, before anything is built;
a file with schema errors yields diagnostics and no Rulebook.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import jsonschema

from .errors import Diagnostic
from .model import Condition, Derivation, Effect, Join, Measure, Rule, Rulebook, SUBJECT, TestCase
from .yamlsource import Located, load_located, size_problem

__all__ = ["SCHEMA_PATH", "rulebook_schema", "discover", "load_rulebook", "load_rulebook_text",
           "revision_of"]

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "rulebook.schema.json"

_SCHEMA_CODES = {
    "required": "missing_field",
    "additionalProperties": "unknown_field",
    "enum": "invalid_value",
    "const": "invalid_value",
    "oneOf": "invalid_value",
    "type": "wrong_type",
    "pattern": "invalid_format",
    "minItems": "empty",
    "minLength": "empty",
    "minProperties": "empty",
}


@lru_cache(maxsize=1)
def rulebook_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = rulebook_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def revision_of(text: str) -> str:
    """A rulebook's revision: the first 12 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Rulebook files named by `paths`: files as given, directories for their *.yaml/*.yml."""
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            found.append(path)
    return found


def load_rulebook(path: str | Path) -> tuple[Rulebook | None, list[Diagnostic]]:
    path = Path(path)
    try:
        too_large = size_problem(path.stat().st_size)  # before reading it
        if too_large:
            return None, [Diagnostic(str(path), 1, 1, too_large.code, too_large.message)]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Diagnostic(str(path), 1, 1, "unreadable_file", str(exc))]
    return load_rulebook_text(text, str(path))


def load_rulebook_text(text: str, filename: str) -> tuple[Rulebook | None, list[Diagnostic]]:
    """Parse and schema-check one rulebook's text; build it if it is well formed."""
    located = load_located(text)
    diags = [Diagnostic(filename, p.line, p.column, p.code, p.message) for p in located.problems]
    if located.data is None:
        if not diags:
            diags.append(Diagnostic(filename, 1, 1, "empty_rulebook", "the file holds no rulebook"))
        return None, diags
    diags.extend(_schema_diagnostics(located, filename))
    if diags:
        return None, diags
    return _build(located, text, filename), []


def _schema_diagnostics(located: Located, filename: str) -> list[Diagnostic]:
    out = []
    for error in _validator().iter_errors(located.data):
        out.append(_diagnostic_for(error, located, filename))
    return out


def _diagnostic_for(error: jsonschema.ValidationError, located: Located, filename: str) -> Diagnostic:
    # oneOf errors hide the useful message in their context: take the deepest one.
    if error.validator == "oneOf" and error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            error = deepest
    path = tuple(error.absolute_path)
    code = _SCHEMA_CODES.get(str(error.validator), "schema_violation")
    suggestion = None
    message = error.message
    line, col = located.where(path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        if extra:
            from catalog.vocabulary import suggest
            line, col = located.where(path + (extra[0],), key=True)
            suggestion = suggest(extra[0], allowed)
            message = f"unknown field {extra[0]!r}; allowed here: {', '.join(allowed)}"
    elif error.validator == "required":
        message = f"missing required field: {error.message.split(' ')[0]}"
    elif error.validator == "enum":
        from catalog.vocabulary import suggest
        suggestion = suggest(error.instance, [str(v) for v in error.validator_value])
        message = f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator in ("oneOf", "pattern") and error.schema.get("description"):
        message = f"{error.instance!r} is not valid: expected {error.schema['description']}"
    if path:
        message = f"{_dotted(path)}: {message}"
    return Diagnostic(filename, line, col, code, message, suggestion)


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _tuple(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _build(located: Located, text: str, filename: str) -> Rulebook:
    data = located.data
    name = data["rulebook"]
    measures = []
    for m in data.get("measures", []):
        derives = m.get("derives")
        measures.append(Measure(
            id=m["id"], kind=m["kind"], department=m["department"], action=m["action"],
            basis=tuple(m.get("basis", ())),
            effects=tuple(Effect(e["activity"], e["effect"]) for e in m.get("effects", ())),
            lasts=m.get("lasts", "while_listed"),
            derives=Derivation(**derives) if derives else None,
            rulebook=name, shared=bool(m.get("shared", False))))
    rules = []
    for r in data.get("rules", []):
        conditions = []
        for i, c in enumerate(r["when"]):
            joins = tuple(Join(field, *target.split(".", 1)) for field, target in (c.get("same") or {}).items())
            status = c.get("status", "live")
            conditions.append(Condition(
                alias=c.get("as", f"c{i}"), record=c["record"], lists=_tuple(c.get("list")),
                scheme=c.get("scheme"), grades=_tuple(c.get("grade")),
                severities=_tuple(c.get("severity")), categories=_tuple(c.get("category")),
                types=_tuple(c.get("type")), departments=_tuple(c.get("department")),
                status=status if isinstance(status, str) else tuple(status),
                within=c.get("within"), joins=joins))
        rules.append(Rule(id=r["id"], description=r.get("description", ""), conditions=tuple(conditions),
                          targets=tuple(r.get("targets", (SUBJECT,))), apply=tuple(r["apply"]),
                          rulebook=name))
    tests = tuple(
        TestCase(name=t["name"], as_of=t["as_of"], bundle=t["bundle"], expect=tuple(t.get("expect", ())),
                 absent=tuple(t.get("absent", ())), only=bool(t.get("only", False)), rulebook=name, index=i)
        for i, t in enumerate(data.get("tests", [])))
    return Rulebook(name=name, title=data["title"], owner=data["owner"], covers=tuple(data.get("covers", ())),
                    measures=tuple(measures), rules=tuple(rules), tests=tests, path=filename,
                    revision=revision_of(text), text=text, located=located)
