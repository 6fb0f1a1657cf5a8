"""What a catalog's rules read, and which rulebooks a subject's records reach.

A rulebook's rules can only fire on records their conditions route to (engine/compiler.py:
a record of kind K with list, scheme and grade, or severity, k reaches the rulesets of the
routes (K, k), (K, "k:grade") and (K, None)). So a change to a rulebook can change the
obligations of exactly the subjects holding such records, and a subject's obligations depend
only on the rulebooks its records reach. Two things carry a rulebook's effect beyond its own
routes, and both are followed here:

- a rule may apply a measure another rulebook defines (`shared: true`): a change to that
  measure changes what the rule's subjects get, so the applying rulebook counts as changed;
- a measure may derive a record (a D grade) that other rules read: the subjects of those
  rules are the subjects of the deriving rules, so the deriving rulebook's routes count too,
  transitively.

Used to find the subjects a publication can affect (store/affected.py) and to judge a subject
only at the dates where a rulebook its records reach changes (store/rows.py).
"""
from __future__ import annotations

from typing import Iterable

from .compiler import CompiledCatalog
from .model import Derivation

__all__ = ["Pattern", "patterns_read", "rulebooks_reached", "touching"]

# (record kind, route key): key None reads every record of the kind; else a list code, a rating
# scheme, "scheme:grade", or a penalty severity (engine.model.Condition.keys)
Pattern = tuple[str, str | None]


def _derives_into(derivation: Derivation, pattern: Pattern) -> bool:
    kind, key = pattern
    if derivation.record != kind:
        return False
    return key is None or key == derivation.key or key == f"{derivation.key}:{derivation.grade}"


def touching(catalog: CompiledCatalog, changed: Iterable[str]) -> set[str]:
    """`changed` and the rulebooks of `catalog` whose rules apply a measure one of them defines."""
    changed = set(changed)
    out = {name for name in changed if name in catalog.rulebooks}
    for rule in catalog.rules.values():
        if rule.rulebook not in out and any(catalog.measures[m].rulebook in changed
                                            for m in rule.apply if m in catalog.measures):
            out.add(rule.rulebook)
    return out


def patterns_read(catalog: CompiledCatalog, rulebooks: Iterable[str]) -> set[Pattern]:
    """The record patterns the rules of `rulebooks` read, with those of the rules whose measures
    derive records they read (and so on): a subject holds a record matching one of these, or the
    rules of `rulebooks` give it nothing."""
    wanted = set(rulebooks)
    rules = [r for r in catalog.rules.values() if r.rulebook in wanted]
    patterns = {(c.record, key) for r in rules for c in r.conditions for key in c.keys}
    done = {r.id for r in rules}
    grew = True
    while grew:
        grew = False
        for rule in catalog.rules.values():
            if rule.id in done:
                continue
            derivations = [catalog.measures[m].derives for m in rule.apply
                           if m in catalog.measures and catalog.measures[m].derives is not None]
            if any(_derives_into(d, p) for d in derivations for p in patterns):
                done.add(rule.id)
                patterns |= {(c.record, key) for c in rule.conditions for key in c.keys}
                grew = True
    return patterns


def rulebooks_reached(catalog: CompiledCatalog, keys: Iterable[tuple[str, str | None, str | None]]) -> frozenset[str]:
    """The rulebooks whose output for a subject can depend on records with these (kind, key,
    grade): those whose rules the records route to, the rulebooks defining the measures those
    rules apply, and, through derived records, the rulebooks reading what those derive."""
    by_ruleset = {ruleset: name for name, ruleset in catalog.ruleset_of.items()}
    reached: set[str] = set()
    for kind, key, grade in keys:
        route = catalog.route_for(kind, key, grade)
        if route is not None:
            reached |= {by_ruleset[r] for r in route[0] if r in by_ruleset}
    grew = True
    while grew:
        grew = False
        for rule in catalog.rules.values():
            if rule.rulebook not in reached:
                continue
            for measure_id in rule.apply:
                measure = catalog.measures.get(measure_id)
                if measure is None:
                    continue
                more = {measure.rulebook}
                if measure.derives is not None:
                    d = measure.derives
                    route = catalog.route_for(d.record, d.key, d.grade)
                    if route is not None:
                        more |= {by_ruleset[r] for r in route[0] if r in by_ruleset}
                if not more <= reached:
                    reached |= more
                    grew = True
    return frozenset(reached)
