"""Compile rulebooks once into what evaluation needs: durable-rules rulesets (one per
rulebook revision) and a routing index that keeps facts no rule can read out of the engine.

A condition becomes a durable-rules expression over a fact. Everything that depends on the
evaluation date (is the record live? is it within the window?) is computed per fact before
it is asserted and carried as plain fields (`live`, `current`, `w_P3Y`), so the rulesets
themselves never depend on the date: compile once, evaluate for any `as_of`.

Note the durable-rules JSON form puts the operator outside the field:
`{"$lte": {"listed_on": x}}`. The inner form is accepted silently and, as measured with
2.0.28, ignores its operator and matches any fact that has the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

from catalog.vocabulary import Vocabulary, load_vocabulary

from .errors import RulebookErrors
from .lint import lint_texts, load_and_lint
from .model import Condition, Measure, Rule, Rulebook

__all__ = ["Route", "CompiledCatalog", "compile_rulebooks", "compile_texts", "compile_loaded", "window_field",
           "condition_expression"]


def window_field(period: str) -> str:
    return f"w_{period}"


def _one_of(field_name: str, values: Iterable[str]) -> dict:
    values = list(values)
    if len(values) == 1:
        return {field_name: values[0]}
    return {"$or": [{field_name: v} for v in values]}


def condition_expression(condition: Condition, aliases: dict[str, str]) -> dict:
    """The durable-rules expression for one condition (aliases map rulebook names to durable ones)."""
    terms: list[dict] = [{"kind": condition.record}]
    if condition.lists:
        terms.append(_one_of("list", condition.lists))
    if condition.scheme:
        terms.append({"scheme": condition.scheme})
    if condition.record == "rating":
        terms.append({"current": True})  # only the latest rating in a scheme is the grade
    if condition.grades:
        terms.append(_one_of("grade", condition.grades))
    if condition.severities:
        terms.append(_one_of("severity", condition.severities))
    if condition.categories:
        terms.append(_one_of("category", condition.categories))
    if condition.types:
        terms.append(_one_of("type", condition.types))
    if condition.departments:
        terms.append(_one_of("department", condition.departments))
    if condition.status == "live":
        terms.append({"live": True})
    elif condition.status != "any":
        terms.append(_one_of("status", condition.status))
    if condition.within:
        terms.append({window_field(condition.within): True})
    for join in condition.joins:
        terms.append({join.field: {aliases[join.alias]: join.other_field}})
    return terms[0] if len(terms) == 1 else {"$and": terms}


def _rule_spec(rule: Rule) -> dict:
    aliases = {c.alias: f"a{i}" for i, c in enumerate(rule.conditions)}
    return {"all": [{aliases[c.alias]: condition_expression(c, aliases)} for c in rule.conditions]}


@dataclass
class Route:
    """Where a record of one (kind, key) goes, and what must be computed for it."""

    rulesets: set[str] = field(default_factory=set)
    windows: set[str] = field(default_factory=set)
    reads_inactive: bool = False


@dataclass
class CompiledCatalog:
    """Rulebooks compiled for evaluation. Immutable once built; share it between evaluators."""

    vocab: Vocabulary
    rulebooks: dict[str, Rulebook]
    measures: dict[str, Measure]
    rules: dict[str, Rule]
    rulesets: dict[str, dict[str, dict]]  # ruleset name -> {rule id: durable spec}
    ruleset_of: dict[str, str]  # rulebook name -> ruleset name
    routes: dict[tuple[str, str | None], Route]
    alias_names: dict[str, dict[str, str]]  # rule id -> {durable alias: rulebook alias}
    _route_cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def revisions(self) -> dict[str, str]:
        """Rulebook name -> revision, in name order. Computed once: every evaluation carries it
        (3% of materialising a subject when it was rebuilt each time); callers copy, never change it."""
        return {name: rb.revision for name, rb in sorted(self.rulebooks.items())}

    def route_for(self, kind: str, key: str | None, grade: str | None = None) -> tuple[set[str], set[str], bool] | None:
        """Rulesets, windows and whether inactive records matter, for a record of (kind, key[, grade])."""
        cache_key = (kind, key, grade)
        try:
            return self._route_cache[cache_key]
        except KeyError:
            pass
        candidates = [(kind, key)] if key is not None else []
        if grade is not None and key is not None:
            candidates.append((kind, f"{key}:{grade}"))
        candidates.append((kind, None))
        found = [self.routes[c] for c in candidates if c in self.routes]
        result = None
        if found:
            result = (set().union(*(r.rulesets for r in found)), set().union(*(r.windows for r in found)),
                      any(r.reads_inactive for r in found))
            if not result[0]:
                result = None
        self._route_cache[cache_key] = result
        return result


def compile_loaded(rulebooks: list[Rulebook], vocab: Vocabulary) -> CompiledCatalog:
    """Compile rulebooks that have been loaded and linted without errors."""
    measures = {m.id: m for rb in rulebooks for m in rb.measures}
    rules = {r.id: r for rb in rulebooks for r in rb.rules}
    rulesets, ruleset_of, routes, alias_names = {}, {}, {}, {}
    for rb in rulebooks:
        name = f"{rb.name}@{rb.revision}"
        ruleset_of[rb.name] = name
        specs = {}
        for rule in rb.rules:
            specs[rule.id] = _rule_spec(rule)
            alias_names[rule.id] = {f"a{i}": c.alias for i, c in enumerate(rule.conditions)}
            for c in rule.conditions:
                for key in c.keys:
                    route = routes.setdefault((c.record, key), Route())
                    route.rulesets.add(name)
                    if c.within:
                        route.windows.add(c.within)
                    route.reads_inactive = route.reads_inactive or c.reads_inactive
        if specs:
            rulesets[name] = specs
    # A ruleset with no rules is never asserted to.
    for route in routes.values():
        route.rulesets &= set(rulesets)
    return CompiledCatalog(vocab=vocab, rulebooks={rb.name: rb for rb in rulebooks}, measures=measures,
                           rules=rules, rulesets=rulesets, ruleset_of=ruleset_of, routes=routes,
                           alias_names=alias_names)


def compile_rulebooks(paths: Iterable[str] | None = None, vocab: Vocabulary | None = None) -> CompiledCatalog:
    """Load, lint and compile rulebooks. Raises RulebookErrors with every error of every file."""
    from .resources import default_rulebook_dir

    vocab = vocab or load_vocabulary()
    rulebooks, diagnostics = load_and_lint(list(paths) if paths else [default_rulebook_dir()], vocab)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise RulebookErrors(errors)
    return compile_loaded(rulebooks, vocab)


def compile_texts(texts: dict[str, str], vocab: Vocabulary | None = None) -> CompiledCatalog:
    """Compile rulebooks given as {name: YAML text} (names become `<name>.yaml` in diagnostics)."""
    vocab = vocab or load_vocabulary()
    rulebooks, diagnostics = lint_texts({f"{name}.yaml": text for name, text in texts.items()}, vocab)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise RulebookErrors(errors)
    return compile_loaded(rulebooks, vocab)
