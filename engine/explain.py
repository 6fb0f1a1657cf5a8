"""The explanation of an evaluation as a graph, and "why" / "why not" for one measure.

Nodes: the subject and linked persons, records (and records derived by measures),
conditions, rules, measures, legal bases, actions, departments. Edges run the way the
reasoning runs: record -> condition -> rule -> measure -> action -> department, with
basis -> measure, relation edges from the subject to a linked person the action targets,
successor hops between departments, derived-record chains, and punishments suspending
incentives. It is built from the firings recorded during evaluation, so the graph shows
exactly what matched, not a re-derivation.

Lifecycle cases (objections and credit repairs, from the store) can be laid over it: a
`lifecycle` node per case, an edge to the record it concerns, and a `lifted` edge to each
action its decision lifted (an action lifted before `as_of` is added, with status `lifted`).
"""
from __future__ import annotations

import json
from typing import Any

import networkx as nx

from .evaluator import Action, Evaluation
from .model import SUBJECT
from .reference import condition_failures, describe_condition
from .temporal import record_state

__all__ = ["explanation_graph", "to_node_link", "to_dot", "render_picture", "why", "format_why"]


def _action_node(a: Action) -> str:
    return f"action:{a.measure.id}:{a.target_code}:{a.rule.id}"


def _record_label(record, state) -> str:
    key = record.list or (f"{record.scheme} {record.grade}" if record.scheme else None) or record.severity or record.type or ""
    status = state.status if state else record.status
    return f"{record.id}\n{record.kind} {key}\n{record.start or ''} {status}"


def explanation_graph(evaluation: Evaluation, lifecycle: list[dict] | None = None) -> nx.DiGraph:
    """The graph of an evaluation; `lifecycle` adds objection/repair cases, as given by
    store.lifecycle.Lifecycle.explanation_events (kind, id, record, state, decision, date, by,
    reasons, lifted: [{measure, target_code, rule, department, valid_from, valid_until}])."""
    g = nx.DiGraph(subject=evaluation.subject.code, as_of=evaluation.as_of, rulebooks=evaluation.revisions)
    catalog = evaluation.catalog
    subject = evaluation.subject
    subject_node = f"subject:{subject.code}"
    g.add_node(subject_node, type="subject", label=f"{subject.name}\n{subject.code}", kind=subject.kind)

    def add_record(rid: str) -> str:
        node = f"record:{rid}"
        if node in g:
            return node
        record = evaluation.records[rid]
        state = evaluation.states.get(rid)
        g.add_node(node, type="derived_record" if record.derived_from else "record",
                   label=_record_label(record, state), status=state.status if state else record.status,
                   document=record.document, department=record.department)
        if not record.derived_from:
            g.add_edge(subject_node, node, relation="has_record")
        return node

    for index, firing in enumerate(evaluation.firings):
        rule = catalog.rules[firing.rule]
        rule_node = f"rule:{rule.id}"
        g.add_node(rule_node, type="rule", label=f"{rule.id}\n{rule.description}", rulebook=rule.rulebook,
                   revision=evaluation.revisions.get(rule.rulebook))
        for c in rule.conditions:
            cond_node = f"condition:{rule.id}:{c.alias}"
            g.add_node(cond_node, type="condition", label=describe_condition(c))
            g.add_edge(cond_node, rule_node, relation="part_of")
            g.add_edge(add_record(firing.bindings[c.alias]), cond_node, relation="satisfies", firing=index)

    for a in evaluation.actions:
        m = a.measure
        measure_node = f"measure:{m.id}"
        g.add_node(measure_node, type="measure", label=f"{m.id}\n{m.action}", kind=m.kind)
        g.add_edge(f"rule:{a.rule.id}", measure_node, relation="applies")
        for b in m.basis:
            basis = catalog.vocab.bases[b]
            g.add_node(f"basis:{b}", type="basis", label=str(basis), level=basis.level)
            g.add_edge(f"basis:{b}", measure_node, relation="grounds")
        node = _action_node(a)
        g.add_node(node, type="action", label=f"{m.kind}: {m.action}\n{a.status} {a.valid_from} .. {a.valid_until or 'open'}",
                   status=a.status, measure=m.id, valid_from=a.valid_from, valid_until=a.valid_until)
        g.add_edge(measure_node, node, relation="yields")
        previous = node
        for i, dept in enumerate(a.departments):
            dept_node = f"department:{dept.code}"
            g.add_node(dept_node, type="department", label=dept.name)
            if i == 0:
                g.add_edge(previous, dept_node, relation="assigned_to" if len(a.departments) > 1 else "obliges")
            else:
                prior = a.departments[i - 1]
                g.add_edge(previous, dept_node, relation="succeeded_by", on=str(prior.succeeded_on))
            previous = dept_node
        if a.target_relation:
            person_node = f"subject:{a.target_code}"
            g.add_node(person_node, type="linked_subject", label=f"{a.target_name}\n{a.target_code}")
            g.add_edge(subject_node, person_node, relation=a.target_relation, record=a.relation_record)
            g.add_edge(node, person_node, relation="targets")
        else:
            g.add_edge(node, subject_node, relation="targets")
        if m.derives:
            derived = f"record:derived:{m.id}"
            if derived in g:
                g.add_edge(node, derived, relation="derives")
        for other in a.suspended_by:
            for p in evaluation.actions_for(other):
                if p.target_code == a.target_code:
                    g.add_edge(_action_node(p), node, relation="suspends")
    for case in lifecycle or ():
        _add_case(g, case, add_record if case.get("record") in evaluation.records else None)
    return g


# the edge from a case to its record says what the case did to it
_CASE_EDGES = {("objection", "pending"): "disputes", ("objection", "upheld"): "revoked",
               ("objection", "rejected"): "confirmed", ("repair", "pending"): "applies_for_repair",
               ("repair", "approved"): "repaired", ("repair", "refused"): "refused"}


def _add_case(g: nx.DiGraph, case: dict, add_record) -> None:
    kind, state = case["kind"], case.get("state", "pending")
    node = f"lifecycle:{kind}:{case['id']}"
    decided = f"{case.get('decision')} {case.get('date')} by {case.get('by')}" if case.get("decision") else "pending"
    g.add_node(node, type="lifecycle", label=f"{kind} #{case['id']}\n{decided}", kind=kind, state=state,
               decision=case.get("decision"), date=case.get("date"), by=case.get("by"), reasons=case.get("reasons"))
    if add_record is not None:
        relation = _CASE_EDGES.get((kind, state), state)
        if kind == "objection" and state == "upheld" and case.get("correction"):
            relation = "corrected"
        g.add_edge(node, add_record(case["record"]), relation=relation, on=case.get("date"))
    for lifted in case.get("lifted") or ():
        action = f"action:{lifted['measure']}:{lifted['target_code']}:{lifted['rule']}"
        if action not in g:
            g.add_node(action, type="action", status="lifted", measure=lifted["measure"],
                       valid_from=lifted.get("valid_from"), valid_until=lifted.get("valid_until"),
                       label=f"lifted: {lifted['measure']}\n{lifted.get('valid_from')} .. {lifted.get('valid_until')}")
        g.add_edge(node, action, relation="lifted", on=lifted.get("valid_until"))


def to_node_link(graph: nx.DiGraph) -> dict:
    return nx.node_link_data(graph, edges="edges")


def to_dot(graph: nx.DiGraph) -> str:
    """DOT text with one shape and colour per node type, readable in any Graphviz viewer."""
    import pydot

    styles = {
        "subject": ("box", "#dbe9f6"), "linked_subject": ("box", "#dbe9f6"), "record": ("note", "#fff4d6"),
        "derived_record": ("note", "#ffe0b3"), "condition": ("ellipse", "#f2f2f2"), "rule": ("hexagon", "#e8def8"),
        "measure": ("component", "#d7f0dd"), "basis": ("folder", "#f6f6d8"), "action": ("box", "#fadadd"),
        "department": ("house", "#d6eef2"), "lifecycle": ("octagon", "#f9d5b4"),
    }
    dot = pydot.Dot("explanation", graph_type="digraph", rankdir="LR", charset="UTF-8")
    ids = {}
    for i, (node, data) in enumerate(graph.nodes(data=True)):
        ids[node] = f"n{i}"
        shape, color = styles.get(data.get("type"), ("box", "white"))
        dot.add_node(pydot.Node(ids[node], label=json.dumps(data.get("label", node), ensure_ascii=False),
                                shape=shape, style="filled", fillcolor=f'"{color}"', tooltip=json.dumps(node)))
    for u, v, data in graph.edges(data=True):
        dot.add_edge(pydot.Edge(ids[u], ids[v], label=json.dumps(data.get("relation", ""))))
    return dot.to_string()


_LAYERS = {"subject": 0, "record": 1, "linked_subject": 7, "derived_record": 1, "condition": 2, "rule": 3,
           "basis": 3, "measure": 4, "action": 5, "department": 6, "lifecycle": 0}
_COLOURS = {"subject": "#9ec5ea", "linked_subject": "#9ec5ea", "record": "#ffe8a3", "derived_record": "#ffc266",
            "condition": "#dddddd", "rule": "#cbb6f0", "measure": "#a8dfb5", "basis": "#eeeeaa", "action": "#f4a9b3",
            "department": "#a6dbe6", "lifecycle": "#f9b98a"}


def render_picture(graph: nx.DiGraph, path: str) -> None:
    """Draw the graph left to right by layer (PNG, SVG or PDF by the file's suffix).

    Uses matplotlib's Figure directly, not pyplot, so concurrent requests do not share state.
    """
    import warnings

    import matplotlib
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    graph = graph.copy()  # layers and pruned edges are for the picture only
    for node, data in graph.nodes(data=True):
        layer = _LAYERS.get(data.get("type"), 7)
        if data.get("type") == "department" and any(
                d.get("relation") == "succeeded_by" for _, _, d in graph.in_edges(node, data=True)):
            layer = 7  # the successor stands right of the department it replaced
        data["layer"] = layer
    # Every action concerns the subject: edges back to it only tangle the picture.
    root = f"subject:{graph.graph.get('subject')}"
    graph.remove_edges_from([(u, v) for u, v, d in graph.edges(data=True)
                             if v == root and d.get("relation") == "targets"])
    positions = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    cjk = [f.name for f in font_manager.fontManager.ttflist
           if any(k in f.name for k in ("Noto Sans CJK", "WenQuanYi", "Source Han", "SimHei", "Droid Sans Fallback"))]
    layers = nx.get_node_attributes(graph, "layer")
    height = max(4.0, 0.9 * max((list(layers.values()).count(layer) for layer in set(layers.values())), default=1))
    fig = Figure(figsize=(22, height))
    ax = fig.subplots()
    colours = [_COLOURS.get(d.get("type"), "white") for _, d in graph.nodes(data=True)]
    nx.draw_networkx_edges(graph, positions, ax=ax, arrows=True, arrowsize=10, edge_color="#888888",
                           node_size=2600)
    nx.draw_networkx_nodes(graph, positions, ax=ax, node_color=colours, node_size=2600, node_shape="s")
    # Without a CJK font (or in SVG, where the viewer's fonts draw the text) Chinese labels
    # would turn into boxes in a raster image: fall back to the ASCII codes every node has.
    vector = path.endswith(".svg")
    use_cjk = bool(cjk) or vector
    labels = {n: _short(d.get("label", n) if use_cjk else _ascii_label(n, d)) for n, d in graph.nodes(data=True)}
    nx.draw_networkx_labels(graph, positions, labels=labels, ax=ax, font_size=6,
                            font_family=cjk[0] if cjk else "sans-serif")
    edge_labels = {(u, v): d.get("relation", "") for u, v, d in graph.edges(data=True)
                   if d.get("relation") not in ("part_of", "satisfies", "yields", "has_record")}
    nx.draw_networkx_edge_labels(graph, positions, edge_labels=edge_labels, ax=ax, font_size=5)
    ax.set_title(f"{graph.graph.get('subject')} on {graph.graph.get('as_of')}")
    ax.axis("off")
    with matplotlib.rc_context({"svg.fonttype": "none"}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        fig.savefig(path, dpi=110)


def _ascii_label(node: str, data: dict) -> str:
    kind, _, rest = node.partition(":")
    if kind == "action":
        measure, target, _rule = rest.split(":", 2)
        return f"{data.get('status', '')}\n{measure}\n-> {target}"
    if kind == "basis":
        return f"basis\n{rest}"
    return f"{kind}\n{rest}"


def _short(label: str, width: int = 26) -> str:
    lines = []
    for line in str(label).split("\n"):
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines[:4])


# -- why and why not -----------------------------------------------------------------------
def why(evaluation: Evaluation, measure_id: str) -> dict[str, Any]:
    """Why `measure_id` applies to this subject (its chains), or why it does not (failed conditions)."""
    catalog = evaluation.catalog
    if measure_id not in catalog.measures:
        from catalog.vocabulary import suggest

        hint = suggest(measure_id, catalog.measures)
        from .errors import JointCreditError

        raise JointCreditError(f"unknown measure {measure_id!r}" + (f" (did you mean {hint!r}?)" if hint else ""),
                               code="unknown_measure")
    measure = catalog.measures[measure_id]
    actions = evaluation.actions_for(measure_id)
    result: dict[str, Any] = {"measure": measure_id, "action": measure.action, "kind": measure.kind,
                              "subject": evaluation.subject.code, "as_of": evaluation.as_of,
                              "applies": bool(actions), "chains": [], "why_not": []}
    for a in actions:
        result["chains"].append(_chain(evaluation, a))
    if not actions:
        for rule in (r for r in catalog.rules.values() if measure_id in r.apply):
            result["why_not"].append(_why_not_rule(evaluation, rule))
    return result


def _record_facts(evaluation: Evaluation, rid: str) -> dict:
    record = evaluation.records[rid]
    state = evaluation.states.get(rid)
    data = record.to_dict()
    data["status_on_as_of"] = state.status if state else record.status
    if state:
        data["counts_until"] = state.valid_until
    if record.derived_from:
        measure_id, rule_id = record.derived_from
        data["derived_by"] = {"measure": measure_id, "rule": rule_id}
        source = [a for a in evaluation.actions_for(measure_id) if a.target_relation is None]
        if source:
            data["derived_chain"] = _chain(evaluation, source[0])
    return data


def _chain(evaluation: Evaluation, a: Action) -> dict:
    catalog = evaluation.catalog
    firing_bindings = [evaluation.firings[i].bindings for i in a.firings]
    conditions = []
    for c in a.rule.conditions:
        rids = []
        for b in firing_bindings:
            if b[c.alias] not in rids:
                rids.append(b[c.alias])
        conditions.append({"condition": describe_condition(c), "alias": c.alias,
                           "records": [_record_facts(evaluation, rid) for rid in rids]})
    departments = [{"code": d.code, "name": d.name,
                    **({"succeeded_on": str(d.succeeded_on)} if d.successor and i < len(a.departments) - 1 else {})}
                   for i, d in enumerate(a.departments)]
    return {
        "status": a.status,
        "target": {"code": a.target_code, "relation": a.target_relation or SUBJECT, "name": a.target_name,
                   "relation_record": a.relation_record},
        "rule": {"id": a.rule.id, "description": a.rule.description, "rulebook": a.rule.rulebook,
                 "revision": evaluation.revisions.get(a.rule.rulebook)},
        "conditions": conditions,
        "basis": [catalog.vocab.bases[b].to_dict() for b in a.measure.basis],
        "departments": departments,
        "valid_from": a.valid_from, "valid_until": a.valid_until,
        "suspended_by": list(a.suspended_by),
    }


def _why_not_rule(evaluation: Evaluation, rule) -> dict:
    catalog = evaluation.catalog
    records = [r for r in evaluation.bundle.records]
    out = {"rule": rule.id, "description": rule.description, "conditions": []}
    for c in rule.conditions:
        entry = {"condition": describe_condition(c), "alias": c.alias, "satisfied_by": [], "closest": []}
        scored = []
        for r in records:
            if r.kind != c.record:
                continue
            state = evaluation.states.get(r.id) or record_state(r, evaluation.as_of, catalog.vocab)
            failures = condition_failures(c, r, state, evaluation.as_of)
            if failures:
                scored.append((len(failures), r.id, failures))
            else:
                entry["satisfied_by"].append(r.id)
        scored.sort()
        entry["closest"] = [{"record": rid, "fails": f} for _, rid, f in scored[:3]]
        if not entry["satisfied_by"] and not scored:
            entry["missing"] = f"the subject has no {c.record} record"
        out["conditions"].append(entry)
    if all(e["satisfied_by"] for e in out["conditions"]):
        targets = [t for t in rule.targets if t != SUBJECT]
        have = {r.type for r in records if r.kind == "relation"}
        missing = [t for t in targets if t not in have]
        if missing and SUBJECT not in rule.targets:
            out["targets_missing"] = missing
        else:
            out["note"] = "all conditions hold; the measure's own term has run out or a join between records failed"
    return out


def format_why(result: dict) -> str:
    lines = [f"{result['measure']} ({result['kind']}): {result['action']}",
             f"subject {result['subject']} on {result['as_of']}: "
             + ("APPLIES" if result["applies"] else "does NOT apply")]
    for chain in result["chains"]:
        t = chain["target"]
        lines.append("")
        lines.append(f"- {chain['status']} for {t['name'] or ''} {t['code']} ({t['relation']})"
                     f" from {chain['valid_from']} until {chain['valid_until'] or 'further notice'}")
        if t["relation"] != SUBJECT:
            lines.append(f"    reached through relation record {t['relation_record']} ({t['relation']})")
        lines.append(f"    rule {chain['rule']['id']} [{chain['rule']['rulebook']}@{chain['rule']['revision']}]: "
                     f"{chain['rule']['description']}")
        for cond in chain["conditions"]:
            lines.append(f"    condition {cond['alias']}: {cond['condition']}")
            for rec in cond["records"]:
                lines.extend(_format_record(rec, "      "))
        for b in chain["basis"]:
            lines.append(f"    basis: {b['document']} {b['title']} {b.get('article', '')}".rstrip())
        depts = chain["departments"]
        hop = " -> ".join(f"{d['name']}" + (f" (succeeded {d['succeeded_on']})" if "succeeded_on" in d else "")
                          for d in depts)
        lines.append(f"    department: {hop}")
        if chain["suspended_by"]:
            lines.append(f"    suspended by: {', '.join(chain['suspended_by'])}")
    for rule in result["why_not"]:
        lines.append("")
        lines.append(f"- rule {rule['rule']}: {rule['description']}")
        for cond in rule["conditions"]:
            mark = "holds" if cond["satisfied_by"] else "FAILS"
            lines.append(f"    condition {cond['alias']} {mark}: {cond['condition']}")
            if cond["satisfied_by"]:
                lines.append(f"      satisfied by {', '.join(cond['satisfied_by'])}")
            elif cond.get("missing"):
                lines.append(f"      {cond['missing']}")
            for near in cond["closest"] if not cond["satisfied_by"] else []:
                lines.append(f"      record {near['record']}: " + "; ".join(near["fails"]))
        if rule.get("targets_missing"):
            lines.append(f"    no linked person of type {', '.join(rule['targets_missing'])}")
        if rule.get("note"):
            lines.append(f"    {rule['note']}")
    return "\n".join(lines)


def _format_record(rec: dict, indent: str) -> list[str]:
    what = rec.get("list") or " ".join(filter(None, [rec.get("scheme"), rec.get("grade")])) or rec.get("severity") or ""
    start = rec.get("listed_on") or rec.get("decided_on") or ""
    line = f"{indent}record {rec['id']}: {rec['kind']} {what} from {start}, {rec['status_on_as_of']}"
    if rec.get("document"):
        line += f", document {rec['document']}"
    if rec.get("department"):
        line += f", by {rec['department']}"
    lines = [line]
    if "derived_chain" in rec:
        d = rec["derived_chain"]
        lines.append(f"{indent}  derived by measure {rec['derived_by']['measure']} of rule {d['rule']['id']}, from:")
        for cond in d["conditions"]:
            for inner in cond["records"]:
                lines.extend(_format_record(inner, indent + "    "))
    return lines
