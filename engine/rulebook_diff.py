"""What changed between two revisions of a rulebook: the text diff a reviewer reads, and the
measures and rules added, removed and changed, which is what an approver signs off."""
from __future__ import annotations

import difflib

from .yamlsource import load_located

__all__ = ["structural_diff", "text_diff"]


def text_diff(old: str, new: str, old_label: str = "old", new_label: str = "new") -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label))


def _by_id(data, section: str) -> dict:
    items = (data or {}).get(section) or []
    return {item.get("id"): item for item in items if isinstance(item, dict)}


def structural_diff(old: str, new: str) -> dict:
    """{"measures"|"rules"|"tests": {"added", "removed", "changed": [ids or names]}} (unparseable text: an error entry)."""
    parsed = [load_located(old), load_located(new)]  # with a rulebook's bounds, as everywhere
    problems = [p for located in parsed for p in located.problems]
    if problems:
        return {"error": f"cannot parse: {problems[0].line}:{problems[0].column}: {problems[0].code}: "
                         f"{problems[0].message}"}
    before, after = (located.data or {} for located in parsed)
    out = {}
    for section in ("measures", "rules"):
        a, b = _by_id(before, section), _by_id(after, section)
        out[section] = {"added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
                        "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k])}
    ta = {t.get("name"): t for t in (before.get("tests") or []) if isinstance(t, dict)}
    tb = {t.get("name"): t for t in (after.get("tests") or []) if isinstance(t, dict)}
    out["tests"] = {"added": sorted(set(tb) - set(ta)), "removed": sorted(set(ta) - set(tb)),
                    "changed": sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])}
    return out
