"""The shipped catalog: clean lint, passing rulebook tests, the codes other systems send,
every responsible unit of the seed plan, every seed domain covered."""
import re

import pytest

from catalog.vocabulary import load_vocabulary
from engine.lint import load_and_lint
from engine.resources import default_rulebook_dir
from engine.testing import run_rulebook_tests

from conftest import ROOT

REQUIRED_LISTS = ["tax.major_violation", "court.judgment_defaulter", "procurement.serious_violation",
                  "safety.dishonest", "environment.serious_violation", "statistics.serious_dishonest",
                  "construction.blacklist", "market.abnormal_operation", "market.serious_illegal",
                  "customs.advanced_certified", "market.contract_abiding"]
REQUIRED_ACTIVITIES = ["government_procurement", "public_bidding", "land_supply", "fiscal_funding", "bond_issuance",
                       "honours", "admin_licensing", "high_consumption", "senior_management"]
REQUIRED_RULEBOOKS = ["taxation", "courts", "procurement", "construction", "finance", "safety", "environment",
                      "statistics", "market_regulation", "ecommerce", "labour", "incentives"]
SEED = ROOT.parent / "shared" / "seed" / "000_891b566653e91ac6.txt"


def test_the_codes_other_systems_send_exist(vocab):
    assert set(REQUIRED_LISTS) <= set(vocab.lists)
    assert {vocab.lists[c].polarity for c in ("customs.advanced_certified", "market.contract_abiding")} == {"red"}
    assert vocab.schemes["tax.credit"].grades == ("A", "B", "M", "C", "D")
    assert vocab.schemes["tax.credit"].red == ("A",)
    assert set(REQUIRED_ACTIVITIES) <= set(vocab.activities)


@pytest.mark.skipif(not SEED.exists(), reason="the seed plan is in ../shared")
def test_every_responsible_unit_of_the_seed_plan_is_a_department(vocab):
    text = SEED.read_text(encoding="utf-8")
    units = set()
    for match in re.finditer(r"责任单位[:：](.*?)[)）〕]\s*$", text, re.M):
        for unit in re.split(r"[、,，]", match.group(1)):
            unit = unit.strip()
            if unit.startswith(("市", "人行", "达州检验")) and "各县" not in unit:
                units.add(unit.split("(")[0])
    names = {d.name for d in vocab.departments.values()} | {a for d in vocab.departments.values() for a in d.aliases}
    assert units, "the seed plan names no units?"
    assert sorted(units - names) == []


def test_the_2018_2019_reorganisations_are_followed(vocab):
    from datetime import date

    today = date(2025, 1, 1)
    final = {code: vocab.department_chain(code, today)[-1].code for code in
             ("state_tax", "local_tax", "aic", "quality", "food_drug", "safety", "environment", "pbc_dazhou")}
    assert final == {"state_tax": "tax", "local_tax": "tax", "aic": "market", "quality": "market",
                     "food_drug": "market", "safety": "emergency", "environment": "ecology",
                     "pbc_dazhou": "pbc_dazhou_branch"}


@pytest.fixture(scope="module")
def linted():
    return load_and_lint([str(default_rulebook_dir())], load_vocabulary())


def test_shipped_rulebooks_lint_clean(linted):
    _, diagnostics = linted
    assert [str(d) for d in diagnostics if d.severity == "error"] == []


def test_the_required_domains_have_rulebooks(linted):
    rulebooks, _ = linted
    assert set(REQUIRED_RULEBOOKS) <= {rb.name for rb in rulebooks}


def test_every_seed_domain_is_covered(linted, vocab):
    rulebooks, _ = linted
    covered = {item for rb in rulebooks for item in rb.covers}
    assert sorted(set(vocab.seed_domains) - covered) == []


def test_every_rulebook_has_tests_that_pass(shipped):
    outcomes = run_rulebook_tests(shipped)
    per_book = {name: 0 for name in shipped.rulebooks}
    for o in outcomes:
        per_book[o.rulebook] += 1
    assert all(count >= 3 for count in per_book.values()), per_book
    assert [f"{o.rulebook}: {o.name}: {o.failures}" for o in outcomes if not o.passed] == []


def test_every_punishment_cites_a_binding_basis(shipped):
    from catalog.vocabulary import BINDING_LEVELS

    for m in shipped.measures.values():
        if m.kind == "punishment":
            assert any(shipped.vocab.bases[b].level in BINDING_LEVELS for b in m.basis), m.id
