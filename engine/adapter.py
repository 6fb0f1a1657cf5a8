"""The only door to durable-rules.

durable-rules is a C Rete engine with sharp edges (../shared/docs/durable-rules-notes.md).
This adapter is where each one is handled, so nothing else in jointcredit imports it:

- facts, never events: events are consumed and fire one rule only (#190);
- one fixed session id (`sid`) for every evaluation, facts retracted afterwards: a sid per
  subject leaks, and the 1025th live sid raises MemoryError for ever after;
- `delete_state` is never called: on a sid that only saw unmatched facts it kills the
  process with SIGSEGV;
- `assert_fact` one at a time, never the batch `assert_facts`, which silently drops most
  firings when any fact in the batch matches nothing;
- MessageNotHandledException for a fact no rule matches is not an error (#286);
- a ruleset name can be registered once only (#157, #121): names carry the rulebook
  revision, a name already registered is reused, and after enough retired revisions the
  Host is replaced so names and memory do not pile up while serving;
- the C core is not thread-safe (error 307, #291): one lock around every session;
- the action callback is told nothing about which rule fired (#356): each callback is
  built with its rule id bound in;
- `Host()` starts two self-rearming `threading.Timer` chains (queued-message and timer
  dispatch) that create a new thread for every ruleset every 0.2 s, for ever, even for a
  replaced Host. jointcredit asserts facts synchronously and posts nothing, so they do no
  work; in the server they cost ~10% of the CPU (thread starts and GIL hand-offs,
  measured with py-spy under load). `_QuietHost` does not start them.
- durable-rules' Python layer serialises every fact asserted and retracted, and every
  action's state, with the standard library's json (three calls per fact): it cost more
  than the C matching itself. Its module's `json` is pointed at engine/jsontext.py (orjson),
  which reads and writes the same JSON values.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import durable.engine as _durable

from . import jsontext
from .errors import EvaluationError
from .match_memo import MatchMemo, content_of, fields_read

__all__ = ["DurableRulesAdapter", "MatchSession", "Firing", "default_adapter", "EVALUATION_SID"]

EVALUATION_SID = "jc"
Firing = tuple[str, str, dict]  # (ruleset name, rule id, {alias: fact id})

# Retired rulesets kept before the Host is replaced (each costs ~9 MB of C memory).
RECYCLE_AFTER = 8


_durable.json = jsontext  # see the module docstring: same values, written and read by orjson


class _QuietHost(_durable.Host):
    """A Host without the background dispatch timers (see the module docstring)."""

    def _run(self) -> None:  # Host.__init__ calls this to start the timer chains
        pass


class MatchSession:
    """Facts asserted during one evaluation; everything asserted is retracted on close.

    A fact whose ruleset has seen the same sequence of values before is answered from the
    adapter's MatchMemo (engine/match_memo.py) and is not sent; it is kept, and sent before
    the next fact of its ruleset that the memo cannot answer, so that durable-rules always
    matches a fact against every fact before it."""

    def __init__(self, adapter: "DurableRulesAdapter"):
        self._adapter = adapter
        self._asserted: list[tuple[str, dict]] = []
        self._sequences: dict[str, tuple[tuple, list[str]] | None] = {}  # ruleset -> (memo key so far, fact ids)
        self._unsent: dict[str, list[dict]] = {}  # ruleset -> facts answered by the memo, not sent yet

    def assert_fact(self, ruleset: str, fact: dict) -> list[Firing]:
        """Assert one fact (it must carry a unique "id") and return the firings it caused."""
        adapter = self._adapter
        fact["sid"] = EVALUATION_SID
        memo, fields = adapter.memo, adapter._fields_read.get(ruleset)
        sequence = self._sequences.get(ruleset, ((ruleset,), []))
        if memo is None or fields is None or sequence is None:
            return self._send_unnamed(ruleset, fact)
        key, ids = (sequence[0], content_of(fact, fields)), sequence[1] + [fact["id"]]
        try:
            recalled = memo.recall(key, ids)
        except TypeError:  # a value that cannot be hashed
            return self._send_unnamed(ruleset, fact)
        self._sequences[ruleset] = (key, ids)
        if recalled is not None:
            self._unsent.setdefault(ruleset, []).append(fact)
            return [(ruleset, rule_id, bound) for rule_id, bound in recalled]
        self._send_unsent(ruleset)
        fired = self._send(ruleset, fact)
        memo.keep(key, ids, [(rule_id, bound) for _, rule_id, bound in fired])
        return fired

    def _send_unnamed(self, ruleset: str, fact: dict) -> list[Firing]:
        """Send `fact` straight to durable-rules; from here on this session's sequence for
        `ruleset` has no name the memo could know it by."""
        self._send_unsent(ruleset)
        self._sequences[ruleset] = None
        return self._send(ruleset, fact)

    def _send_unsent(self, ruleset: str) -> None:
        """Assert the facts the memo answered for `ruleset`; their firings were answered already."""
        for fact in self._unsent.pop(ruleset, ()):
            self._send(ruleset, fact)

    def _send(self, ruleset: str, fact: dict) -> list[Firing]:
        adapter = self._adapter
        buffer = adapter._buffer
        start = len(buffer)
        try:
            adapter._host.assert_fact(ruleset, fact)
        except _durable.MessageNotHandledException:
            pass  # no rule matched this fact: normal (#286)
        except Exception as exc:  # the C core reports everything else this way
            raise EvaluationError(f"durable-rules failed asserting {fact.get('id')!r} to {ruleset}: {exc}") from exc
        self._asserted.append((ruleset, fact))
        if adapter._callback_errors:
            problems, adapter._callback_errors[:] = list(adapter._callback_errors), []
            raise EvaluationError(f"a rule action failed, a firing would have been lost: {'; '.join(problems)}")
        fired = buffer[start:]
        del buffer[start:]
        return fired

    def close(self) -> None:
        host = self._adapter._host
        failure = None
        for ruleset, fact in reversed(self._asserted):
            try:
                host.retract_fact(ruleset, fact)
            except _durable.MessageNotHandledException:
                pass
            except Exception as exc:  # keep retracting the rest; report the first failure
                failure = failure or exc
        self._asserted.clear()
        self._unsent.clear()
        self._sequences.clear()
        self._adapter._buffer.clear()
        if failure is not None:
            self._adapter._poisoned = True
            raise EvaluationError(f"durable-rules failed retracting facts: {failure}")


class DurableRulesAdapter:
    """Registers compiled rulesets on a durable-rules Host and matches facts against them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._host = _QuietHost()
        self._specs: dict[str, dict] = {}  # live ruleset name -> durable JSON spec
        self._registered: set[str] = set()  # names on the current Host (live and retired)
        self._retired: set[str] = set()
        self._buffer: list[Firing] = []
        self._callback_errors: list[str] = []
        self._poisoned = False
        self.hosts_created = 1
        self.memo = MatchMemo()  # firings by fact values (engine/match_memo.py); None: always ask durable-rules
        self._fields_read: dict[str, frozenset[str] | None] = {}  # ruleset -> fields its rules read (match_memo)

    @property
    def live_rulesets(self) -> list[str]:
        return sorted(self._specs)

    def register(self, name: str, rules: dict[str, dict]) -> None:
        """Make ruleset `name` available. Registering a known name again is a no-op."""
        with self._lock:
            self._retired.discard(name)
            if name in self._registered:
                self._specs[name] = rules
                return
            self._specs[name] = rules
            self._fields_read[name] = fields_read(rules)
            self._set(name, rules)

    def retire(self, name: str) -> None:
        """`name` is no longer needed; its memory is reclaimed when the Host is next replaced."""
        with self._lock:
            if self._specs.pop(name, None) is not None:
                self._retired.add(name)
            if len(self._retired) >= RECYCLE_AFTER:
                self._recycle()

    def _set(self, name: str, rules: dict[str, dict]) -> None:
        definition = {rule_id: dict(spec, run=self._callback(name, rule_id)) for rule_id, spec in rules.items()}
        try:
            self._host.set_rulesets({name: definition})
        except Exception as exc:
            raise EvaluationError(f"durable-rules rejected ruleset {name}: {exc}") from exc
        self._registered.add(name)

    def _recycle(self) -> None:
        self._host = _QuietHost()
        self.hosts_created += 1
        self._registered = set()
        self._retired = set()
        self._poisoned = False
        self._fields_read = {name: fields for name, fields in self._fields_read.items() if name in self._specs}
        if self.memo is not None:  # what it remembers of retired rulesets would never be asked again
            self.memo.clear()
        for name, rules in self._specs.items():
            self._set(name, rules)

    def _callback(self, ruleset: str, rule_id: str) -> Callable:
        buffer_owner = self

        def fired(c) -> None:
            # durable-rules swallows exceptions raised in actions and loses the firing: catch
            # them here and let the session raise them instead.
            try:
                buffer_owner._buffer.append((ruleset, rule_id, {alias: fact["id"] for alias, fact in c._m.items()}))
            except Exception as exc:
                buffer_owner._callback_errors.append(f"{rule_id}: {exc!r}")

        return fired

    @contextmanager
    def session(self) -> Iterator[MatchSession]:
        """One evaluation's worth of facts, under the lock, always cleaned up."""
        with self._lock:
            if self._poisoned:  # a failed retract left facts behind: start from a clean Host
                self._recycle()
            session = MatchSession(self)
            try:
                yield session
            finally:
                session.close()


_default: DurableRulesAdapter | None = None
_default_lock = threading.Lock()


def default_adapter() -> DurableRulesAdapter:
    """The process-wide adapter: ruleset names are process-global in durable-rules."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DurableRulesAdapter()
        return _default
