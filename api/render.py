"""Explanation graphs as HTTP bodies: node-link JSON, DOT text, an SVG picture."""
from __future__ import annotations

import tempfile
import threading
import warnings
from pathlib import Path

import networkx as nx
from fastapi.responses import Response

from engine.explain import render_picture, to_dot

__all__ = ["dot_response", "svg_response"]

# render_picture draws with pyplot, whose figure registry is process-global and not thread-safe;
# handlers run in a thread pool, so two pictures at once must take turns.
_PYPLOT = threading.Lock()


def dot_response(graph: nx.DiGraph) -> Response:
    return Response(to_dot(graph), media_type="text/vnd.graphviz; charset=utf-8")


def svg_response(graph: nx.DiGraph) -> Response:
    with tempfile.TemporaryDirectory(prefix="jointcredit-") as tmp:
        path = Path(tmp) / "explanation.svg"
        with _PYPLOT, warnings.catch_warnings():
            # Missing CJK glyphs are expected without a CJK font; the SVG carries the text anyway.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            render_picture(graph, str(path))
        return Response(path.read_bytes(), media_type="image/svg+xml")
