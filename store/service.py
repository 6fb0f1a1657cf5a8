"""The service the API and the CLI share: one store, one compiled catalog, one evaluator.

Handlers stay thin: they validate input, call one method here, and map errors to HTTP.
"""
from __future__ import annotations

import functools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from anyio import to_thread

import engine
from engine.bundle import Bundle
from engine.codes import code_kind
from engine.dates import date_problem
from engine.eligibility import consortium_answer, eligibility_answer
from engine.errors import JointCreditError
from catalog.vocabulary import load_vocabulary
from engine.loader import revision_of
from engine.resources import default_rulebook_dir

from .affected import affected_subjects
from .catalog_watch import CatalogWatcher
from .checkpointer import WalCheckpointer
from .cluster_lock import ClusterLock
from .db import make_engine, migrate, restore_indexes
from .driver import apart, beside, close_readers
from .decision_writer import DecisionWriter
from .decisions import DecisionLog
from .loop_access import loop_access
from .keys import KeyStore, Principal
from .materialise import Materialiser
from .pool import InlinePool, Pool, RulePool, cpus
from .history import BEGINNING, CatalogHistory
from .repository import CheckRead, Repository, now_iso
from .rebuilds import RebuildLog
from .rulebook_store import RulebookStore
from .settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Service", "ServiceError", "KeyedCheck", "Publication"]

DEMO = Path(__file__).resolve().parent.parent / "demo" / "bundles.jsonl"
_GENERATIONS_KEPT = 2  # catalogs kept: a check read just before a switch still reports its own revisions
_BATCH_TRIES = 3
REBUILD_POOL_MIN = 20_000  # subjects from which a rebuild runs its rules in worker processes
# a change affecting more than this share of the subjects rewrites everyone (a full rebuild)
FULL_REBUILD_SHARE = 0.5


class ServiceError(JointCreditError):
    """Bad input to the service, with a stable code the API maps to a 4xx status."""

    def __init__(self, code: str, message: str, *, status: int = 422, errors: list | None = None):
        super().__init__(message, code=code)
        self.status = status
        self.errors = errors or []

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": self.errors}


@dataclass(frozen=True)
class Publication:
    """A publication about to be put in force (Service.put_in_force); stamped when made, so
    that the catalog compiled before the switch orders it exactly as the database will."""

    name: str
    text: str
    effective_from: str
    actor: str
    comment: str
    action: str = "publish"  # publish | rollback | load
    source: str = "api"
    published_at: str = field(default_factory=now_iso)


def all_problems(problems: list[ServiceError]) -> ServiceError:
    """Every problem of one request as one error, so that a caller can mend them all at once:
    the first problem's code and status (subject, then activity, then date), the messages
    joined, and every field error marked with its own problem's code."""
    first = problems[0]
    return ServiceError(first.code, "; ".join(p.message for p in problems), status=first.status,
                        errors=[{"code": p.code, **e} for p in problems for e in p.errors])


def _problems(*checks: tuple) -> list[ServiceError]:
    """The ServiceErrors that the checks (check, value) raise, in order."""
    found = []
    for check, value in checks:
        try:
            check(value)
        except ServiceError as problem:
            found.append(problem)
    return found


@dataclass
class KeyedCheck:
    """What Service.keyed_check found: the key's principal (None: unknown or revoked), and either
    the answer with the revisions it used, or the problem with the question."""

    principal: Principal | None
    answer: tuple[dict, dict] | None
    problem: ServiceError | None


@dataclass
class Service:
    settings: Settings

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.database_url, background_checkpoints=True)
        self.checkpointer = WalCheckpointer(self.engine).start() if self.engine.dialect.name == "sqlite" else None
        # Serialises everything that re-materialises obligations (record pushes, lifecycle
        # decisions, imports, publishes) across every process over this database.
        self.cluster_lock = ClusterLock(self.engine, self.settings.write_wait)
        self.history: CatalogHistory | None = None  # the catalog of the newest generation this process knows
        self._histories: dict[int, CatalogHistory] = {}  # generation -> its catalog (the newest few)
        self._generation: int | None = None
        self._reload_lock = threading.Lock()  # one compile at a time in this process (a cache fill, not a write)
        self._era_cache: dict = {}
        self._today = None  # (day, history, catalog): see `catalog`
        self.watcher: CatalogWatcher | None = None
        # two workers starting on a new database; or one starting while another publishes
        with self.cluster_lock.hold("starting the service", bounded=False):
            migrate(self.engine)
            restored = restore_indexes(self.engine)
            if restored:
                log.warning("built the indexes a killed import left missing: %s", ", ".join(restored))
            self.repository = Repository(self.engine)
            self.decisions = DecisionLog(self.engine)
            # The event loop's reads and log appends: inline on SQLite, asyncpg on a database server.
            self.loop_access = loop_access(self.engine)
            self.decision_writer = DecisionWriter(lambda items: self.loop_access.append_decisions(self.decisions, items))
            self.keys = KeyStore(self.engine)
            self.rulebook_store = RulebookStore(self.engine)
            self.rebuilds = RebuildLog(self.engine)
            abandoned = self.rebuilds.abandon_running()  # under the lock: none can be running
            self.repository.discard_unswitched()  # and undo what they wrote
            if abandoned:
                log.warning("%d rebuild(s) were stopped half-way (their process died); the generation before "
                            "each stayed in force", abandoned)
            self.refresh_if_stale()
            self.sync_rulebooks_from_disk()

    def watch_catalog(self) -> None:
        """Compile another process's publication as soon as it commits (store/catalog_watch.py),
        so that the first check after it does not wait for the compile. Checks are right
        without it: each reads the generation it answers from (Repository.check_reads)."""
        if self.watcher is None:
            self.watcher = CatalogWatcher(self).start()

    async def close_loop_access(self) -> None:
        """On the event loop that served the checks, before close(): write the decisions still
        queued, then close that loop's connections."""
        await self.decision_writer.close()
        await self.loop_access.close()

    def close(self) -> None:
        """Release the database connections (after close_loop_access, where a loop served checks)."""
        if self.watcher is not None:
            self.watcher.stop()
        self.loop_access.terminate()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        close_readers(self.engine)
        self.engine.dispose()

    # -- the catalog over time: a cache of the database ------------------------------------------
    # Each process compiles the publications in force into a CatalogHistory. The database is the
    # truth: publications are written only in the transaction that switches the generation of
    # obligations built with them (put_in_force), so the generation number says which catalog
    # is current, and a process that sees a generation it has not compiled loads it.
    def sync_rulebooks_from_disk(self) -> bool:
        """Publish rulebooks from disk whose revision the store has never seen (people who keep
        rulebooks in git). The first load is in force from the beginning; later ones from today.
        Under the cluster lock: of several processes starting at once, one publishes them."""
        directory = self.settings.rulebooks or str(default_rulebook_dir())
        on_disk = engine.compile_rulebooks([directory])  # lint errors stop start-up, with every message
        with self.writing("loading rulebooks from disk"):
            known = self.rulebook_store.known_revisions()
            first = not self.rulebook_store.publications()
            effective_from = BEGINNING if first else date.today().isoformat()
            new = [Publication(name, rulebook.text, effective_from, actor="system",
                               comment=f"loaded from {rulebook.path}", action="load", source="disk")
                   for name, rulebook in sorted(on_disk.rulebooks.items()) if (name, rulebook.revision) not in known]
            if new:
                self.put_in_force(new)
        return bool(new)

    def put_in_force(self, new: list["Publication"]) -> dict:
        """Put publications in force: the subjects they can affect (store/affected.py; every
        subject when most are, or when nothing was in force before) re-materialised under the
        catalog with them into a new generation, which is switched to in the same transaction
        that writes the publications; every other subject's rows stay as they are. The caller
        holds the cluster lock and has checked them (tests, dates). The rebuild's progress goes
        to the rebuilds' log (store/rebuilds.py); returns its entry once done."""
        if not self.cluster_lock.held:
            raise RuntimeError("put_in_force needs the cluster lock (Service.writing)")
        publications = sorted([*self.rulebook_store.publications(), *new],
                              key=lambda p: (p.effective_from or "", p.published_at or ""))
        with self._reload_lock:
            history = CatalogHistory.build(publications, load_vocabulary(), self._era_cache)
        subjects = self.repository.count_subjects()
        codes = None
        if self.history is not None and self.repository.has_obligations():
            codes = affected_subjects(self.repository, self.history, history)
            if len(codes) > FULL_REBUILD_SHARE * subjects:
                codes = None  # rewriting everyone costs less than retiring most rows one by one
        total = subjects if codes is None else len(codes)
        rebuild = self.rebuilds.start(new[0].action, ", ".join(f"{p.name}@{revision_of(p.text)} from {p.effective_from}"
                                                               for p in new), new[0].actor, total,
                                      "full" if codes is None else "incremental")
        done = 0

        def progress(subjects: int) -> None:
            nonlocal done
            done += subjects
            self.rebuilds.progress(rebuild, done)

        def switching(connection, generation: int) -> None:
            for p in new:
                self.rulebook_store.write_publication(connection, p.name, p.text, p.effective_from, p.actor,
                                                      p.comment, action=p.action, source=p.source,
                                                      stamp=p.published_at)
            self.rebuilds.finish(connection, rebuild, generation)

        pool = self._rebuild_pool(history, total)
        try:
            _, generation = Materialiser(self.repository, history).rebuild(progress, switching, pool, codes)
        except BaseException as exc:
            self.rebuilds.fail(rebuild, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            pool.close(cancel=True)
        with self._reload_lock:
            self._install(generation, history)
        return self.rebuilds.get(rebuild)

    def _rebuild_pool(self, history: CatalogHistory, subjects: int) -> Pool:
        """Where a rebuild's rules run: on the Dask cluster JOINTCREDIT_DASK_SCHEDULER names; in
        worker processes of this machine (JOINTCREDIT_REBUILD_WORKERS), by default once the
        store is large enough to repay their start (~1 s); else in this process. Outside this
        process, a publishing server's checks do not compete with the rules for its CPU."""
        if self.settings.dask_scheduler:
            from .dask_pool import DaskPool  # distributed is imported only when asked for

            return DaskPool(history, self.settings.dask_scheduler)
        workers = self.settings.rebuild_workers
        if workers is None:
            workers = cpus() if subjects >= REBUILD_POOL_MIN else 0
        return RulePool(history, workers) if workers > 0 else InlinePool(history)

    def refresh_if_stale(self) -> None:
        """Load the catalog of the generation answering checks, if this process has not yet
        (another process published, rolled back or loaded rulebooks): one indexed read."""
        if self.repository.generation() != self._generation:
            self._reload()

    def current_history(self) -> CatalogHistory:
        """The catalog in force, as the database says now (refresh_if_stale first)."""
        self.refresh_if_stale()
        return self.history

    def history_of(self, generation: int) -> CatalogHistory:
        """The catalog that generation `generation` of obligations was built with (a check
        reports its revisions), loaded if this process has not seen that generation yet."""
        kept = self._histories.get(generation)
        if kept is None:
            self._reload()
            kept = self._histories.get(generation) or self.history
        return kept

    @contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Hold the cluster lock for the block (`what` names the work, for a timeout's message),
        with this process's catalog brought up to date once the lock is held: whatever is
        materialised in the block uses the rulebooks in force."""
        with self.cluster_lock.hold(what):
            self.refresh_if_stale()
            yield

    def _reload(self) -> None:
        with self._reload_lock:
            generation, publications = self.rulebook_store.in_force_with_generation()
            if generation == self._generation or generation in self._histories or not publications:
                return  # loaded meanwhile by another thread, or a new database before its first load
            self._install(generation, CatalogHistory.build(publications, load_vocabulary(), self._era_cache))

    def _install(self, generation: int, history: CatalogHistory) -> None:
        """Keep `history` as generation `generation`'s (under _reload_lock); the newest becomes current."""
        self._histories[generation] = history
        for old in sorted(self._histories)[:-_GENERATIONS_KEPT]:
            del self._histories[old]
        if self._generation is None or generation > self._generation:
            self._generation = generation
            self.history = history
            self.materialiser = Materialiser(self.repository, history)

    @property
    def catalog(self):
        """The catalog in force today. Every check asks (through `vocab`) two or three times, so
        the answer is kept until the day or the history changes."""
        today, history = date.today(), self.history
        kept = self._today
        if kept is None or kept[0] != today or kept[1] is not history:
            kept = self._today = (today, history, history.at(today).catalog)
        return kept[2]

    @property
    def vocab(self):
        return self.catalog.vocab

    # -- input checks ------------------------------------------------------------------------
    def check_code(self, code: object, field: str = "subject") -> str:
        if not isinstance(code, str) or code_kind(code) is None:
            raise ServiceError("invalid_subject_code",
                               f"{code!r} is not a valid unified social credit code or citizen ID",
                               errors=[{"field": field, "value": code}])
        return code

    def check_activity(self, activity: str) -> str:
        if activity not in self.vocab.activities:
            from catalog.vocabulary import suggest

            hint = suggest(activity, self.vocab.activities)
            raise ServiceError("unknown_activity", f"unknown activity {activity!r}" + (f" (did you mean {hint!r}?)" if hint else ""),
                               errors=[{"field": "activity", "value": activity, "allowed": sorted(self.vocab.activities)}])
        return activity

    def check_department(self, department: str) -> str:
        if department not in self.vocab.departments:
            from catalog.vocabulary import suggest

            hint = suggest(department, self.vocab.departments)
            raise ServiceError("unknown_department", f"unknown department {department!r}"
                               + (f" (did you mean {hint!r}?)" if hint else ""), status=404,
                               errors=[{"field": "department", "value": department}])
        return department

    @staticmethod
    def check_date(value: str | None, field: str = "as_of") -> str:
        """A strict YYYY-MM-DD date within 1900..2999 (None: today), or ServiceError invalid_date."""
        if value is None:
            return date.today().isoformat()
        problem = date_problem(value)
        if problem:
            raise ServiceError("invalid_date", problem, errors=[{"field": field, "value": value}])
        return value

    # -- records -----------------------------------------------------------------------------
    def save(self, bundles: list[Bundle]) -> dict:
        """Store bundles and bring the affected obligations up to date before returning."""
        with self.writing("saving records"):
            touched = self.repository.save_bundles(bundles)
            refreshed = self.materialiser.refresh(touched)
        return {"subjects": sorted(touched), "refreshed": refreshed}

    def load_demo_if_empty(self) -> int:
        if not self.settings.load_demo or self.repository.count_subjects() or not DEMO.exists():
            return 0
        bundles = [b for b in engine.read_bundles(DEMO, vocab=self.vocab) if isinstance(b, Bundle)]
        self.save(bundles)
        return len(bundles)

    # -- eligibility -------------------------------------------------------------------------
    def eligibility(self, subject: str, activity: str, as_of: str | None, caller: str, *, log: bool = True) -> dict:
        """The answer, recorded in the decision log (unless `log` is false) before it is returned."""
        answer, revisions, _ = self._answer(subject, activity, as_of)
        if log:
            answer["decision_id"] = self.decisions.append(caller, _request_of(answer), answer, revisions)["id"]
        return answer

    async def principal(self, key: str) -> Principal | None:
        """The key's principal (None: unknown or revoked), read for the event loop."""
        return self.keys.principal_of(await self.loop_access.read(*self.keys.lookup(key)))

    def _answer(self, subject: str, activity: str, as_of: str | None) -> tuple[dict, dict, int]:
        """The answer, the revisions it was answered under, and the generation it was read from."""
        as_of = self._checked_question(subject, activity, as_of)
        read = self.repository.check_reads(subject, as_of, activity)
        return (*self._answer_from(subject, activity, as_of, read, self.history_of(read.generation)), read.generation)

    def _checked_question(self, subject: str, activity: str, as_of: str | None) -> str:
        """`as_of` as a date string, once subject, activity and date are known to be valid; else
        one ServiceError with every problem of the question (see all_problems)."""
        try:
            self.check_code(subject)
            self.check_activity(activity)
            return self.check_date(as_of)
        except ServiceError:  # the usual question pays for nothing more than the three checks
            raise all_problems(_problems((self.check_code, subject), (self.check_activity, activity),
                                         (self.check_date, as_of))) from None

    def _answer_from(self, subject: str, activity: str, as_of: str, read: CheckRead,
                     history: CatalogHistory) -> tuple[dict, dict]:
        """The answer from what the check read, and the revisions in force on `as_of` in the
        catalog of the generation it read (what the decision log records)."""
        answer = eligibility_answer(subject, activity, as_of, read.known, read.obligations, self.vocab)
        return answer, history.at(as_of).revisions

    async def keyed_check(self, key: str, subject: str, activity: str, as_of: str | None) -> KeyedCheck:
        """The caller's principal and the answer to its question, read together for the event
        loop (store/loop_access.py) as one statement (driver.beside), without a hop to a thread.
        The caller is authorised by the API before it sees the answer or the problem, which is
        logged only then."""
        lookup = self.keys.lookup(key)
        try:
            as_of = self._checked_question(subject, activity, as_of)
        except ServiceError as problem:  # the key is still looked up: 401 comes before 422
            return KeyedCheck(await self.principal(key), None, problem)
        both = await self.loop_access.read(*beside(lookup, self.repository.check_statement(subject, as_of)))
        key_rows, check_rows = apart(both, len(self.keys.LOOKUP_COLUMNS))
        read = self.repository.check_result(check_rows, activity)
        history = self._histories.get(read.generation)
        if history is None:  # another process switched the catalog: compile it off the loop, once
            history = await to_thread.run_sync(self.history_of, read.generation)
        answer = self._answer_from(subject, activity, as_of, read, history)
        return KeyedCheck(self.keys.principal_of(key_rows), answer, None)

    async def log_answer(self, answer: tuple[dict, dict], caller: str) -> dict:
        """Record an answer of keyed_check under `caller` and return it: the entry is
        group-committed by the decision writer and awaited, so no thread is held meanwhile."""
        body, revisions = answer
        entry = await self.decision_writer.append(caller, _request_of(body), body, revisions)
        body["decision_id"] = entry["id"]
        return body

    def eligibility_batch(self, subjects: list[str], activity: str, as_of: str | None, consortium: bool,
                          caller: str) -> dict:
        if not subjects:
            raise ServiceError("empty_batch", "`subjects` must name at least one subject", errors=[{"field": "subjects"}])
        try:
            for i, code in enumerate(subjects):
                self.check_code(code, f"subjects[{i}]")
            self.check_activity(activity)
            as_of = self.check_date(as_of)
        except ServiceError:  # as _checked_question: every problem gathered only when there is one
            raise self._batch_problems(subjects, activity, as_of) from None
        answers, revisions = self._batch_answers(subjects, activity, as_of)
        result = {"activity": activity, "as_of": as_of, "consortium": consortium, "answers": answers}
        if consortium:
            result.update(consortium_answer(answers))
        entry = self.decisions.append(caller, {"subjects": subjects, "activity": activity, "as_of": as_of,
                                               "consortium": consortium}, result, revisions)
        result["decision_id"] = entry["id"]
        return result

    def _batch_answers(self, subjects: list[str], activity: str, as_of: str) -> tuple[list[dict], dict]:
        """Each subject's answer, all read from one generation (asked again, a few times at
        most, when a catalog switch fell between two of them), and that generation's revisions."""
        for _ in range(_BATCH_TRIES):
            answered = [self._answer(code, activity, as_of) for code in subjects]
            if len({generation for _, _, generation in answered}) == 1:
                break
        return [answer for answer, _, _ in answered], answered[-1][1]

    def _batch_problems(self, subjects: list, activity: str, as_of: str | None) -> ServiceError:
        """Every problem of a batch question: its members' bad codes as one problem, counted, then
        the activity's and the date's (all_problems)."""
        members = _problems(*((functools.partial(self.check_code, field=f"subjects[{i}]"), code)
                              for i, code in enumerate(subjects)))
        problems = [ServiceError("invalid_subject_code", f"{len(members)} invalid subject code(s)",
                                 errors=[e for p in members for e in p.errors])] if members else []
        return all_problems(problems + _problems((self.check_activity, activity), (self.check_date, as_of)))

    # -- reading -----------------------------------------------------------------------------
    def evaluation(self, code: str, as_of: str | None):
        self.check_code(code)
        as_of = self.check_date(as_of)
        bundle = self.repository.load_bundle(code)
        if bundle is None:
            raise ServiceError("unknown_subject", f"subject {code} is not in the store", status=404)
        return self.current_history().at(as_of).evaluator.evaluate(bundle, date.fromisoformat(as_of))

    def actions(self, code: str, as_of: str | None) -> dict:
        self.check_code(code)
        as_of = self.check_date(as_of)
        return {"subject": code, "as_of": as_of, "known": self.repository.known(code),
                "obligations": self.repository.obligations_for(code, as_of)}

    def department_actions(self, department: str, as_of: str | None, limit: int, offset: int) -> dict:
        self.check_department(department)
        as_of = self.check_date(as_of)
        rows = self.repository.obligations_for_department(department, as_of, limit, offset)
        return {"department": {"code": department, "name": self.vocab.departments[department].name}, "as_of": as_of,
                "obligations": rows, "limit": limit, "offset": offset}


def _request_of(answer: dict) -> dict:
    return {"subject": answer["subject"], "activity": answer["activity"], "as_of": answer["as_of"]}


def bundles_from(objs: Iterable[dict], vocab) -> list[Bundle]:
    """Parse pushed bundles; every bad one is reported, none is stored if any is bad."""
    bundles, errors = [], []
    for i, obj in enumerate(objs):
        try:
            bundles.append(engine.parse_bundle(obj, vocab=vocab, source=f"bundles[{i}]"))
        except engine.BundleError as exc:
            errors.append({"index": i, "code": exc.code, "message": exc.message, "field": exc.field, "value": exc.value})
    if errors:
        raise ServiceError(errors[0]["code"], f"{len(errors)} invalid bundle(s)", errors=errors)
    return bundles
