"""The `jointcredit` command: lint and test rulebooks, evaluate bundles, explain an action,
print and export the measures catalog."""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="jointcredit: a rules engine for joint reward and punishment (联合奖惩).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# Piped or redirected output is not cut to 80 columns: tables stay readable in files.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)

RulebookPaths = Annotated[Optional[list[Path]], typer.Option("--rulebooks", "-r", help="Rulebook files or directories (default: the shipped rulebooks/).")]


class EvalFormat(str, Enum):
    json = "json"
    jsonl = "jsonl"
    text = "text"
    dot = "dot"


class WhyFormat(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"


def _as_of(value: Optional[str]) -> date:
    if value is None:
        return date.today()  # the command line is the edge where the clock may be read
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint="--as-of")


def _compile(paths: Optional[list[Path]]):
    from .compiler import compile_rulebooks
    from .errors import RulebookErrors

    try:
        return compile_rulebooks([str(p) for p in paths] if paths else None)
    except RulebookErrors as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False, highlight=False)
        err.print(f"[red]{len(exc.diagnostics)} rulebook error(s); run `jointcredit lint` for details[/red]")
        raise typer.Exit(2)


def _print_bundle_error(exc) -> None:
    err.print(f"error: {exc.code}: {exc.message}", markup=False, highlight=False, style="red")


@app.command()
def lint(paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or directories (default: rulebooks/).")] = None,
         format: Annotated[str, typer.Option(help="text or json")] = "text",
         strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False) -> None:
    """Check rulebooks against the schema and the catalog; report every problem of every file."""
    from catalog.vocabulary import load_vocabulary

    from .lint import load_and_lint
    from .resources import default_rulebook_dir

    targets = [str(p) for p in paths] if paths else [str(default_rulebook_dir())]
    rulebooks, diagnostics = load_and_lint(targets, load_vocabulary())
    errors = [d for d in diagnostics if d.severity == "error" or strict]
    if format == "json":
        out.print_json(data={"rulebooks": len(rulebooks), "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        for d in diagnostics:
            prefix = "" if d.severity == "error" else "warning: "
            out.print(f"{prefix}{d}", markup=False, highlight=False)
        warnings = len(diagnostics) - len([d for d in diagnostics if d.severity == "error"])
        summary = f"{len(rulebooks)} rulebook(s) checked: {len(errors)} error(s), {warnings} warning(s)"
        (err if errors else out).print(summary, style="red" if errors else "green")
    raise typer.Exit(1 if errors else 0)


@app.command("test")
def test_rulebooks(paths: Annotated[Optional[list[Path]], typer.Argument(help="Rulebook files or directories.")] = None,
                   rulebook: Annotated[Optional[list[str]], typer.Option(help="Only the tests of these rulebooks.")] = None) -> None:
    """Run the test cases every rulebook carries; say which failed and why."""
    from .testing import run_rulebook_tests

    catalog = _compile(paths)
    outcomes = run_rulebook_tests(catalog, only=set(rulebook) if rulebook else None)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        mark = "[green]PASS[/green]" if o.passed else "[red]FAIL[/red]"
        out.print(f"{mark} {o.rulebook}: {o.name}")
        for failure in o.failures:
            out.print(f"     {o.file}:{o.line}: {failure}", markup=False, highlight=False)
    out.print(f"rulebook tests: {len(outcomes) - len(failed)} passed, {len(failed)} failed",
              style="red" if failed else "green")
    raise typer.Exit(1 if failed else 0)


@app.command()
def evaluate(file: Annotated[str, typer.Argument(help="Bundle file: .json, .yaml or .jsonl ('-' reads JSONL from stdin).")],
             as_of: Annotated[Optional[str], typer.Option("--as-of", help="Evaluation date YYYY-MM-DD (default: today).")] = None,
             format: Annotated[EvalFormat, typer.Option("--format", "-f")] = EvalFormat.text,
             rulebooks: RulebookPaths = None,
             output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None) -> None:
    """Evaluate subject bundles: the obligated actions for each department, with their reasons."""
    from .bundle import read_bundles
    from .errors import BundleError
    from .evaluator import Evaluator
    from .explain import explanation_graph, to_dot

    day = _as_of(as_of)
    catalog = _compile(rulebooks)
    evaluator = Evaluator(catalog)
    if file != "-" and not Path(file).exists():
        err.print(f"error: no such file: {file}")
        raise typer.Exit(2)
    sink = open(output, "w", encoding="utf-8") if output else sys.stdout
    bad = 0
    evaluations = []
    per_department: dict[str, Counter] = defaultdict(Counter)
    progress = _progress(file)
    with progress:
        task = progress.add_task("evaluating", total=None)
        for item in read_bundles(file, vocab=catalog.vocab):
            progress.advance(task)
            if isinstance(item, BundleError):
                bad += 1
                _print_bundle_error(item)
                continue
            evaluation = evaluator.evaluate(item, day)
            for a in evaluation.actions:
                per_department[f"{a.department.code} {a.department.name}"][a.status] += 1
            if format is EvalFormat.jsonl:
                sink.write(json.dumps(evaluation.to_dict(), ensure_ascii=False) + "\n")
            elif format is EvalFormat.json:
                evaluations.append(evaluation.to_dict())
            elif format is EvalFormat.dot:
                sink.write(to_dot(explanation_graph(evaluation)) + "\n")
            else:
                _print_text(evaluation, Console(file=sink, soft_wrap=True) if output else out)
    if format is EvalFormat.json:
        payload = evaluations[0] if len(evaluations) == 1 and not file.endswith(".jsonl") else evaluations
        sink.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    if format is EvalFormat.text:
        _print_department_summary(per_department, Console(file=sink, soft_wrap=True) if output else out)
    if output:
        sink.close()
    if bad:
        err.print(f"{bad} bundle(s) could not be evaluated (see errors above)", style="red")
    raise typer.Exit(1 if bad else 0)


def _progress(file: str):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} bundles"),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def _print_text(evaluation, console: Console) -> None:
    subject = evaluation.subject
    title = f"{subject.name} {subject.code} ({subject.kind}) on {evaluation.as_of}"
    if not evaluation.actions:
        console.print(f"[bold]{title}[/bold]: no obligations")
        return
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("department", "measure", "target", "effects", "status", "valid", "records"):
        table.add_column(column)
    for a in evaluation.actions:
        dept = a.department.name + (f" (as {a.departments[0].name})" if len(a.departments) > 1 else "")
        target = a.target_code if a.target_relation is None else f"{a.target_name} {a.target_code} ({a.target_relation})"
        status = a.status + (f" by {', '.join(a.suspended_by)}" if a.suspended_by else "")
        style = {"suspended": "yellow", "disputed": "magenta"}.get(a.status)
        table.add_row(dept, f"{a.measure.id}\n{a.measure.action}", target,
                      ", ".join(f"{e.activity}:{e.effect}" for e in a.measure.effects),
                      status, f"{a.valid_from} .. {a.valid_until or 'open'}", ", ".join(a.records), style=style)
    console.print(table)


def _print_department_summary(per_department: dict[str, Counter], console: Console) -> None:
    if not per_department:
        return
    table = Table(title="Obligations per department", title_justify="left")
    for column in ("department", "active", "disputed", "suspended", "total"):
        table.add_column(column, justify="right" if column != "department" else "left")
    for dept, counts in sorted(per_department.items()):
        table.add_row(dept, str(counts["active"]), str(counts["disputed"]), str(counts["suspended"]),
                      str(sum(counts.values())))
    console.print(table)


def _pick_bundle(file: str, subject: Optional[str], vocab):
    from .bundle import read_bundles
    from .errors import BundleError

    if not Path(file).exists():
        err.print(f"error: no such file: {file}")
        raise typer.Exit(2)
    for item in read_bundles(file, vocab=vocab):
        if isinstance(item, BundleError):
            if subject is None:
                _print_bundle_error(item)
                raise typer.Exit(2)
            continue
        if subject is None or item.subject.code == subject:
            return item
    err.print(f"error: no bundle for subject {subject} in {file}")
    raise typer.Exit(2)


@app.command()
def why(bundle: Annotated[str, typer.Argument(help="Bundle file (.json/.yaml/.jsonl).")],
        measure: Annotated[str, typer.Option("--measure", "-m", help="Measure id.")],
        as_of: Annotated[Optional[str], typer.Option("--as-of")] = None,
        subject: Annotated[Optional[str], typer.Option(help="Which subject, when the file holds several.")] = None,
        format: Annotated[WhyFormat, typer.Option("--format", "-f")] = WhyFormat.text,
        rulebooks: RulebookPaths = None) -> None:
    """Why a measure applies to a subject (the chain down to record, rule and legal basis), or why not."""
    from .errors import JointCreditError
    from .evaluator import Evaluator
    from .explain import explanation_graph, format_why, to_dot, why as why_of

    day = _as_of(as_of)
    catalog = _compile(rulebooks)
    item = _pick_bundle(bundle, subject, catalog.vocab)
    evaluation = Evaluator(catalog).evaluate(item, day)
    try:
        result = why_of(evaluation, measure)
    except JointCreditError as exc:
        err.print(f"error: {exc.code}: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(2)
    if format is WhyFormat.json:
        out.print_json(data=result)
    elif format is WhyFormat.dot:
        graph = explanation_graph(evaluation)
        keep = {n for n, d in graph.nodes(data=True) if d.get("measure") == measure}
        import networkx as nx

        nodes = set(keep)
        for node in keep:
            nodes |= nx.ancestors(graph, node) | nx.descendants(graph, node)
        sys.stdout.write(to_dot(graph.subgraph(nodes)) + "\n")
    else:
        out.print(format_why(result), markup=False, highlight=False)


@app.command()
def explain(bundle: Annotated[str, typer.Argument(help="Bundle file (.json/.yaml/.jsonl).")],
            out_file: Annotated[Path, typer.Option("--out", "-o", help="Output: .json (node-link), .dot, .svg, .png or .pdf.")],
            as_of: Annotated[Optional[str], typer.Option("--as-of")] = None,
            subject: Annotated[Optional[str], typer.Option(help="Which subject, when the file holds several.")] = None,
            rulebooks: RulebookPaths = None) -> None:
    """Export the explanation graph of one evaluation as node-link JSON, DOT or a picture."""
    from .evaluator import Evaluator
    from .explain import explanation_graph, render_picture, to_dot, to_node_link

    day = _as_of(as_of)
    catalog = _compile(rulebooks)
    item = _pick_bundle(bundle, subject, catalog.vocab)
    graph = explanation_graph(Evaluator(catalog).evaluate(item, day))
    suffix = out_file.suffix.lower()
    if suffix == ".json":
        out_file.write_text(json.dumps(to_node_link(graph), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    elif suffix == ".dot":
        out_file.write_text(to_dot(graph), encoding="utf-8")
    elif suffix in (".svg", ".png", ".pdf"):
        render_picture(graph, str(out_file))
    else:
        err.print(f"error: unsupported output {suffix!r}: use .json, .dot, .svg, .png or .pdf")
        raise typer.Exit(2)
    out.print(f"wrote {out_file} ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges)")


@app.command("catalog")
def catalog_command(by: Annotated[str, typer.Option(help="Group by department, list or basis.")] = "department",
                    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Export to CSV.")] = None,
                    xlsx_path: Annotated[Optional[Path], typer.Option("--xlsx", help="Export to XLSX (one sheet per view).")] = None,
                    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Resolve departments as of this date.")] = None,
                    rulebooks: RulebookPaths = None) -> None:
    """The aggregated measures catalog (目录清单): every measure by department, list or legal basis."""
    from catalog.measures import VIEWS, catalog_rows, grouped, write_csv, write_xlsx

    if by not in VIEWS:
        raise typer.BadParameter(f"choose one of {', '.join(VIEWS)}", param_hint="--by")
    compiled = _compile(rulebooks)
    rows = catalog_rows(compiled, _as_of(as_of))
    if csv_path:
        write_csv(rows, csv_path, by)
        out.print(f"wrote {csv_path} ({len(rows)} measures)")
    if xlsx_path:
        write_xlsx(rows, xlsx_path)
        out.print(f"wrote {xlsx_path} ({len(rows)} measures, sheets by {', '.join(VIEWS)})")
    if csv_path or xlsx_path:
        return
    for key, group in grouped(rows, by).items():
        table = Table(title=key, title_justify="left")
        for column in ("measure", "kind", "department", "action", "triggers", "basis"):
            table.add_column(column)
        for row in group:
            table.add_row(row.measure, row.kind, row.department_name, row.action, "\n".join(row.triggers),
                          "\n".join(row.basis_text))
        out.print(table)
    out.print(f"{len(rows)} measures in {len(compiled.rulebooks)} rulebooks")


def _service():
    from store.service import Service
    from store.settings import get_settings

    return Service(get_settings())


@app.command("import")
def import_command(files: Annotated[list[Path], typer.Argument(help="JSON, JSONL, YAML, CSV or XLSX files.")],
                   batch: Annotated[int, typer.Option(help="Subjects per transaction.")] = 5000,
                   workers: Annotated[int | None, typer.Option(
                       help="Processes running the rules beside the one reading and writing "
                            "(default: one per CPU; 0: all in one process).")] = None) -> None:
    """Import subject bundles into the store (JOINTCREDIT_DATABASE_URL) and bring obligations up to date."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from store.importer import import_files

    service = _service()
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} subjects"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task("importing", total=None, rate="")
        seen = [0]

        def advance(n: int) -> None:
            seen[0] += n
            rate = seen[0] / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:,.0f}/s")
            if not err.is_terminal and seen[0] % (batch * 10) < n:
                err.print(f"imported {seen[0]:,} subjects ({rate:,.0f}/s)")

        def stage(what: str) -> None:
            progress.update(task, description=what)
            if not err.is_terminal:
                err.print(f"{what} ...")

        report = import_files(service, files, progress=advance, batch_size=batch, workers=workers, stage=stage)
    from .errors import summarise

    for line in summarise(report.errors):  # the first 20 of each code, then how many more
        err.print(line, markup=False, highlight=False, style="red")
    out.print(f"imported {report.subjects:,} subjects, {report.records:,} records from {report.files} file(s); "
              f"{report.refreshed:,} subjects re-evaluated; {len(report.errors)} error(s) "
              f"in {time.perf_counter() - started:.1f}s")
    raise typer.Exit(1 if report.errors else 0)


@app.command("rebuilds")
def rebuilds_command(rebuild_id: Annotated[Optional[int], typer.Argument(help="One rebuild's id (default: the newest).")] = None,
                     follow: Annotated[bool, typer.Option("--follow", "-f",
                                                          help="Show its progress until it ends.")] = False,
                     limit: Annotated[int, typer.Option(help="How many to list.")] = 10) -> None:
    """The re-materialisations that publishes, rollbacks and rulebook loads started, from any
    process, with their progress; exits 1 if the one shown failed or was abandoned. Reads the
    log only: it does not wait for the cluster lock a running publish holds."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from store.db import make_engine
    from store.rebuilds import RebuildLog
    from store.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        log = RebuildLog(engine)
        entry = log.get(rebuild_id) if rebuild_id is not None else next(iter(log.recent(1)), None)
        if entry is None:
            err.print(f"error: no rebuild {rebuild_id}" if rebuild_id is not None else "no rebuild yet")
            raise typer.Exit(2 if rebuild_id is not None else 0)
        if follow and entry["state"] == "running":
            with Progress(TextColumn(f"rebuild {entry['id']} ({entry['scope']}) {entry['rulebooks']}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                          disable=not err.is_terminal) as progress:
                task = progress.add_task("", total=entry["total"], completed=entry["done"])
                shown = -1
                while entry["state"] == "running":
                    if not err.is_terminal and entry["done"] != shown:  # a log, not a bar
                        shown = entry["done"]
                        err.print(f"rebuild {entry['id']}: {shown:,} of {entry['total']:,} subjects")
                    time.sleep(0.5)
                    entry = log.get(entry["id"])
                    progress.update(task, completed=entry["done"], total=entry["total"])
        table = Table(title="rebuilds", title_justify="left")
        for column in ("id", "kind", "scope", "state", "done", "generation", "started", "rulebooks", "message"):
            table.add_column(column)
        shown = [entry] if follow or rebuild_id is not None else log.recent(limit)
        for r in shown:
            table.add_row(str(r["id"]), r["kind"], r["scope"], r["state"], f"{r['done']:,}/{r['total']:,}",
                          str(r["generation"] or ""), r["started_at"], r["rulebooks"], r["message"])
        out.print(table)
        raise typer.Exit(1 if entry["state"] in ("failed", "abandoned") else 0)
    finally:
        engine.dispose()


keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="system, department, auditor or admin.")],
                department: Annotated[Optional[str], typer.Option(help="Department code (department keys).")] = None,
                name: Annotated[Optional[str], typer.Option(help="Who the key is for.")] = None) -> None:
    """Create an API key and print it (it is stored hashed and cannot be shown again)."""
    service = _service()
    if department and department not in service.vocab.departments:
        err.print(f"error: unknown department {department!r}")
        raise typer.Exit(2)
    try:
        key = service.keys.create(role, name or (department or role), department)
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2)
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Keys with their id, prefix, role and department (never the key itself)."""
    table = Table()
    for column in ("id", "prefix", "name", "role", "department", "created", "revoked"):
        table.add_column(column)
    for k in _service().keys.list():
        table.add_row(str(k["id"]), k["prefix"], k["name"], k["role"], k["department"] or "", k["created_at"],
                      "yes" if k["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key; calls with it are refused from now on."""
    if not _service().keys.revoke(key_id):
        err.print(f"error: no key with id {key_id}")
        raise typer.Exit(2)
    out.print(f"key {key_id} revoked")


rulebook_app = typer.Typer(help="Rulebooks kept in files (git): diff revisions, measure a change's impact.",
                           no_args_is_help=True)
app.add_typer(rulebook_app, name="rulebook")


@rulebook_app.command("diff")
def rulebook_diff(old: Annotated[Path, typer.Argument(help="The old rulebook file.")],
                  new: Annotated[Path, typer.Argument(help="The new rulebook file.")],
                  format: Annotated[str, typer.Option(help="text or json")] = "text") -> None:
    """Text diff, and the measures, rules and tests added, removed and changed."""
    from .rulebook_diff import structural_diff, text_diff

    a, b = old.read_text(encoding="utf-8"), new.read_text(encoding="utf-8")
    structure = structural_diff(a, b)
    if format == "json":
        out.print_json(data={"text": text_diff(a, b, str(old), str(new)), **structure})
        return
    sys.stdout.write(text_diff(a, b, str(old), str(new)))
    for section in ("measures", "rules", "tests"):
        for change in ("added", "removed", "changed"):
            for item in structure.get(section, {}).get(change, []):
                out.print(f"{section[:-1]} {change}: {item}", markup=False, highlight=False)


@rulebook_app.command("impact")
def rulebook_impact(file: Annotated[Path, typer.Argument(help="The edited rulebook file.")],
                    as_of: Annotated[Optional[str], typer.Option("--as-of")] = None,
                    format: Annotated[str, typer.Option(help="text or json")] = "text") -> None:
    """What publishing FILE would change for every subject in the database (JOINTCREDIT_DATABASE_URL)."""
    from store.editing import RulebookEditor
    from store.service import ServiceError

    from .loader import load_rulebook

    rulebook, diagnostics = load_rulebook(file)
    if rulebook is None:
        for d in diagnostics:
            err.print(str(d), markup=False, highlight=False)
        raise typer.Exit(2)
    editor = RulebookEditor(_service())
    try:
        catalog, outcomes = editor.test(rulebook.name, rulebook.text)
        impact = editor.impact(catalog, editor.service.check_date(as_of), rulebook.name)
    except ServiceError as exc:
        for e in exc.errors:
            err.print(f"{file}:{e.get('line')}:{e.get('column')}: {e.get('code')}: {e.get('message')}", markup=False)
        raise typer.Exit(2)
    failed = [o for o in outcomes if not o.passed]
    if format == "json":
        out.print_json(data={"tests": {"passed": len(outcomes) - len(failed), "failed": len(failed)}, **impact})
        raise typer.Exit(1 if failed else 0)
    out.print(f"tests: {len(outcomes) - len(failed)} passed, {len(failed)} failed")
    for o in failed:
        for failure in o.failures:
            out.print(f"  FAIL {o.name}: {failure}", markup=False)
    out.print(f"subjects evaluated: {impact['subjects_evaluated']:,}")
    table = Table(title="obligations by measure", title_justify="left")
    for column in ("measure", "appear", "disappear", "change", "samples"):
        table.add_column(column)
    for measure, counts in sorted(impact["measures"].items()):
        table.add_row(measure, str(counts["appear"]), str(counts["disappear"]), str(counts["change"]),
                      ", ".join(s["target"] for s in counts["samples"]))
    out.print(table)
    for activity, flip in sorted(impact["eligibility_flips"].items()):
        out.print(f"{activity}: {flip['became_ineligible']} become ineligible, {flip['became_eligible']} become eligible")
    raise typer.Exit(1 if failed else 0)


desk_app = typer.Typer(help="The desk clerk's view: objections and credit repairs waiting, and deciding them.",
                       no_args_is_help=True)
app.add_typer(desk_app, name="desk")


def _desk_call(call):
    from store.service import ServiceError

    try:
        return call()
    except ServiceError as exc:
        err.print(f"error: {exc.code}: {exc.message}", markup=False, highlight=False)
        for e in exc.errors:
            err.print(f"  {e}", markup=False, highlight=False)
        raise typer.Exit(2)


@desk_app.command("queue")
def desk_queue(department: Annotated[str, typer.Option(help="Department code.")],
               as_of: Annotated[Optional[str], typer.Option("--as-of")] = None) -> None:
    """Objections and repair applications waiting for a department, oldest deadline first."""
    from store.lifecycle import Lifecycle

    waiting = _desk_call(lambda: Lifecycle(_service()).waiting(department, as_of=as_of))
    for kind in ("objections", "repairs"):
        table = Table(title=f"{kind} waiting for {department}", title_justify="left")
        for column in ("id", "subject", "record", "opened", "deadline", "overdue", "grounds / statement"):
            table.add_column(column)
        for case in sorted(waiting[kind], key=lambda c: c["deadline"]):
            table.add_row(str(case["id"]), case["subject"], case["record"], case["opened_on"], case["deadline"],
                          "OVERDUE" if case["overdue"] else "", case.get("grounds") or case.get("statement") or "",
                          style="red" if case["overdue"] else None)
        out.print(table)


@desk_app.command("decide")
def desk_decide(kind: Annotated[str, typer.Argument(help="objection or repair")],
                case_id: Annotated[int, typer.Argument(help="The case id (see `desk queue`).")],
                decision: Annotated[str, typer.Option(help="uphold/reject (objections), approve/refuse (repairs).")],
                reasons: Annotated[str, typer.Option(help="Reasons, kept with the decision.")],
                department: Annotated[str, typer.Option(help="Your department (the case must be in its queue).")],
                clerk: Annotated[str, typer.Option(help="Who decides.")] = "desk",
                on: Annotated[Optional[str], typer.Option(help="Decision date (default today).")] = None) -> None:
    """Decide an objection or a repair application; obligations are brought up to date at once."""
    from store.lifecycle import Lifecycle

    result = _desk_call(lambda: Lifecycle(_service()).decide(kind, case_id, decision, reasons,
                                                             f"department:{clerk}@{department}", on=on,
                                                             department=department))
    out.print(f"{kind} {case_id}: {result['state']} on {result['date']} by {result['by']}")


@desk_app.command("object")
def desk_object(subject: str, record: str, grounds: Annotated[str, typer.Option(help="The subject's grounds.")],
                by: Annotated[str, typer.Option(help="Who files it (the subject's representative).")] = "desk") -> None:
    """Record an objection brought to the desk: the record is disputed at once."""
    from store.lifecycle import Lifecycle

    case = _desk_call(lambda: Lifecycle(_service()).file_objection(subject, record, grounds, None, by))
    out.print(f"objection {case['id']} filed; {case['department']} must decide by {case['deadline']}")


@desk_app.command("repair")
def desk_repair(subject: str, record: str, statement: Annotated[str, typer.Option(help="What was put right.")],
                by: Annotated[str, typer.Option(help="Who applies.")] = "desk") -> None:
    """Record a credit-repair application (refused before the minimum publication period)."""
    from store.lifecycle import Lifecycle

    case = _desk_call(lambda: Lifecycle(_service()).apply_repair(subject, record, by, statement))
    out.print(f"repair application {case['id']} filed; {case['department']} must decide by {case['deadline']}")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 8000,
          workers: Annotated[int, typer.Option(help="Worker processes.")] = 1) -> None:
    """Start the HTTP API (docs at /docs); loads the demo data into an empty store on first start."""
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
