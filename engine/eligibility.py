"""The eligibility answer, read off materialised obligations (no rule runs at check time).

A subject is ineligible for an activity when an obligation in force on `as_of` denies or
restricts it; stricter review or extra inspections are reported but do not bar it.
Incentives for the activity are listed with their status (a suspended incentive says which
punishment suspended it). For a consortium (联合体), one restricted member makes the whole
consortium ineligible, and the answer names the member and the reasons.
"""
from __future__ import annotations

from catalog.vocabulary import Vocabulary

__all__ = ["BARRING_EFFECTS", "eligibility_answer", "consortium_answer"]

BARRING_EFFECTS = frozenset({"deny", "restrict"})


def _item(obligation: dict, effect: str, vocab: Vocabulary) -> dict:
    provenance = obligation["provenance"]
    return {
        "measure": obligation["measure"],
        "department": {"code": obligation["department"], "name": obligation["department_name"]},
        "effect": effect,
        "rule": obligation["rule"],
        "basis": [vocab.bases[b].to_dict() if b in vocab.bases else {"id": b} for b in provenance.get("basis", [])],
        "records": [{k: r.get(k) for k in ("id", "list", "document", "listed_on")} | (
            {"decided_on": r["decided_on"]} if "decided_on" in r else {}) for r in provenance.get("records", [])],
        "valid_from": obligation["valid_from"],
        "valid_until": obligation["valid_until"],
        "disputed": obligation["status"] == "disputed",
        "source_subject": obligation["source_subject"],
        "relation": obligation["target_relation"] or "subject",
    }


def eligibility_answer(subject: str, activity: str, as_of: str, known: bool, obligations: list[dict],
                       vocab: Vocabulary) -> dict:
    restrictions, incentives = [], []
    for o in obligations:
        for effect in o["effects"]:
            if effect["activity"] != activity:
                continue
            item = _item(o, effect["effect"], vocab)
            if o["kind"] == "punishment":
                restrictions.append(item)
            else:
                item["status"] = o["status"]
                item["suspended_by"] = o["provenance"].get("suspended_by", [])
                incentives.append(item)
    eligible = not any(r["effect"] in BARRING_EFFECTS for r in restrictions)
    return {"subject": subject, "activity": activity, "as_of": as_of, "eligible": eligible, "known": known,
            "restrictions": restrictions, "incentives": incentives}


def consortium_answer(answers: list[dict]) -> dict:
    barred = [{"subject": a["subject"], "restrictions": [r for r in a["restrictions"] if r["effect"] in BARRING_EFFECTS]}
              for a in answers if not a["eligible"]]
    return {"eligible": not barred, "restricted_members": barred}
