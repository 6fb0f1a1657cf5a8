"""The plain durable-rules baseline the benchmark compares jointcredit against.

ONE hand-written durable-rules ruleset in the JSON/dict form, with a rule per list or grade
roughly equivalent to what the shipped rulebooks express:

- one rule per black list (an entry in force and listed within the list's publication
  maximum), and for the tax, court and safety lists a second rule joining the entry to the
  subject's legal representative (and financial officer / principal) relation;
- a rule for tax credit grade D and one for grade A (the subject's latest rating, within
  the two-year validity);
- one rule per red list (customs advanced certification, 守合同重信用);
- rules for serious penalties within three years and general ones within a year (an
  untrustworthy record, which suspends incentives).

Every record of a subject is asserted as a fact, one at a time, under one fixed sid
(durable-rules' batch assert silently drops actions, and more than 1024 live sids raise
MemoryError); unmatched facts raise MessageNotHandledException, which is caught. After the
subject, every asserted fact is retracted. Whether a record is in force (status, status_on,
expires_on or the list's default term) and which rating is the latest are computed in
Python, minimally: durable-rules sees `live` and `latest` flags and compares the ISO dates
itself, with the operator outside the field (`{"$gte": {"listed_on": "2022-06-30"}}`).

Traps checked while writing this (durable-rules 2.0.28, Python 3.11):
- an exception inside a rule action is swallowed without a word: the action just stops;
  the other actions still run. Actions here only append to a list.
- the operator-inside spelling `{"listed_on": {"$gte": "..."}}` is accepted and matches
  EVERY fact that has the other fields (the comparison is ignored), so a wrong spelling
  shows up as too many firings, not too few. `selftest()` guards against both.

    python -m bench.baseline          # self-test: facts that must and must not fire
"""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from durable.engine import Host, MessageNotHandledException

__all__ = ["BLACK_RULES", "RED_RULES", "Baseline", "build_ruleset", "selftest"]

# list -> (publication maximum in years, default term in years or None, persons joined)
BLACK_RULES = {
    "tax.major_violation": (3, None, ("legal_representative", "financial_officer")),
    "court.judgment_defaulter": (5, 2, ("legal_representative",)),
    "procurement.serious_violation": (3, 3, ()),
    "safety.dishonest": (3, 1, ("legal_representative", "principal")),
    "environment.serious_violation": (3, None, ()),
    "statistics.serious_dishonest": (3, 1, ()),
    "construction.blacklist": (3, 1, ()),
    "market.serious_illegal": (3, 3, ()),
    "labour.wage_arrears": (3, 3, ()),
    "ecommerce.serious_dishonest": (3, 3, ()),
}
RED_RULES = {
    "customs.advanced_certified": (3, 3),
    "market.contract_abiding": (2, 2),
}
# Lists no rule here reads still need a default term to decide `live`.
_OTHER_TERMS = {"market.abnormal_operation": None, "derived.untrustworthy": None}
_DEFAULT_TERM = {k: v[1] for k, v in BLACK_RULES.items()} | {k: v[1] for k, v in RED_RULES.items()} | _OTHER_TERMS
_LIVE_STATUSES = frozenset(("active", "disputed"))
RATING_VALIDITY_YEARS = 2
SID = "baseline"


def _years_before(day: date, years: int) -> str:
    try:
        return day.replace(year=day.year - years).isoformat()
    except ValueError:
        return day.replace(year=day.year - years, day=28).isoformat()


def _years_after(text: str, years: int) -> str:
    y = int(text[:4]) + years
    rest = text[4:]
    if rest == "-02-29":
        rest = "-02-28"
    return f"{y:04d}{rest}"


def build_ruleset(as_of: date, action) -> dict:
    """The ruleset definition (fresh dicts: durable-rules deletes 'run' from them).

    `action(rule_id)` returns the callable bound to that rule: durable-rules does not tell
    an action which rule fired."""
    rules: dict[str, dict] = {}

    def entry(lst: str, years: int) -> dict:
        return {"$and": [{"kind": "list_entry"}, {"list": lst}, {"live": 1},
                         {"$gte": {"listed_on": _years_before(as_of, years)}}]}

    for lst, (years, _, persons) in BLACK_RULES.items():
        rules[f"black.{lst}"] = {"all": [{"e": entry(lst, years)}], "run": action(f"black.{lst}")}
        if persons:
            rel = {"$and": [{"kind": "relation"}, {"live": 1},
                            {"$or": [{"type": t} for t in persons]}]}
            rules[f"black.{lst}.persons"] = {"all": [{"e": entry(lst, years)}, {"r": rel}],
                                             "run": action(f"black.{lst}.persons")}
    for lst, (years, _) in RED_RULES.items():
        rules[f"red.{lst}"] = {"all": [{"e": entry(lst, years)}], "run": action(f"red.{lst}")}
    validity = _years_before(as_of, RATING_VALIDITY_YEARS)
    for grade, polarity in (("A", "red"), ("D", "black")):
        rules[f"{polarity}.tax.credit.{grade}"] = {
            "all": [{"e": {"$and": [{"kind": "rating"}, {"scheme": "tax.credit"}, {"grade": grade},
                                    {"latest": 1}, {"$gte": {"decided_on": validity}}]}}],
            "run": action(f"{polarity}.tax.credit.{grade}")}
    for severity, years in (("serious", 3), ("general", 1)):
        rules[f"black.penalty.{severity}"] = {
            "all": [{"e": {"$and": [{"kind": "penalty"}, {"severity": severity}, {"live": 1},
                                    {"$gte": {"decided_on": _years_before(as_of, years)}}]}}],
            "run": action(f"black.penalty.{severity}")}
    return rules


class Baseline:
    """One durable-rules Host with the baseline ruleset, evaluating subjects one at a time."""

    _names = itertools.count(1)

    def __init__(self, as_of: date):
        self.as_of = as_of
        self.as_of_text = as_of.isoformat()
        self.name = f"baseline_{next(self._names)}"  # a ruleset name can be registered once
        self._fired: list[str] = []
        fired = self._fired

        append = fired.append

        def action(rule_id: str):
            def run(c):  # durable-rules checks the arity: one argument, no defaults
                append(rule_id)
            return run

        self.host = Host()
        self.host.set_rulesets({self.name: build_ruleset(as_of, action)})
        self.rule_count = len(build_ruleset(as_of, action))

    def _facts(self, bundle: dict) -> list[dict]:
        """The subject's records as facts, with `live`/`latest` worked out in Python."""
        as_of = self.as_of_text
        code = bundle["subject"]["code"]
        latest: dict[str, str] = {}
        for rec in bundle.get("records", ()):
            if rec["kind"] == "rating":
                day = rec.get("decided_on", "")
                if day <= as_of and day > latest.get(rec.get("scheme"), ""):
                    latest[rec.get("scheme")] = day
        facts = []
        for rec in bundle.get("records", ()):
            kind = rec["kind"]
            start = rec.get("listed_on") or rec.get("decided_on") or ""
            status = rec.get("status", "active")
            live = start <= as_of and (status in _LIVE_STATUSES
                                       or (rec.get("status_on") or "9999") > as_of)
            if live and kind == "list_entry":
                ends = rec.get("expires_on")
                if not ends:
                    term = _DEFAULT_TERM.get(rec.get("list"))
                    ends = _years_after(start, term) if term else None
                live = ends is None or ends > as_of
            fact = dict(rec)
            fact["sid"] = SID
            fact["subject"] = code
            fact["live"] = 1 if live else 0
            if kind == "rating":
                fact["latest"] = 1 if latest.get(rec.get("scheme")) == start else 0
            facts.append(fact)
        return facts

    def evaluate(self, bundle: dict) -> list[str]:
        """The rule ids that fired for this subject (one per firing, in firing order)."""
        name = self.name
        host = self.host
        fired = self._fired
        fired.clear()
        facts = self._facts(bundle)
        for fact in facts:
            try:
                host.assert_fact(name, fact)
            except MessageNotHandledException:
                pass
        for fact in facts:
            try:
                host.retract_fact(name, fact)
            except MessageNotHandledException:
                pass
        return list(fired)

    @staticmethod
    def incentive_suspended(fired: list[str]) -> bool:
        """A red firing is not enjoyed when any black firing exists for the same subject."""
        red = black = False
        for rule in fired:
            if rule.startswith("red."):
                red = True
            else:
                black = True
        return red and black


def selftest() -> None:
    """Facts that must fire and facts that must not; raises AssertionError otherwise."""
    from engine.codes import citizen_id_check_char, uscc_check_char

    as_of = date(2025, 6, 30)
    base = Baseline(as_of)
    company = "9151170012345678" + "9"
    company += uscc_check_char(company)
    person = "51170219800101001"
    person += citizen_id_check_char(person)

    def bundle(*records):
        return {"subject": {"code": company, "kind": "legal_person", "name": "测试公司"},
                "records": [dict(r, id=f"T{i}") for i, r in enumerate(records)]}

    le = {"kind": "list_entry", "list": "tax.major_violation", "status": "active",
          "listed_on": "2025-01-10", "department": "tax"}
    rel = {"kind": "relation", "type": "legal_representative", "other": person,
           "listed_on": "2015-01-01", "status": "active"}
    cases = [
        (bundle(le), ["black.tax.major_violation"]),
        (bundle(le, rel), ["black.tax.major_violation", "black.tax.major_violation.persons"]),
        (bundle(dict(le, listed_on="2021-01-10")), []),                       # outside P3Y
        (bundle(dict(le, status="repaired", status_on="2025-03-01")), []),
        (bundle(dict(le, status="disputed")), ["black.tax.major_violation"]),
        (bundle(dict(le, list="court.judgment_defaulter", listed_on="2023-01-10")), []),  # default term P2Y
        (bundle(dict(le, list="court.judgment_defaulter", listed_on="2023-01-10", expires_on="2026-01-10")),
         ["black.court.judgment_defaulter"]),
        (bundle({"kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2025-04-20",
                 "status": "active"}), ["red.tax.credit.A"]),
        (bundle({"kind": "rating", "scheme": "tax.credit", "grade": "A", "decided_on": "2024-04-20",
                 "status": "active"},
                {"kind": "rating", "scheme": "tax.credit", "grade": "B", "decided_on": "2025-04-20",
                 "status": "active"}), []),                                    # superseded
        (bundle({"kind": "penalty", "severity": "general", "decided_on": "2023-06-01", "status": "active"}), []),
        (bundle({"kind": "penalty", "severity": "serious", "decided_on": "2023-06-01", "status": "active"}),
         ["black.penalty.serious"]),
        (bundle(rel), []),
    ]
    for number, (b, expected) in enumerate(cases):
        # Run each case twice: retraction must leave nothing behind for the next subject.
        for _ in range(2):
            got = sorted(base.evaluate(b))
            assert got == sorted(expected), f"case {number}: expected {expected}, fired {got}"
    assert base.host.get_facts(base.name, SID) == [], "facts left behind after retraction"


if __name__ == "__main__":
    selftest()
    print("baseline self-test passed")
