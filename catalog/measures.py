"""The aggregated measures catalog (联合奖惩目录清单, seed plan item 41): every measure of
every rulebook, viewed by department, by list and by legal basis, exportable to CSV and XLSX
for the departments that must sign off on it.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

__all__ = ["CatalogRow", "catalog_rows", "grouped", "write_csv", "write_xlsx", "VIEWS"]

VIEWS = ("department", "list", "basis")


@dataclass(frozen=True)
class CatalogRow:
    measure: str
    kind: str
    rulebook: str
    department: str  # the department that carries the duty on the catalog's date
    department_name: str
    named_department: str  # the department the rulebook names (may predate a reorganisation)
    action: str
    effects: str
    triggers: tuple[str, ...]  # list codes / rating grades that set the measure off
    targets: tuple[str, ...]
    basis: tuple[str, ...]
    basis_text: tuple[str, ...]
    lasts: str

    def as_record(self) -> dict:
        return {
            "measure": self.measure, "kind": self.kind, "rulebook": self.rulebook,
            "department": self.department, "department_name": self.department_name,
            "named_department": self.named_department, "action": self.action, "effects": self.effects,
            "triggers": "; ".join(self.triggers), "targets": "; ".join(self.targets),
            "basis": "; ".join(self.basis), "basis_text": "; ".join(self.basis_text), "lasts": self.lasts,
        }


def catalog_rows(compiled, as_of: date) -> list[CatalogRow]:
    """One row per measure, with what triggers it read off the rules that apply it."""
    vocab = compiled.vocab
    triggers: dict[str, set[str]] = defaultdict(set)
    targets: dict[str, set[str]] = defaultdict(set)
    for rule in compiled.rules.values():
        keys = set()
        for c in rule.conditions:
            if c.lists:
                keys.update(c.lists)
            elif c.scheme:
                keys.update(f"{c.scheme}:{g}" for g in (c.grades or ("*",)))
            elif c.severities:
                keys.update(f"penalty:{s}" for s in c.severities)
            else:
                keys.add(c.record)
        for mid in rule.apply:
            triggers[mid].update(keys)
            targets[mid].update(rule.targets)
    rows = []
    for mid, m in sorted(compiled.measures.items()):
        dept = vocab.department_chain(m.department, as_of)[-1]
        rows.append(CatalogRow(
            measure=mid, kind=m.kind, rulebook=m.rulebook, department=dept.code, department_name=dept.name,
            named_department=m.department, action=m.action,
            effects="; ".join(f"{e.activity}:{e.effect}" for e in m.effects),
            triggers=tuple(sorted(triggers[mid])), targets=tuple(sorted(targets[mid])), basis=m.basis,
            basis_text=tuple(str(vocab.bases[b]) for b in m.basis), lasts=m.lasts))
    return rows


def grouped(rows: list[CatalogRow], by: str) -> dict[str, list[CatalogRow]]:
    """Rows grouped by department, by triggering list, or by legal basis (a row may sit in several groups)."""
    if by not in VIEWS:
        raise ValueError(f"unknown view {by!r}: choose one of {', '.join(VIEWS)}")
    groups: dict[str, list[CatalogRow]] = defaultdict(list)
    for row in rows:
        keys = {"department": (f"{row.department} {row.department_name}",), "list": row.triggers,
                "basis": row.basis}[by]
        for key in keys or ("(none)",):
            groups[key].append(row)
    return dict(sorted(groups.items()))


def write_csv(rows: list[CatalogRow], path: str | Path, by: str = "department") -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:  # BOM: Excel opens Chinese correctly
        fields = [by + "_group", *rows[0].as_record().keys()] if rows else [by + "_group"]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for key, group in grouped(rows, by).items():
            for row in group:
                writer.writerow({by + "_group": key, **row.as_record()})


def write_xlsx(rows: list[CatalogRow], path: str | Path) -> None:
    """One sheet per view, with a header row, filters and frozen panes."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for by in VIEWS:
        sheet = workbook.create_sheet(f"by {by}")
        columns = [by, *(rows[0].as_record().keys() if rows else [])]
        sheet.append(columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.fill = header_fill
        for key, group in grouped(rows, by).items():
            for row in group:
                sheet.append([key, *row.as_record().values()])
        for i, column in enumerate(columns, start=1):
            width = max(len(str(column)), *(len(str(c.value or "")) for c in sheet[get_column_letter(i)][1:200]), 8)
            sheet.column_dimensions[get_column_letter(i)].width = min(60, width + 2)
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                cell.alignment = Alignment(vertical="top", wrap_text=True)
        sheet.freeze_panes = "B2"
        sheet.auto_filter.ref = sheet.dimensions
    workbook.save(path)
