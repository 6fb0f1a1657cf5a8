"""YAML that remembers where each value came from.

PyYAML's composed nodes carry a `start_mark` (line, column). We build plain Python data
from the node tree ourselves and keep a map from each value's path (the same path a JSON
Schema error reports) to its position, so that a schema error deep in a rulebook points at
the right line. Dates stay ISO strings: the rulebook's meaning must not depend on YAML's
timestamp guessing. Duplicate mapping keys, which PyYAML silently accepts, are reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "load_located", "YamlProblem"]

Path = tuple[Any, ...]


@dataclass
class YamlProblem:
    line: int
    column: int
    code: str
    message: str


@dataclass
class Located:
    """Data parsed from YAML plus the (line, column) of every value, 1-based."""

    data: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[YamlProblem] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `path`, or of its closest known ancestor."""
        path = tuple(path)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))


_RESOLVER_LOADER = yaml.SafeLoader


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == "tag:yaml.org,2002:str" or tag == "tag:yaml.org,2002:timestamp":
        return node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return node.value.lower() in ("true", "yes", "on")
    if tag == "tag:yaml.org,2002:int":
        return _RESOLVER_LOADER.construct_yaml_int(_RESOLVER_LOADER(""), node)
    if tag == "tag:yaml.org,2002:float":
        return _RESOLVER_LOADER.construct_yaml_float(_RESOLVER_LOADER(""), node)
    return node.value


def load_located(text: str) -> Located:
    """Parse YAML text. A syntax error becomes a problem with its position, not an exception."""
    located = Located(data=None)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        located.problems.append(YamlProblem(line, col, "yaml_syntax", f"{exc.problem or exc}"))
        return located
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        located.problems.append(YamlProblem(1, 1, "yaml_syntax", str(exc)))
        return located
    if root is None:
        located.data = None
        return located
    located.data = _build(root, (), located)
    return located


def _build(node: yaml.Node, path: Path, located: Located) -> Any:
    located.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), located) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = path + (key,)
            if key in result:
                located.problems.append(YamlProblem(
                    key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                    "duplicate_key", f"key {key!r} appears twice in the same mapping"))
            located.key_marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, child, located)
        return result
    return None  # pragma: no cover
