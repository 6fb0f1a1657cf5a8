"""Rulebook text is parsed with hard bounds (issue 15): anchors and aliases are refused before
anything is expanded, and text size, nesting depth and node count are limited, each with its
own code at its line and column, in lint, load and the CLI alike."""
import time

import pytest

from engine.lint import load_and_lint
from engine.loader import load_rulebook_text
from engine.yamlsource import MAX_DEPTH, MAX_NODES, MAX_TEXT_BYTES

from test_cli import run

HEAD = "rulebook: zzbomb\ntitle: bomb\nowner: finance\n"


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": nine levels of nine aliases expand to 9**9 (387 million) strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return HEAD + "\n".join(lines) + "\n"


def too_deep() -> str:
    return HEAD + "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"


def too_many_nodes() -> str:
    return HEAD + "x: [" + "1," * MAX_NODES + "]\n"


def too_large() -> str:
    return HEAD + "# " + "x" * MAX_TEXT_BYTES + "\n"


# (text, code, line, column): where each is refused
HOSTILE = [
    pytest.param(alias_bomb(), "yaml_alias", 4, 4, id="alias-bomb"),
    pytest.param(HEAD + "measures: []\nrules: []\nx: *nothing\n", "yaml_alias", 6, 4, id="alias"),
    pytest.param(too_deep(), "yaml_too_deep", 4, 3 + MAX_DEPTH, id="depth"),
    pytest.param(too_many_nodes(), "yaml_too_many_nodes", 4, 5 + 2 * (MAX_NODES - 9), id="nodes"),
    pytest.param(too_large(), "yaml_too_large", 1, 1, id="size"),
]


@pytest.mark.parametrize("text, code, line, column", HOSTILE)
def test_hostile_text_is_refused_at_its_place_quickly(text, code, line, column):
    started = time.perf_counter()
    rulebook, diags = load_rulebook_text(text, "zzbomb.yaml")
    assert time.perf_counter() - started < 5
    assert rulebook is None
    assert [(d.code, d.line, d.column) for d in diags] == [(code, line, column)], diags


def test_a_file_too_large_is_refused_by_lint_and_the_cli(tmp_path, vocab):
    (tmp_path / "zzbomb.yaml").write_text(too_large(), encoding="utf-8")
    _, diags = load_and_lint([str(tmp_path)], vocab)
    assert [d.code for d in diags] == ["yaml_too_large"]
    (tmp_path / "zzbomb.yaml").write_text(alias_bomb(), encoding="utf-8")
    result = run("lint", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'zzbomb.yaml'}:4:4: yaml_alias: anchor &a: anchors and aliases" in result.stdout

