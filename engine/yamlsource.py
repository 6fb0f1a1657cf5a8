"""YAML that remembers where each value came from.

PyYAML's composed nodes carry a `start_mark` (line, column). We build plain Python data
from the node tree ourselves and keep a map from each value's path (the same path a JSON
Schema error reports) to its position, so that a schema error deep in a rulebook points at
the right line. Dates stay ISO strings: the rulebook's meaning must not depend on YAML's
timestamp guessing. Duplicate mapping keys, which PyYAML silently accepts, are reported.

Rulebook text comes from anyone with a department key, so parsing it is bounded before any
work is done: the text's size is checked first, and the composer refuses anchors and aliases
(a 518-byte "billion laughs" of nine nested aliases expands to 387 million values in the
walk below; a rulebook never needs one), nesting deeper than MAX_DEPTH (the composer
recurses) and more than MAX_NODES nodes, each at the line and column where it happens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "load_located", "YamlProblem", "size_problem", "load_data", "MAX_TEXT_BYTES", "MAX_DEPTH",
           "MAX_NODES"]

Path = tuple[Any, ...]

# The shipped rulebooks hold at most 13 KB, 750 nodes and 8 levels: these leave
# room for a rulebook forty times larger while keeping lint, load and compile to seconds.
MAX_TEXT_BYTES = 512 * 1024  # of UTF-8
MAX_DEPTH = 32
MAX_NODES = 50_000


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


class _Refused(Exception):
    """Raised inside the composer to stop at the first node past a bound."""

    def __init__(self, mark, code: str, message: str):
        super().__init__(message)
        self.problem = YamlProblem(mark.line + 1, mark.column + 1, code, message)


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer counts nodes and depth and refuses anchors and aliases,
    event by event, before the node is built (so before anything could be expanded)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, "yaml_alias",
                           f"alias *{event.anchor}: anchors and aliases are not allowed here; "
                           "write the value out")
        if event.anchor is not None:
            raise _Refused(event.start_mark, "yaml_alias",
                           f"anchor &{event.anchor}: anchors and aliases are not allowed here; "
                           "write the value out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(event.start_mark, "yaml_too_many_nodes",
                           f"more than {MAX_NODES:,} values: a text this large is refused")
        if not isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _Refused(event.start_mark, "yaml_too_deep",
                           f"nested more than {MAX_DEPTH} levels deep: a text this deep is refused")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_data(text: str) -> tuple[Any, YamlProblem | None]:
    """Plain data from YAML text (PyYAML's safe types) within the same bounds, or the first problem."""
    too_large = _too_large(text)
    if too_large:
        return None, too_large
    try:
        return yaml.load(text, Loader=_BoundedLoader), None
    except _Refused as exc:
        return None, exc.problem
    except yaml.YAMLError as exc:
        return None, _syntax_problem(exc)


def _too_large(text: str) -> YamlProblem | None:
    # a character is at least one byte: the encoding is paid only for a text that may fit
    return size_problem(len(text)) or size_problem(len(text.encode("utf-8", "surrogatepass")))


def _syntax_problem(exc: yaml.YAMLError) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return YamlProblem(line, col, "yaml_syntax", f"{getattr(exc, 'problem', None) or exc}")


def load_located(text: str) -> Located:
    """Parse YAML text. A syntax error or a bound passed becomes a problem with its position,
    not an exception."""
    located = Located(data=None)
    too_large = _too_large(text)
    if too_large:
        located.problems.append(too_large)
        return located
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except _Refused as exc:
        located.problems.append(exc.problem)
        return located
    except yaml.YAMLError as exc:
        located.problems.append(_syntax_problem(exc))
        return located
    if root is None:
        located.data = None
        return located
    located.data = _build(root, (), located)
    return located


def size_problem(size: int) -> YamlProblem | None:
    """The problem with a rulebook text of `size` bytes, if it is too large to parse."""
    if size <= MAX_TEXT_BYTES:
        return None
    return YamlProblem(1, 1, "yaml_too_large",
                       f"the text is {size:,} bytes long; at most {MAX_TEXT_BYTES:,} are read")


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
