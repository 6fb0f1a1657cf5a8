"""Who may see what personal data, and the one masking that hides it from everyone else.

    role         citizen IDs, natural persons' names       objection and repair cases
    system       only the code it asked about; every       none (404, as for a case that
                 other ID masked (511702********4592),     does not exist)
                 every natural person's name masked (张*)
    department   all (it acts on obligations addressed     those its department decides (lists)
                 to persons)                               and those its desk (this key) filed
    auditor      all                                       all
    admin        all                                       all

A procurement platform asking about a company needs the company's answer, not the birth dates
and names of its legal representative and finance officer. Citizen IDs appear in many places
(relation records, node ids, labels, DOT text), so masking works on every string of the output
rather than on known fields: a field added later cannot leak. Names are masked the same way,
by value: the natural persons' names the store holds for the subject and the persons linked to
it. The codes the caller sent are left as they are: it has them already.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import networkx as nx

from engine.codes import is_valid_citizen_id, mask_citizen_id
from store.keys import Principal

__all__ = ["mask", "mask_text", "mask_graph", "mask_name", "masks_for", "person_names", "may_read_case",
           "case_outline"]

_CANDIDATE = re.compile(r"(?<![0-9A-Z])\d{17}[0-9X](?![0-9A-Z])")
Keep = str | Iterable[str]


def _kept(keep: Keep) -> frozenset[str]:
    return frozenset([keep] if isinstance(keep, str) else keep)


def mask_name(name: str) -> str:
    """A natural person's name with all but its first character hidden: 张三丰 -> 张**."""
    return name[:1] + "*" * (len(name) - 1)


def mask_text(text: str, keep: Keep, names: Iterable[str] = ()) -> str:
    kept = _kept(keep)

    def one(match: re.Match) -> str:
        code = match.group(0)
        return code if code in kept or not is_valid_citizen_id(code) else mask_citizen_id(code)

    text = _CANDIDATE.sub(one, text)
    for name in names:
        text = text.replace(name, mask_name(name))
    return text


def mask(value: Any, keep: Keep, names: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with every citizen ID but `keep` and every one of `names`
    masked (keys included)."""
    kept, names = _kept(keep), _longest_first(names)
    return _mask(value, kept, names)


def _mask(value: Any, kept: frozenset[str], names: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_text(value, kept, names)
    if isinstance(value, dict):
        return {_mask(k, kept, names): _mask(v, kept, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, kept, names) for v in value]
    return value


def mask_graph(graph: nx.DiGraph, keep: Keep, names: Iterable[str] = ()) -> nx.DiGraph:
    """A masked copy of an explanation graph. Two persons whose masked IDs coincide (same region
    and sequence) keep distinct nodes: the second gets a suffix instead of being merged."""
    kept, names = _kept(keep), _longest_first(names)
    mapping, taken = {}, set()
    for node in graph.nodes:
        new = mask_text(node, kept, names)
        if new != node:
            base, n = new, 2
            while new in taken:
                new, n = f"{base}#{n}", n + 1
        mapping[node] = new
        taken.add(new)
    masked = nx.relabel_nodes(graph, mapping, copy=True)
    for data in [masked.graph, *(d for _, d in masked.nodes(data=True)), *(d for _, _, d in masked.edges(data=True))]:
        clean = _mask(dict(data), kept, names)
        data.clear()
        data.update(clean)
    return masked


def _longest_first(names: Iterable[str]) -> tuple[str, ...]:
    """Names worth masking, longest first (张三丰 before 张三); a one-character name would
    garble every text that holds the character."""
    return tuple(sorted({n for n in names if isinstance(n, str) and len(n) > 1}, key=len, reverse=True))


def masks_for(role: str) -> bool:
    """Whether a caller of this role sees citizen IDs (but the asked one) and persons' names masked."""
    return role == "system"


def person_names(*documents: dict | None) -> list[str]:
    """The names of the natural persons in subject documents (Repository.subject: the subject and
    the subjects linked to it)."""
    subjects = [s for doc in documents if doc for s in [doc.get("subject"), *doc.get("related", ())] if s]
    return [s["name"] for s in subjects if s.get("kind") == "natural_person" and s.get("name")]


def may_read_case(principal: Principal, case: dict) -> bool:
    """Whether `principal` may read an objection or repair case (a dict of store.lifecycle)."""
    if principal.role in ("admin", "auditor"):
        return True
    if principal.role != "department":
        return False
    filer = case.get("filed_by") or case.get("applied_by") or ""
    return case["department"] == principal.department or filer == principal.label \
        or filer.startswith(principal.label + " for ")


# What the explanation graph shows of a case to a caller that may not read it: that the record
# was objected to or repaired, and what that lifted; not who decided it, nor why.
_OUTLINE = ("kind", "id", "record", "state", "decision", "date", "lifted", "correction", "opened_on")


def case_outline(principal: Principal, case: dict) -> dict:
    """The case as `principal` may see it in an explanation (the whole case, or its outline)."""
    return case if may_read_case(principal, case) else {k: case[k] for k in _OUTLINE if k in case}
