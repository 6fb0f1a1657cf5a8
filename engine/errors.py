"""One exception tree for jointcredit, each error with a stable code and, where it has one,
a location.

    JointCreditError                 base: .code, .message
    ├── RulebookErrors               one or more rulebook diagnostics (lint, schema, YAML)
    ├── CatalogError                 the shared vocabulary (catalog/data) is itself broken
    ├── BundleError                  a subject bundle is malformed: names bundle, field, value
    ├── SourceError                  a row of an import file is bad, or the whole file cannot be read
    └── EvaluationError              the matching core failed while evaluating

Rulebook problems are collected as `Diagnostic`s and reported all at once, sorted by file,
line and column, in the `file:line:col: code: message` shape that editors and CI understand.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

__all__ = [
    "Diagnostic",
    "JointCreditError",
    "RulebookErrors",
    "CatalogError",
    "BundleError",
    "SourceError",
    "EvaluationError",
    "summarise",
]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a rulebook, pointing at the YAML text that caused it."""

    file: str
    line: int
    column: int
    code: str
    message: str
    suggestion: str | None = field(default=None, compare=False)
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.code}: {self.message}"
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        return text

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "suggestion": self.suggestion,
            "severity": self.severity,
        }


class JointCreditError(Exception):
    """Base of every error jointcredit raises on purpose."""

    code = "jointcredit_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": []}


class RulebookErrors(JointCreditError):
    """Raised when rulebooks cannot be compiled: carries every diagnostic of every file."""

    code = "rulebook_invalid"

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        head = "\n".join(str(d) for d in self.diagnostics[:20])
        more = f"\n... and {count - 20} more" if count > 20 else ""
        super().__init__(f"{count} rulebook error(s):\n{head}{more}")

    def to_dict(self) -> dict:
        return {"code": self.code, "message": f"{len(self.diagnostics)} rulebook error(s)",
                "errors": [d.to_dict() for d in self.diagnostics]}


class CatalogError(JointCreditError):
    """The vocabulary in catalog/data is inconsistent (a successor or reference that does not exist)."""

    code = "catalog_invalid"


class BundleError(JointCreditError):
    """A subject bundle cannot be evaluated. Names the bundle, the field path and the bad value."""

    code = "bundle_invalid"

    def __init__(self, message: str, *, code: str = "bundle_invalid", bundle: str | None = None,
                 field: str | None = None, value: object = None, line: int | None = None):
        self.bundle = bundle
        self.field = field
        self.value = value
        self.line = line
        where = []
        if bundle:
            where.append(f"bundle {bundle}")
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, code=code)

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message,
                "errors": [{"bundle": self.bundle, "line": self.line, "field": self.field,
                            "value": self.value}]}


class SourceError(JointCreditError):
    """A row of an import file (CSV, XLSX) is bad, or, with `row` None, the file cannot be read
    at all or is past a bound. Prints as `file:row: code: message` (`file: code: message`)."""

    code = "source_invalid"

    def __init__(self, file: str, row: int | None, code: str, message: str):
        super().__init__(message, code=code)
        self.file = file
        self.row = row

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}: {self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": [{"file": self.file, "row": self.row}]}


_CODE = re.compile(r": ([a-z][a-z0-9_]*): ")


def summarise(lines: Iterable[str], first: int = 20) -> Iterator[str]:
    """Error lines (`where: code: message`) with at most `first` of each code, then one line per
    code saying how many more there were: a file with a million bad rows prints a screenful."""
    more: dict[str, int] = {}
    for line in lines:
        found = _CODE.search(line)
        code = found.group(1) if found else ""
        seen = more.get(code, -first)
        more[code] = seen + 1
        if seen < 0:
            yield line
    for code, count in more.items():
        if count > 0:
            yield f"... and {count:,} more of code {code}" if code else f"... and {count:,} more"


class EvaluationError(JointCreditError):
    """The matching core reported an error other than 'no rule matched'."""

    code = "evaluation_failed"
