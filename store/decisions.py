"""The decision log: every answer given to an outside system, append-only and hash-chained.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(id, seq, time, caller, request, answer, rulebook revisions). Changing, deleting or
reordering any entry breaks every link after it, and `verify` names the first broken one.
Entry ids are UUIDs of version 7 (RFC 9562: the time in milliseconds, then random bits), so
new ids go to the end of their unique index: with random (version 4) ids every entry dirtied a
random page of that index, which the next commit wrote to the WAL again (SQLite, 1M-subject
store, 8 checks in flight: 6.9 pwrite and 3.6 pread calls a check, against 3.7 and 0.3 with
this and the loop's own connection for appends, see append_many).
Appends take the single chain-head row's lock first, so several workers (or processes on one
SQLite file) extend the chain strictly in turn.
"""
from __future__ import annotations

import functools
import hashlib
import json
import operator

from sqlalchemy import Engine, select
from uuid_utils import uuid7

from .driver import driver_cursor, own_cursor, param_mark
from .models import ChainHead, Decision
from .repository import now_iso

__all__ = ["GENESIS", "DecisionLog", "entry_hash"]

GENESIS = "0" * 64


# json.dumps with any option builds a new JSONEncoder per call: a third of the JSON time of an
# entry spelt in six calls. One encoder, made once, writes the same text.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def canonical(value) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 as is."""
    return _CANONICAL.encode(value)


# What _CANONICAL.encode does with a str (JSONEncoder.encode with ensure_ascii=False), without
# the call through encode: the entry's id, time and caller are strings, spelt per entry.
_spell_str = json.encoder.encode_basestring


def entry_hash(prev_hash: str, entry: dict) -> str:
    return _digest(prev_hash, canonical(entry))


def _digest(prev_hash: str, canonical_entry: str) -> str:
    return hashlib.sha256((prev_hash + canonical_entry).encode("utf-8")).hexdigest()


# An entry's fields, in the order canonical() writes them (sorted), and the entry's text with a
# slot for each field's own canonical JSON.
_ENTRY_FIELDS = tuple(sorted(("id", "seq", "created_at", "caller", "request", "answer", "revisions")))
_ENTRY_TEXT = "{" + ",".join(f'"{field}":%s' for field in _ENTRY_FIELDS) + "}"
_entry_parts = operator.itemgetter(*_ENTRY_FIELDS)


def _canonical_entry(parts: dict[str, str]) -> str:
    """canonical(entry) assembled from its fields' canonical JSON (`parts`, one for each of
    _ENTRY_FIELDS), each serialised once: the same text, since canonical() sorts keys and the
    fields are joined here in that order."""
    return _ENTRY_TEXT % _entry_parts(parts)


# The UPDATE ... RETURNING takes the write lock (row lock on PostgreSQL, database lock on SQLite)
# before the head is read, so no two appends can chain onto the same predecessor.
_TAKE_HEAD = "UPDATE chain_head SET seq = seq + {mark} WHERE id = 1 RETURNING seq, hash"
_MOVE_HEAD = "UPDATE chain_head SET hash = {mark} WHERE id = 1"


@functools.cache  # built once per placeholder style, not on every append
def _insert_sql(mark: str) -> str:
    json_mark = mark if mark == "?" else f"{mark}::json"
    return ("INSERT INTO decisions (seq, id, created_at, caller, request, answer, revisions, prev_hash, hash) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {json_mark}, {json_mark}, {json_mark}, {mark}, {mark})")


# The asyncpg appends (PostgreSQL placeholders): the columns arrive as one array each.
_UNNEST = ("INSERT INTO decisions (seq, id, created_at, caller, request, answer, revisions, prev_hash, hash) "
           "SELECT * FROM unnest(${}::integer[], ${}::text[], ${}::text[], ${}::text[], ${}::json[], ${}::json[], "
           "${}::json[], ${}::text[], ${}::text[])")
_INSERT_UNNEST = _UNNEST.format(*range(1, 10))
_APPEND_AFTER = ("WITH head AS (UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4 "
                 "RETURNING 1) " + _UNNEST.format(*range(5, 14)) + " WHERE EXISTS (SELECT 1 FROM head)")


def _links(items: list[tuple[str, dict, dict, dict]], head) -> tuple[list[tuple], list[dict]]:
    """The rows to insert and the entries to return for `items`, chained after `head`: the chain
    head's (seq, hash) as _TAKE_HEAD returned it, its seq already advanced past the items."""
    if head is None:  # the migration creates the genesis head; its absence is corruption
        raise RuntimeError("the decision log has no chain head: was the database migrated?")
    last_seq, prev_hash = head
    created_at = now_iso()
    spelt_time = _spell_str(created_at)
    rows, stored = [], []
    spelt: dict[int, str] = {}  # the revisions of one era are one dict: serialise it once
    for seq, (caller, request, answer, revisions) in enumerate(items, start=last_seq - len(items) + 1):
        entry = {"id": str(uuid7()), "seq": seq, "created_at": created_at, "caller": caller,
                 "request": request, "answer": answer, "revisions": revisions}
        if id(revisions) not in spelt:
            spelt[id(revisions)] = canonical(revisions)
        parts = {"id": _spell_str(entry["id"]), "seq": str(seq), "created_at": spelt_time,
                 "caller": _spell_str(caller) if type(caller) is str else canonical(caller),
                 "request": canonical(request), "answer": canonical(answer), "revisions": spelt[id(revisions)]}
        digest = _digest(prev_hash, _canonical_entry(parts))
        rows.append((seq, entry["id"], created_at, caller, parts["request"], parts["answer"], parts["revisions"],
                     prev_hash, digest))
        stored.append({**entry, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows, stored


def _body(d) -> dict:
    return {"id": d.id, "seq": d.seq, "created_at": d.created_at, "caller": d.caller, "request": d.request,
            "answer": d.answer, "revisions": d.revisions}


class DecisionLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def append(self, caller: str, request: dict, answer: dict, revisions: dict) -> dict:
        """Record one answer; returns the stored entry with its id and hash."""
        return self.append_many([(caller, request, answer, revisions)])[0]

    def append_many(self, items: list[tuple[str, dict, dict, dict]], *, own_connection: bool = False) -> list[dict]:
        """Record several answers (caller, request, answer, revisions) as consecutive links, in one
        transaction; returns the stored entries in the same order.

        Every check pays for this, so it is three driver-level statements whatever the count
        (through SQLAlchemy's Core one append cost ~560 µs, on the DB-API ~100 µs; the group commit in
        store/decision_writer.py shares these three among all the checks waiting at once). The
        head is taken (locked) first, so appends of several workers or processes chain in turn.

        `own_connection` (SQLite): on this thread's own connection (driver.own_cursor), the one
        its reads use, not a pooled one; the event loop's appends, so that they do not empty its
        read connection's page cache every few milliseconds.
        """
        if not items:
            return []
        mark = param_mark(self.engine)
        with (own_cursor if own_connection else driver_cursor)(self.engine) as cursor:
            cursor.execute(_TAKE_HEAD.format(mark=mark), (len(items),))
            head = cursor.fetchone()
            rows, stored = _links(items, head)
            cursor.executemany(_insert_sql(mark), rows)
            cursor.execute(_MOVE_HEAD.format(mark=mark), (stored[-1]["hash"],))
            cursor.connection.commit()
        return stored

    async def append_after_async(self, connection, items: list[tuple[str, dict, dict, dict]],
                                 head: tuple[int, str]) -> list[dict] | None:
        """append_many on an asyncpg connection in autocommit, as ONE statement: the entries are
        chained after `head` (where this writer's own last append left the chain), and inserted
        only if the chain head is still that, moving it in the same statement. None, with nothing
        written, if another writer moved the head meanwhile (then append_locked_async). Under
        READ COMMITTED a concurrent update of the head row re-checks the condition on the row
        it committed, so two appends can never chain onto the same predecessor. One round trip
        and one commit per group, against five for append_many's transaction."""
        rows, stored = _links(items, (head[0] + len(items), head[1]))
        status = await connection.execute(_APPEND_AFTER, stored[-1]["seq"], stored[-1]["hash"], head[0], head[1],
                                          *map(list, zip(*rows)))
        return stored if int(status.rsplit(" ", 1)[-1]) == len(items) else None

    async def append_locked_async(self, connection, items: list[tuple[str, dict, dict, dict]]) -> list[dict]:
        """append_many's transaction on an asyncpg connection: the head is taken (locked) first,
        so it cannot lose a race; for a writer that does not know the head, or lost one."""
        async with connection.transaction():
            head = await connection.fetchrow(_TAKE_HEAD.format(mark="$1"), len(items))
            rows, stored = _links(items, head)
            await connection.execute(_INSERT_UNNEST, *map(list, zip(*rows)))
            await connection.execute(_MOVE_HEAD.format(mark="$1"), stored[-1]["hash"])
        return stored

    def get(self, decision_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(Decision).where(Decision.id == decision_id)).first()
        return None if row is None else {**_body(row), "prev_hash": row.prev_hash, "hash": row.hash}

    def verify(self, batch: int = 10_000) -> dict:
        """Walk the chain from the start; report the first entry whose link or hash is wrong."""
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        last_seq = 0
        while True:
            with self.engine.connect() as c:
                rows = c.execute(select(Decision).where(Decision.seq > last_seq).order_by(Decision.seq).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                problem = None
                if row.seq != expected_seq:
                    problem = f"entry {expected_seq} is missing (next is {row.seq})"
                elif row.prev_hash != expected_prev:
                    problem = "prev_hash does not match the previous entry's hash"
                elif entry_hash(row.prev_hash, _body(row)) != row.hash:
                    problem = "the entry's content does not match its hash"
                if problem:
                    return {"ok": False, "checked": checked, "broken_at": {"seq": row.seq, "id": row.id, "problem": problem}}
                expected_prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
            last_seq = rows[-1].seq
        with self.engine.connect() as c:
            head = c.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).first()
        if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
            return {"ok": False, "checked": checked,
                    "broken_at": {"seq": expected_seq, "id": None, "problem": "entries after this point were removed"}}
        return {"ok": True, "checked": checked, "broken_at": None}
