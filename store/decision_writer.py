"""Group commit for the decision log: the checks waiting at one moment share one append.

Every eligibility answer must be in the hash-chained log before it is returned. One append
is a transaction of three statements, and on PostgreSQL a WAL flush; under load most of a
check's time would be spent on it, one check after the other, since the chain head is a
single row everybody locks. Here the entries queued while an append is under way are
appended together next, as consecutive links in one transaction (DecisionLog.append_many).
A check still gets its answer only after its entry is committed: nothing is acknowledged
that is not recorded. Alone, a check pays the same single append as before; at 8 in
flight, the writes of ~8 checks cost about one.

It all happens on the event loop (store/loop_access.py): on SQLite the append runs inline,
taking every entry queued during the loop's current pass; on a database server it is
awaited on asyncpg, and the checks answered meanwhile queue for the next append. No thread
is involved, and waiting for a commit holds none.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

__all__ = ["DecisionWriter"]

log = logging.getLogger("jointcredit.decisions")

Append = Callable[[list[tuple]], Awaitable[list[dict]]]


class DecisionWriter:
    """Appends queued decisions in batches of at most `max_batch` with `append` (a coroutine
    function: items -> stored entries), one batch at a time."""

    def __init__(self, append: Append, max_batch: int = 256):
        self._append_batch = append
        self.max_batch = max_batch
        self._pending: list[tuple[tuple, asyncio.Future]] = []
        self._flushing: asyncio.Task | None = None
        self.batches = self.entries = 0  # counters for the benchmark and the tests

    async def append(self, caller: str, request: dict, answer: dict, revisions: dict) -> dict:
        """Queue one entry and wait (without blocking the loop) until it is committed."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(((caller, request, answer, revisions), future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    async def close(self) -> None:
        """Write what is queued (the app's shutdown)."""
        if self._flushing is not None and not self._flushing.done():
            await self._flushing
        log.info("decision writer: %d entries in %d group commits", self.entries, self.batches)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            try:
                stored = await self._append_batch([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting check, which answers with an error
                log.exception("decision log append failed for %d entries", len(batch))
                for _, future in batch:
                    _settle(future, None, exc)
                continue
            self.batches += 1
            self.entries += len(batch)
            for (_, future), entry in zip(batch, stored):
                _settle(future, entry, None)


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.cancelled():  # the client went away; its entry is recorded all the same
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
