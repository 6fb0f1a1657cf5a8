"""Masking citizen IDs of linked persons for callers not entitled to them (system keys).

A procurement platform asking about a company needs the company's answer, not the birth
dates of its legal representative and finance officer. Citizen IDs appear in many places
(relation records, node ids, labels, DOT text), so masking works on every string of the
output rather than on known fields: a field added later cannot leak. The subject the caller
asked about is left as it is: the caller already has that code.
"""
from __future__ import annotations

import re
from typing import Any

import networkx as nx

from engine.codes import is_valid_citizen_id, mask_citizen_id

__all__ = ["mask", "mask_text", "mask_graph", "masks_for"]

_CANDIDATE = re.compile(r"(?<![0-9A-Z])\d{17}[0-9X](?![0-9A-Z])")


def mask_text(text: str, keep: str) -> str:
    def one(match: re.Match) -> str:
        code = match.group(0)
        return code if code == keep or not is_valid_citizen_id(code) else mask_citizen_id(code)

    return _CANDIDATE.sub(one, text)


def mask(value: Any, keep: str) -> Any:
    """A copy of a JSON-like value with every linked person's citizen ID masked (keys included)."""
    if isinstance(value, str):
        return mask_text(value, keep)
    if isinstance(value, dict):
        return {mask(k, keep): mask(v, keep) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v, keep) for v in value]
    return value


def mask_graph(graph: nx.DiGraph, keep: str) -> nx.DiGraph:
    """A masked copy of an explanation graph. Two persons whose masked IDs coincide (same region
    and sequence) keep distinct nodes: the second gets a suffix instead of being merged."""
    mapping, taken = {}, set()
    for node in graph.nodes:
        new = mask_text(node, keep)
        if new != node:
            base, n = new, 2
            while new in taken:
                new, n = f"{base}#{n}", n + 1
        mapping[node] = new
        taken.add(new)
    masked = nx.relabel_nodes(graph, mapping, copy=True)
    for data in [masked.graph, *(d for _, d in masked.nodes(data=True)), *(d for _, _, d in masked.edges(data=True))]:
        clean = mask(dict(data), keep)
        data.clear()
        data.update(clean)
    return masked


def masks_for(role: str) -> bool:
    """Whether a caller of this role sees linked persons' citizen IDs masked."""
    return role == "system"
