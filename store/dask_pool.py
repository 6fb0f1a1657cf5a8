"""Materialising on a Dask cluster (`distributed`): a full rebuild spread over many machines.

The same interface as store/pool.py's RulePool. Each Dask worker compiles a catalog history
once (durable-rules rulesets cannot be shipped) and keeps it, keyed by a digest of its
rulebook texts, for every later task of the same rebuild; the texts go to the workers once
(`scatter`, broadcast). Rows go out and Materialised rows come back as plain tuples, as with
the local pool. Workers need jointcredit installed (the same version as the server): they
import this module to run `_work`.

`address`: a scheduler (`tcp://host:8786`, started with `dask scheduler`, workers with `dask
worker tcp://host:8786 --nthreads 1`), or "local" for a LocalCluster of one process per CPU on
this machine. durable-rules is not thread-safe (engine/adapter.py holds a lock around it), so
threads beyond one per worker process only wait.
"""
from __future__ import annotations

import hashlib
import json

from .history import CatalogHistory
from .pool import EraTexts, compile_history, cpus, era_texts
from .repository import BundleRows, bundle_of
from .rows import Materialised, materialise

__all__ = ["DaskPool"]

_compiled: dict[str, CatalogHistory] = {}  # in a worker: digest of the eras' texts -> history


def _work(digest: str, eras: EraTexts, rows: list[BundleRows]) -> list[Materialised]:
    history = _compiled.get(digest)
    if history is None:
        _compiled.clear()  # one catalog at a time: an old one's rulesets are not needed again
        history = _compiled[digest] = compile_history(eras)
    return [materialise(history, bundle_of(r)) for r in rows]


class _Gathered:
    """The parts' results joined in order, when asked (what RulePool's futures give)."""

    def __init__(self, client, parts: list):
        self._client, self._parts = client, parts

    def result(self) -> list[Materialised]:
        return [m for part in self._client.gather(self._parts) for m in part]


class DaskPool:
    """Tasks on a Dask cluster; `submit` splits the rows among its workers, keeping their order."""

    def __init__(self, history: CatalogHistory, address: str):
        from distributed import Client, LocalCluster

        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(n_workers=cpus(), threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            self._client = Client(address)
        eras = era_texts(history)
        self._digest = hashlib.sha256(json.dumps(eras, sort_keys=True).encode()).hexdigest()
        [self._eras] = self._client.scatter([eras], broadcast=True)
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def submit(self, rows: list[BundleRows]) -> _Gathered:
        size = -(-len(rows) // self.workers) or 1
        parts = [self._client.submit(_work, self._digest, self._eras, rows[i:i + size], pure=False)
                 for i in range(0, len(rows), size)]
        return _Gathered(self._client, parts)

    def close(self, *, cancel: bool = False) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
