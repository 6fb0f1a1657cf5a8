"""Resolution: how actions that matched independently bear on each other.

- A subject with any punishment in force does not enjoy incentives (发改财金规〔2017〕1798号:
  "a subject with any untrustworthy record does not enjoy incentives"); the incentive is
  reported `suspended`, naming the punishments, not silently dropped, so the subject and
  the auditor can see it.
- An action supported only by disputed records is `disputed`: it still applies while the
  objection is examined, and says so.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .evaluator import Action

__all__ = ["resolve"]


def resolve(actions: list["Action"]) -> list["Action"]:
    punishments: dict[str, list[str]] = {}
    for action in actions:
        action.status = "disputed" if action.disputed else "active"
        if action.measure.kind == "punishment":
            punishments.setdefault(action.target_code, [])
            if action.measure.id not in punishments[action.target_code]:
                punishments[action.target_code].append(action.measure.id)
    for action in actions:
        if action.measure.kind == "reward" and action.target_code in punishments:
            action.status = "suspended"
            action.suspended_by = sorted(punishments[action.target_code])
    return actions
