"""Departments report back (反馈): what they did with each obligation, and what changed on their
worklist since they last looked.

An obligation is identified by its `obligation_key` (store/changefeed.py), which outlives the
rows re-materialisation rewrites; feedback is attached to the key, so it survives a record
push or a catalog publish. A department marks only obligations that fall to it.

The report counts, per department, the obligations in force on `as_of` (suspended incentives
are left out: there is nothing to apply): pending (no feedback yet; overdue ones included),
applied, not applicable, and overdue: pending more than OVERDUE_DAYS calendar days after the
obligation's valid_from.

Errors are ServiceError with codes: unknown_obligation, unknown_department (404),
not_your_obligation (403), invalid_feedback_state, missing_note, missing_actor,
invalid_timestamp, invalid_cursor (422).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import case, func, select

from .models import ObligationChange, ObligationFeedback, ObligationRow
from .repository import Repository, now_iso
from .service import Service, ServiceError

__all__ = ["Feedback", "FEEDBACK_STATES", "OVERDUE_DAYS"]

FEEDBACK_STATES = ("applied", "not_applicable")
# A department has 30 calendar days from the day an obligation takes effect to report on it.
# The plan asks for feedback without fixing a period; this is a setting, not a rule of law.
OVERDUE_DAYS = 30


def _since(value: str | None) -> str | None:
    """An ISO date or timestamp, as the UTC text the change feed stores (naive means UTC)."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ServiceError("invalid_timestamp", f"{value!r} is not an ISO 8601 date or timestamp",
                           errors=[{"field": "since", "value": value}])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class Feedback:
    """Feedback marks, the feedback report and the change feed, over a Service."""

    def __init__(self, service: Service):
        self.service = service
        self.engine = service.engine

    # -- marking -------------------------------------------------------------------------------
    def mark(self, key: str, department: str, state: str, note: str | None, by: str) -> dict:
        """`department` reports `state` (applied | not_applicable) for the obligation `key`."""
        self._check_department(department)
        if state not in FEEDBACK_STATES:
            raise ServiceError("invalid_feedback_state", f"feedback is {' or '.join(FEEDBACK_STATES)}, not {state!r}",
                               errors=[{"field": "state", "value": state, "allowed": list(FEEDBACK_STATES)}])
        note = note.strip() if isinstance(note, str) else ""
        if state == "not_applicable" and not note:
            raise ServiceError("missing_note", "say why the obligation does not apply",
                               errors=[{"field": "note"}])
        if not isinstance(by, str) or not by.strip():
            raise ServiceError("missing_actor", "`by` must name who reports", errors=[{"field": "by", "value": by}])
        with self.engine.connect() as c:
            owners = set(c.execute(select(ObligationRow.department).where(
                Repository.answering_now(),
                ObligationRow.obligation_key == key).distinct()).scalars())
        if not owners:
            raise ServiceError("unknown_obligation", f"no obligation with key {key!r}", status=404,
                               errors=[{"field": "key", "value": key}])
        if department not in owners:
            raise ServiceError("not_your_obligation", f"obligation {key} falls to {', '.join(sorted(owners))}, "
                               f"not to {department}", status=403,
                               errors=[{"field": "department", "value": department, "owners": sorted(owners)}])
        row = {"obligation_key": key, "department": department, "state": state, "note": note, "by": by.strip(),
               "at": now_iso()}
        with self.engine.begin() as c:
            row["id"] = c.execute(ObligationFeedback.__table__.insert().values(**row)).inserted_primary_key[0]
        return row

    def history(self, key: str) -> list[dict]:
        """Every mark on an obligation, oldest first."""
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(select(ObligationFeedback).where(
                ObligationFeedback.obligation_key == key).order_by(ObligationFeedback.id))]

    def latest(self, keys: list[str]) -> dict[str, dict]:
        """The current mark of each key that has one."""
        out: dict[str, dict] = {}
        with self.engine.connect() as c:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                newest = (select(func.max(ObligationFeedback.id)).where(ObligationFeedback.obligation_key.in_(chunk))
                          .group_by(ObligationFeedback.obligation_key))
                for r in c.execute(select(ObligationFeedback).where(ObligationFeedback.id.in_(newest))):
                    out[r.obligation_key] = {"state": r.state, "note": r.note, "by": r.by, "at": r.at,
                                             "department": r.department}
        return out

    # -- reading -------------------------------------------------------------------------------
    def worklist(self, department: str, as_of: str | None = None, limit: int = 1000, offset: int = 0,
                 *, overdue_days: int = OVERDUE_DAYS) -> dict:
        """A department's obligations in force on `as_of`, each with its feedback and whether it is overdue."""
        self._check_department(department)
        as_of = self.service.check_date(as_of)
        rows = self.service.repository.obligations_for_department(department, as_of, limit, offset)
        marks = self.latest(sorted({r["obligation_key"] for r in rows}))
        cutoff = (date.fromisoformat(as_of) - timedelta(days=overdue_days)).isoformat()
        for r in rows:
            mark = marks.get(r["obligation_key"])
            r["feedback"] = mark or {"state": "pending"}
            r["overdue"] = mark is None and r["status"] != "suspended" and r["valid_from"] < cutoff
        return {"department": department, "as_of": as_of, "obligations": rows, "limit": limit, "offset": offset}

    def report(self, as_of: str | None = None, *, overdue_days: int = OVERDUE_DAYS) -> dict:
        """Per department: obligations in force on `as_of` pending, applied, not applicable, overdue."""
        as_of = self.service.check_date(as_of)
        cutoff = (date.fromisoformat(as_of) - timedelta(days=overdue_days)).isoformat()
        newest = select(func.max(ObligationFeedback.id).label("id")).group_by(ObligationFeedback.obligation_key)
        marks = (select(ObligationFeedback.obligation_key, ObligationFeedback.state)
                 .where(ObligationFeedback.id.in_(newest)).subquery())
        late = case((ObligationRow.valid_from < cutoff, 1), else_=0)
        query = (select(ObligationRow.department, marks.c.state, func.count().label("n"), func.sum(late).label("late"))
                 .select_from(ObligationRow)
                 .outerjoin(marks, marks.c.obligation_key == ObligationRow.obligation_key)
                 .where(Repository.answering_now(),
                        Repository._in_force(as_of), ObligationRow.status != "suspended")
                 .group_by(ObligationRow.department, marks.c.state))
        counts: dict[str, dict] = {}
        with self.engine.connect() as c:
            for department, state, n, late_n in c.execute(query):
                item = counts.setdefault(department, {"pending": 0, "applied": 0, "not_applicable": 0, "overdue": 0,
                                                      "total": 0})
                item[state or "pending"] += n
                item["total"] += n
                if state is None:
                    item["overdue"] += int(late_n or 0)
        departments = self.service.vocab.departments
        return {"as_of": as_of, "overdue_after_days": overdue_days,
                "departments": [{"code": code, "name": departments[code].name if code in departments else code,
                                 **counts[code]} for code in sorted(counts)]}

    def changes(self, department: str, since: str | None = None, *, after: int | None = None,
                limit: int = 1000) -> dict:
        """Obligations of `department` added, lifted or changed after `since` (an ISO timestamp or
        date) and/or after the entry id `after`. Poll with the returned `next` cursor."""
        self._check_department(department)
        since = _since(since)
        if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
            raise ServiceError("invalid_cursor", f"`after` must be a non-negative entry id, not {after!r}",
                               errors=[{"field": "after", "value": after}])
        query = select(ObligationChange).where(ObligationChange.department == department, ObligationChange.at != "")
        if since is not None:
            query = query.where(ObligationChange.at > since)
        if after is not None:
            query = query.where(ObligationChange.id > after)
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(query.order_by(ObligationChange.id).limit(limit))]
        for r in rows:
            r.pop("generation", None)
        last = rows[-1] if rows else None
        return {"department": department, "since": since, "after": after, "changes": rows,
                "next": {"after": last["id"], "since": last["at"]} if last else {"after": after, "since": since}}

    def _check_department(self, department: str) -> None:
        self.service.check_department(department)
