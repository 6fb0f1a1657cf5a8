"""Reference checks: everything a rulebook names must exist in the catalog, and the catalog
of measures must obey its own rules (国办发〔2020〕49号).

The schema says a rulebook is well formed; this module says it means something: known
departments, lists, grades, activities and legal bases ("did you mean" for near misses),
a binding legal basis for every punishment, no punishment ordered of a bank, effects whose
polarity fits the measure, unique ids across all rulebooks, rules that apply only their own
rulebook's measures or ones their owner marks `shared` (else a taxation draft applying the
courts' bidding restriction bars subjects from bidding on the tax bureau's word), joins that
name earlier aliases, and no cycle through derived records.
"""
from __future__ import annotations

from typing import Iterable

import networkx as nx

from catalog.vocabulary import BINDING_LEVELS, Vocabulary, suggest

from .errors import Diagnostic
from .loader import discover, load_rulebook
from .model import Rulebook, SUBJECT

__all__ = ["lint_rulebooks", "load_and_lint", "lint_texts", "derivation_graph"]

_KEY_FIELDS = {"list_entry": {"lists"}, "rating": {"scheme", "grades"}, "penalty": {"severities"},
               "relation": {"types"}}
_FIELD_NAMES = {"lists": "list", "grades": "grade", "severities": "severity", "types": "type",
                "scheme": "scheme"}


class _Reporter:
    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook
        self.items: list[Diagnostic] = []

    def __call__(self, path: tuple, code: str, message: str, suggestion: str | None = None,
                 severity: str = "error", key: bool = False) -> None:
        line, col = self.rulebook.located.where(path, key=key)
        self.items.append(Diagnostic(self.rulebook.path, line, col, code, message, suggestion, severity))


def _check_code(report, path, value, known, what: str, code: str) -> None:
    if value not in known:
        report(path, code, f"unknown {what} {value!r}", suggest(value, known))


def lint_rulebooks(rulebooks: list[Rulebook], vocab: Vocabulary) -> list[Diagnostic]:
    """Every reference problem in `rulebooks`, taken together (ids are global)."""
    diagnostics: list[Diagnostic] = []
    measure_home: dict[str, tuple[Rulebook, int]] = {}
    rule_home: dict[str, tuple[Rulebook, int]] = {}
    names: dict[str, Rulebook] = {}
    reporters = {id(rb): _Reporter(rb) for rb in rulebooks}

    for rb in rulebooks:
        report = reporters[id(rb)]
        stem = rb.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if rb.name != stem:
            report(("rulebook",), "name_mismatch", f"rulebook {rb.name!r} must be in a file named {rb.name}.yaml")
        if rb.name in names:
            report(("rulebook",), "duplicate_id", f"rulebook {rb.name!r} is also defined in {names[rb.name].path}")
        names[rb.name] = rb
        _check_code(report, ("owner",), rb.owner, vocab.departments, "department", "unknown_department")
        for i, item in enumerate(rb.covers):
            if item not in vocab.seed_domains:
                report(("covers", i), "unknown_seed_item", f"seed plan item {item} is not one of the domains 10-34")
        for i, m in enumerate(rb.measures):
            if m.id in measure_home:
                other = measure_home[m.id][0]
                report(("measures", i, "id"), "duplicate_id", f"measure {m.id!r} is also defined in {other.path}")
            else:
                measure_home[m.id] = (rb, i)
        for i, r in enumerate(rb.rules):
            if r.id in rule_home:
                report(("rules", i, "id"), "duplicate_id", f"rule {r.id!r} is also defined in {rule_home[r.id][0].path}")
            else:
                rule_home[r.id] = (rb, i)

    for rb in rulebooks:
        report = reporters[id(rb)]
        for i, m in enumerate(rb.measures):
            _lint_measure(report, ("measures", i), m, vocab)
        for i, r in enumerate(rb.rules):
            _lint_rule(report, ("rules", i), r, vocab, measure_home)
        for i, t in enumerate(rb.tests):
            for j, e in enumerate(t.expect):
                if e["measure"] not in measure_home:
                    report(("tests", i, "expect", j, "measure"), "unknown_measure",
                           f"unknown measure {e['measure']!r}", suggest(e["measure"], measure_home))
            for j, mid in enumerate(t.absent):
                if mid not in measure_home:
                    report(("tests", i, "absent", j), "unknown_measure", f"unknown measure {mid!r}",
                           suggest(mid, measure_home))

    applied = {mid for rb in rulebooks for r in rb.rules for mid in r.apply}
    for mid, (rb, i) in measure_home.items():
        if mid not in applied:
            reporters[id(rb)](("measures", i, "id"), "unused_measure",
                              f"measure {mid!r} is applied by no rule", severity="warning")

    _lint_cycles(rulebooks, reporters, measure_home, rule_home)
    for reporter in reporters.values():
        diagnostics.extend(reporter.items)
    return sorted(diagnostics)


def _lint_measure(report, path, m, vocab: Vocabulary) -> None:
    _check_code(report, path + ("department",), m.department, vocab.departments, "department",
                "unknown_department")
    for j, b in enumerate(m.basis):
        _check_code(report, path + ("basis", j), b, vocab.bases, "legal basis", "unknown_basis")
    if m.kind == "punishment":
        if not m.basis:
            report(path + ("id",), "missing_basis",
                   f"punishment {m.id!r} cites no legal basis: every punitive measure must rest on a law, "
                   "regulation or central policy document")
        elif all(b in vocab.bases and vocab.bases[b].level not in BINDING_LEVELS for b in m.basis):
            report(path + ("basis",), "weak_basis",
                   f"punishment {m.id!r} cites only local documents; it needs a law, regulation or central policy")
        if m.department in vocab.departments and not vocab.may_punish(m.department):
            report(path + ("department",), "forbidden_punisher",
                   f"{vocab.departments[m.department].name} may not be ordered to punish (国办发〔2020〕49号)")
    for j, e in enumerate(m.effects):
        _check_code(report, path + ("effects", j, "activity"), e.activity, vocab.activities, "activity",
                    "unknown_activity")
        if e.effect not in vocab.effects:
            _check_code(report, path + ("effects", j, "effect"), e.effect, vocab.effects, "effect", "unknown_effect")
        elif vocab.effects[e.effect]["polarity"] != m.kind:
            report(path + ("effects", j, "effect"), "effect_polarity",
                   f"effect {e.effect!r} is a {vocab.effects[e.effect]['polarity']}, but {m.id!r} is a {m.kind}")
    if m.lasts != "while_listed":
        pass  # the schema checks the period's shape
    d = m.derives
    if d:
        if d.record == "list_entry":
            if not d.list:
                report(path + ("derives",), "missing_field", "a derived list entry needs `list`")
            else:
                _check_code(report, path + ("derives", "list"), d.list, vocab.lists, "list", "unknown_list")
        else:
            if not d.scheme or not d.grade:
                report(path + ("derives",), "missing_field", "a derived rating needs `scheme` and `grade`")
            elif d.scheme not in vocab.schemes:
                _check_code(report, path + ("derives", "scheme"), d.scheme, vocab.schemes, "rating scheme",
                            "unknown_scheme")
            elif d.grade not in vocab.schemes[d.scheme].grades:
                _check_code(report, path + ("derives", "grade"), d.grade, vocab.schemes[d.scheme].grades,
                            f"grade of {d.scheme}", "unknown_grade")


def _lint_rule(report, path, r, vocab: Vocabulary, measure_home) -> None:
    aliases: list[str] = []
    for i, c in enumerate(r.conditions):
        cpath = path + ("when", i)
        if c.alias in aliases:
            report(cpath + ("as",), "duplicate_alias", f"alias {c.alias!r} is used twice in rule {r.id!r}")
        allowed = _KEY_FIELDS.get(c.record, set()) | {"categories", "departments"}
        for attr, field in _FIELD_NAMES.items():
            if getattr(c, attr) is not None and attr not in allowed:
                report(cpath + (field,), "misplaced_field", f"`{field}` does not apply to {c.record} records")
        for j, code in enumerate(c.lists or ()):
            _check_code(report, cpath + ("list",) + ((j,) if len(c.lists) > 1 else ()), code, vocab.lists, "list",
                        "unknown_list")
        if c.scheme is not None:
            _check_code(report, cpath + ("scheme",), c.scheme, vocab.schemes, "rating scheme", "unknown_scheme")
        if c.grades:
            if c.scheme is None:
                report(cpath + ("grade",), "missing_field", "a grade condition needs `scheme`")
            elif c.scheme in vocab.schemes:
                for g in c.grades:
                    _check_code(report, cpath + ("grade",), g, vocab.schemes[c.scheme].grades,
                                f"grade of {c.scheme}", "unknown_grade")
        for s in c.severities or ():
            _check_code(report, cpath + ("severity",), s, vocab.severities, "severity", "unknown_severity")
        for t in c.types or ():
            _check_code(report, cpath + ("type",), t, vocab.relation_types, "relation type", "unknown_relation")
        for d in c.departments or ():
            _check_code(report, cpath + ("department",), d, vocab.departments, "department", "unknown_department")
        for join in c.joins:
            if join.alias not in aliases:
                report(cpath + ("same", join.field), "unknown_alias",
                       f"join names {join.alias!r}, which is not an earlier condition of rule {r.id!r}",
                       suggest(join.alias, aliases))
        aliases.append(c.alias)
    for j, t in enumerate(r.targets):
        if t != SUBJECT and t not in vocab.relation_types:
            report(path + ("targets", j), "unknown_target", f"unknown target {t!r}",
                   suggest(t, [SUBJECT, *vocab.relation_types]))
    for j, mid in enumerate(r.apply):
        if mid not in measure_home:
            report(path + ("apply", j), "unknown_measure", f"unknown measure {mid!r}", suggest(mid, measure_home))
            continue
        rb, i = measure_home[mid]
        measure = rb.measures[i]
        if rb.name != r.rulebook and not measure.shared:
            report(path + ("apply", j), "foreign_measure",
                   f"measure {mid!r} belongs to rulebook {rb.name!r}, owned by {rb.owner}: a rulebook applies "
                   f"only its own measures, unless their owner marks them `shared: true`")
        if measure.derives and any(t != SUBJECT for t in r.targets):
            report(path + ("targets",), "derived_needs_subject",
                   f"measure {mid!r} derives a record, so rule {r.id!r} may target only the subject")


def derivation_graph(rulebooks: Iterable[Rulebook]) -> nx.DiGraph:
    """rule -> rule edges: the first applies a measure whose derived record the second reads."""
    rulebooks = list(rulebooks)
    measures = {m.id: m for rb in rulebooks for m in rb.measures}
    readers: dict[tuple[str, str | None], list[str]] = {}
    graph = nx.DiGraph()
    for rb in rulebooks:
        for r in rb.rules:
            graph.add_node(r.id)
            for c in r.conditions:
                for key in c.keys:
                    readers.setdefault((c.record, key), []).append(r.id)
    for rb in rulebooks:
        for r in rb.rules:
            for mid in r.apply:
                d = measures.get(mid) and measures[mid].derives
                if not d:
                    continue
                keys = [(d.record, d.key), (d.record, None)]
                if d.grade:
                    keys.append((d.record, f"{d.key}:{d.grade}"))
                for reader in {r for k in keys for r in readers.get(k, [])}:
                    graph.add_edge(r.id, reader, measure=mid)
    return graph


def _lint_cycles(rulebooks, reporters, measure_home, rule_home) -> None:
    graph = derivation_graph(rulebooks)
    for cycle in nx.simple_cycles(graph):
        path_text = " -> ".join(cycle + [cycle[0]])
        for rid in cycle:
            rb, i = rule_home[rid]
            reporters[id(rb)](("rules", i, "id"), "rule_cycle",
                              f"rules form a cycle through derived records: {path_text}")


def load_and_lint(paths: Iterable[str], vocab: Vocabulary) -> tuple[list[Rulebook], list[Diagnostic]]:
    """Load every rulebook under `paths` and return them with all diagnostics of all files."""
    rulebooks, diagnostics = [], []
    files = discover(paths)
    for path in files:
        if not path.exists():
            diagnostics.append(Diagnostic(str(path), 1, 1, "unreadable_file", "no such file"))
            continue
        rb, diags = load_rulebook(path)
        diagnostics.extend(diags)
        if rb is not None:
            rulebooks.append(rb)
    diagnostics.extend(lint_rulebooks(rulebooks, vocab))
    return rulebooks, sorted(diagnostics)


def lint_texts(texts: dict[str, str], vocab: Vocabulary) -> tuple[list[Rulebook], list[Diagnostic]]:
    """Like load_and_lint, for rulebooks held as text (filename -> YAML), e.g. revisions in the store."""
    from .loader import load_rulebook_text

    rulebooks, diagnostics = [], []
    for filename, text in texts.items():
        rb, diags = load_rulebook_text(text, filename)
        diagnostics.extend(diags)
        if rb is not None:
            rulebooks.append(rb)
    diagnostics.extend(lint_rulebooks(rulebooks, vocab))
    return rulebooks, sorted(diagnostics)
