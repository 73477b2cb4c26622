"""The ``coldrec`` command. Each subcommand is a thin call into one stage function.

Errors a user can fix (bad files, unknown names) print one line and exit 2; nothing else here
has logic of its own.
"""
from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldrec.core.errors import ColdrecError
from coldrec.core.params import METHOD_NAMES
from coldrec.orchestration import stages
from coldrec.orchestration.stages import Source

app = typer.Typer(
    help="coldrec: recommendations for brand-new shoppers from a pretrained transformer encoder.\n\n"
    "Every data-taking command works on a shipped dataset (--dataset online-retail | movielens-small)"
    " or on your own files in the canonical schema (--events FILE --items FILE [--users FILE]).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Get data into the canonical schema.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _terminate(signum: int, _frame: Any) -> None:
    """SIGTERM (a scheduler stopping a task, `kill`) becomes SystemExit, so every open output's
    temporary folder is removed on the way out instead of being left behind."""
    raise SystemExit(128 + signum)


@app.callback()
def _main() -> None:
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
        signal.signal(signal.SIGTERM, _terminate)


@app.command("prepare", hidden=True)
def prepare_hint() -> None:
    """Not a command: preparing data is `coldrec data prepare`."""
    err_console.print("[bold red]error:[/] there is no `coldrec prepare`: did you mean `coldrec data prepare` "
                      "(see `coldrec data prepare --help`)?", soft_wrap=True, highlight=False)
    raise typer.Exit(2)

console = Console()
err_console = Console(stderr=True)

DatasetOpt = typer.Option(None, "--dataset", "-d", help="Shipped dataset name: online-retail (default) or movielens-small.")
EventsOpt = typer.Option(None, "--events", help="Your events file (CSV/Parquet): user_id,item_id,event_type,timestamp[,value,query].")
ItemsOpt = typer.Option(None, "--items", help="Your items file (CSV/Parquet): item_id,title[,description,category,brand,price,...].")
UsersOpt = typer.Option(None, "--users", help="Optional users file (CSV/Parquet): user_id + attributes.")
ForceOpt = typer.Option(False, "--force", help="Replace an existing output location that coldrec did not write "
                        "(refused without it; an output that is or contains an input is refused always).")
DataDirOpt = typer.Option(None, "--data-dir", help="Directory holding the shipped datasets' raw files (overrides the lookup order).")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ColdrecError into one line on stderr and a non-zero exit, never a traceback; so is an
    operating-system failure while reading or writing (disk full, permission denied, ...), exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ColdrecError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"[bold red]error:[/] {escape(where + str(exc.strerror or exc))}", soft_wrap=True,
                              highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_dataset_summary(summary: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> None:
    """A prepared dataset's summary (users, items, events, dates) and its cleaning rules."""
    t = Table(title=f"dataset {summary['dataset']}", show_header=False)
    for key in ("users", "items_in_catalogue", "items_with_events", "events", "first_event", "last_event"):
        t.add_row(key.replace("_", " "), f"{summary[key]:,}" if isinstance(summary[key], int) else str(summary[key]))
    t.add_row("event types", ", ".join(f"{k}={v:,}" for k, v in summary["event_types"].items()))
    if summary.get("user_attributes"):
        t.add_row("user attributes", ", ".join(summary["user_attributes"]))
    console.print(t)
    if rules:
        r = Table(title="cleaning rules (in order)")
        r.add_column("rule")
        r.add_column("rows", justify="right")
        r.add_column("why")
        for rule in rules:
            n = rule.get("removed", rule.get("rows"))
            label = f"-{n:,}" if "removed" in rule else f"{n:,}"
            r.add_row(rule["rule"], label, rule.get("why", ""))
        console.print(r)


@data_app.command("prepare")
@user_errors
def data_prepare(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory (default: data/<dataset name>)."),
    data_dir: Path | None = DataDirOpt,
    force: bool = ForceOpt,
) -> None:
    """Convert a dataset to canonical Parquet (events, items, users) and print its summary."""
    with console.status("preparing dataset (reading, cleaning, checking the contract)..."):
        res = stages.prepare(Source(dataset, events, items, users, data_dir), out=out, force=force)
    ds = res.detail
    print_dataset_summary(ds.summary(), ds.report.get("rules"))
    console.print(f"wrote [bold]{res.path}[/] (fingerprint {res.summary['fingerprint']})")


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    data_dir: Path | None = DataDirOpt,
    split: str | None = typer.Option(
        None, "--split", help="time (cold-start users after a cutoff, default) | users (held-out users) | warm (leave-last-out)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: params.yaml seed)."),
    methods: str | None = typer.Option(
        None, "--methods", help="Comma-separated methods (default: evaluation.methods in params.yaml), from: "
        + ", ".join(METHOD_NAMES) + "."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory (default: reports/evaluation/<dataset>/<split>)."),
    force: bool = ForceOpt,
) -> None:
    """Cold-start benchmark: fit every method on the split's training part, rank the full catalogue
    for each test user after revealing k items, write metrics.json + report.html + a plot."""
    from training.evaluation.report import console_table

    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    res = stages.evaluate(Source(dataset, events, items, users, data_dir), out=out, split=split, seed=seed,
                          methods=chosen, force=force)
    console.print(console_table(res.detail))
    console.print(f"wrote [bold]{res.path}[/]/metrics.json, report.html, ndcg_vs_k.png")


@app.command("train")
@user_errors
def train_cmd(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    data_dir: Path | None = DataDirOpt,
    out: Path | None = typer.Option(
        None, "--out", "-o",
        help="Model version directory (default: artifacts/models/<dataset>/<version>/, and <dataset>/latest then names it).",
    ),
    holdout: bool = typer.Option(
        False, "--holdout", help="Train on events before the promotion gate's cut only, so `coldrec gate` can judge this "
        "version on shoppers it has not seen (what the retrain pipeline does)."),
    force: bool = ForceOpt,
) -> None:
    """Fine-tune the encoder on behaviour, fit the hybrid blend, write a new model version (a
    candidate: `coldrec models promote` makes it the served one)."""
    res = stages.train(Source(dataset, events, items, users, data_dir), out=out, force=force, holdout=holdout)
    r = res.summary
    best = r["finetune_best_val_ndcg@10"]
    console.print(f"trained in {r['train_seconds']} s (fine-tune: {r['finetune_steps']} steps, best validation NDCG@10 "
                  f"{float('nan') if best is None else best:.4f} at step {r['finetune_best_step']}, {r['finetune_stopped']})")
    console.print(f"wrote model version [bold]{res.path}[/]")


@app.command("validate")
@user_errors
def validate_cmd(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    data_dir: Path | None = DataDirOpt,
    run_date: str | None = typer.Option(
        None, "--run-date",
        help="Date the freshness and not-in-the-future checks are relative to "
        "(YYYY-MM-DD = end of that day, UTC; default: params.yaml quality.run_date, else now).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory (default: reports/validation/<dataset>)."),
    force: bool = ForceOpt,
) -> None:
    """Data validation (Great Expectations): run the suites of expectations/ on the data and write
    result.json + report.html (+ quarantine/). Exit 0: passed (warnings allowed); 1: a critical
    expectation failed (do not train on this batch); 2: unusable input or arguments."""
    from coldrec.quality.report import console_table

    with console.status("validating (Great Expectations)..."):
        res = stages.validate(Source(dataset, events, items, users, data_dir), out=out, run_date=run_date,
                              force=force)
    console.print(console_table(res.detail))
    console.print(f"wrote [bold]{res.path}[/]/result.json, report.html")
    res.detail.raise_if_failed()


features_app = typer.Typer(help="Feature store (Feast): build feature tables, apply, materialise, look up, push.", no_args_is_help=True)
app.add_typer(features_app, name="features")
OnlineOpt = typer.Option(None, "--online", help="Online store: sqlite (embedded) or redis (default: params.yaml features.online_store).")
RepoOpt = typer.Option(None, "--repo", help="Feast repo copy to use (default: data/feast/<dataset>/<online store>).")


@features_app.command("build")
@user_errors
def features_build(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    data_dir: Path | None = DataDirOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory (default: data/features/<dataset>)."),
    force: bool = ForceOpt,
) -> None:
    """Compute the point-in-time feature tables (user profiles, item popularity, item attributes)."""
    with console.status("computing feature tables..."):
        res = stages.build_features(Source(dataset, events, items, users, data_dir), out=out, force=force)
    t = Table(title=f"feature tables {res.summary['dataset']}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in res.summary["rows"].items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    console.print(f"wrote [bold]{res.path}[/]")


@features_app.command("apply")
@user_errors
def features_apply(
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset whose feature tables to register (default: params.yaml data.default_dataset)."
    ),
    online: str | None = OnlineOpt,
    repo: Path | None = RepoOpt,
    features_data: Path | None = typer.Option(None, "--features-data", help="Feature tables directory (default: data/features/<dataset>)."),
    force: bool = ForceOpt,
) -> None:
    """Render a copy of features/ for the dataset and online store, then `feast apply` it."""
    res = stages.apply_features(dataset, out=repo, online=online, features_data=features_data, force=force)
    r = res.summary
    console.print(f"applied project [bold]{r['project']}[/] ({r['online']}) in [bold]{res.path}[/]: {', '.join(r['feature_views'])}")


@features_app.command("materialize")
@user_errors
def features_materialize(
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: str | None = OnlineOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Load the latest feature rows into the online store (incremental after the first run)."""
    with console.status("materialising..."):
        res = stages.materialize(dataset, out=repo, online=online)
    for view, how in res.summary["views"].items():
        console.print(f"{view}: {how} -> {res.summary['online']}")


@features_app.command("get")
@user_errors
def features_get(
    user_id: str = typer.Argument(..., help="The user whose online profile to print."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: str | None = OnlineOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Print a user's online feature profile as JSON (an unknown user prints the cold profile)."""
    import json

    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.feature_store.repo import resolve_repo
    from coldrec.feature_store.store import get_user_profile, open_store

    _, _, repo = resolve_repo(dataset, typed(load_params()), online, repo)
    console.print_json(json.dumps(get_user_profile(open_store(repo), user_id), default=str))


@features_app.command("push")
@user_errors
def features_push(
    user_id: str = typer.Argument(..., help="The user the event belongs to."),
    item_id: str | None = typer.Argument(None, help="The item (omit for a search event)."),
    event_type: str = typer.Option("view", "--event-type", "-e", help="view, click, add_to_cart, purchase, search or rate."),
    query: str | None = typer.Option(None, "--query", help="Text of a search event."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: str | None = OnlineOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Push one live event into the user's online profile (what the serving feedback API does)."""
    import json

    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.feature_store.repo import resolve_repo
    from coldrec.feature_store.store import open_store, push_event

    params = typed(load_params())
    _, _, repo = resolve_repo(dataset, params, online, repo)
    fp = params.features
    prof = push_event(open_store(repo), {"user_id": user_id, "item_id": item_id, "event_type": event_type, "query": query},
                      recent_n=fp.recent_items, top_k=fp.top_categories)
    console.print_json(json.dumps(prof, default=str))


@app.command("quantize")
@user_errors
def quantize_cmd(
    model: Path | None = typer.Option(
        None, "--model", "-m",
        help="A model version directory, or a dataset's models folder (its current version). Default: the current version of --dataset.",
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset whose current model version to quantize (default: params.yaml data.default_dataset)."
    ),
) -> None:
    """Export the version's encoder to ONNX, quantize it to int8 (ONNX Runtime) and write it with
    its item vectors and a fidelity report (fidelity.json/.html) to <model>/encoder_int8/, which
    serving then loads by default. Exit 1 if the mean cosine to fp32 is below quantize.min_mean_cosine."""
    with console.status("exporting, quantizing and checking fidelity..."):
        res = stages.quantize(dataset, model=model)
    rep = res.detail
    t = Table(title="int8 encoder fidelity (vs fp32)", show_header=False)
    for key in ("n_texts", "mean_cosine", "min_cosine", "p01_cosine", "neighbour_overlap@10", "size_ratio"):
        if rep.get(key) is not None:
            t.add_row(key.replace("_", " "), f"{rep[key]:.4f}" if isinstance(rep[key], float) else str(rep[key]))
    sizes = rep.get("size_bytes", {})
    t.add_row("size fp32 / int8", f"{sizes.get('fp32', 0) / 1e6:.1f} MB / {sizes.get('int8', 0) / 1e6:.1f} MB")
    console.print(t)
    console.print(f"wrote [bold]{res.path}[/] (model.onnx, item_vectors.npy, fidelity.json, fidelity.html)")


@app.command("index")
@user_errors
def index_cmd(
    model: Path | None = typer.Option(None, "--model", "-m", help="A model version directory (default: the current version)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    milvus_uri: str | None = typer.Option(None, "--milvus-uri", help="Milvus Lite .db path or server URI."),
) -> None:
    """Build the version's item collection in Milvus (vectors + filter fields; HNSW index), ahead of
    promoting it (`coldrec models promote` points the production alias at it)."""
    with console.status("building the item collection..."):
        res = stages.index(dataset, model=model, uri=milvus_uri)
    console.print_json(json.dumps(res.to_dict(), default=str))


@app.command("bundle")
@user_errors
def bundle_cmd(
    model: Path | None = typer.Option(None, "--model", "-m", help="A model version directory (default: the current version)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
) -> None:
    """Build a Bento: the service, the runtime and the version (in the BentoML model store). Run it
    with `bentoml serve <tag>`; `bentoml containerize <tag>` makes an OCI image where Docker runs."""
    with console.status("bentoml build ..."):
        res = stages.bundle(dataset, model=model)
    console.print_json(json.dumps(res.to_dict(), default=str))


@app.command("serve")
@user_errors
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default; 0.0.0.0 exposes it)."),
    port: int = typer.Option(3000, "--port", "-p", min=1, max=65535, help="HTTP port."),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Serve this version only (default: follow the promoted one as it changes)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset whose models to serve (default: params.yaml)."),
    milvus_uri: str | None = typer.Option(
        None, "--milvus-uri", help="Milvus Lite .db path or server URI (default: <data_dir>/milvus/coldrec.db)."),
    detach: bool = typer.Option(False, "--detach", help="Start in the background, return once ready (stop: --stop)."),
    stop: bool = typer.Option(False, "--stop", help="Stop the service a --detach run started."),
) -> None:
    """Run the HTTP service (BentoML) on the promoted model version: /recommend, /similar-items,
    /profile, /feedback, /version, /healthz, /readyz, /metrics. Set COLDREC_API_KEY to require a key.
    A Milvus Lite index runs in a process of its own (serving.lite_process in params.yaml)."""
    from coldrec.core import paths
    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from serving import launch

    run_dir = paths.serve_run_dir()
    pidfile = run_dir / "serve.pid"
    if stop:
        pids = launch.stop(pidfile)
        console.print(f"stopped {len(pids)} process(es)")
        return
    if detach and pidfile.exists():
        raise ColdrecError(f"{pidfile}: a detached service is recorded; stop it first (`coldrec serve --stop`)")
    params = typed(load_params())
    env = launch.service_env(params, dataset=dataset, version=version, milvus_uri=milvus_uri)
    log = run_dir / f"serve-{port}.log"
    console.print(f"starting the service on [bold]{env['COLDREC_MODEL']}[/] (log: {log}) ...")
    url = launch.serve(host, port, env, log, lite_process=params.serving.lite_process, detach=detach,
                       pidfile=pidfile if detach else None)
    if detach:
        console.print(f"ready: [bold]{url}[/] (stop it with `coldrec serve --stop`)")


@app.command("gate")
@user_errors
def gate_cmd(
    dataset: str | None = DatasetOpt,
    events: Path | None = EventsOpt,
    items: Path | None = ItemsOpt,
    users: Path | None = UsersOpt,
    data_dir: Path | None = DataDirOpt,
    model: Path | None = typer.Option(None, "--model", "-m", help="Candidate version directory (default: the latest trained)."),
) -> None:
    """Judge the candidate against production on cold-start shoppers neither has seen (exit 1 if it
    may not be promoted). Report: reports/gate/<dataset>/<version>.json."""
    with console.status("judging the candidate on unseen cold-start shoppers ..."):
        res = stages.gate(Source(dataset, events, items, users, data_dir), model=model)
    print_gate_report(res.detail)
    console.print(f"wrote [bold]{res.path}[/]")
    if not res.summary.get("passed"):
        raise typer.Exit(1)


def print_gate_report(report: dict[str, Any]) -> None:
    """The promotion gate's verdict: NDCG@10 by revealed items k for the candidate, production and
    the baselines on the same unseen shoppers, then passed / refused and why."""
    ndcg = report.get("ndcg@10") or {}
    ks = sorted({k for row in ndcg.values() for k in row}, key=int)
    t = Table(title=f"promotion gate: {report.get('candidate')} vs production {report.get('production') or '(none)'}, "
                    f"NDCG@10 on {report.get('test_users', '?')} shoppers after {report.get('cutoff', '?')}")
    t.add_column("version")
    for k in ks:
        t.add_column(f"k={k}", justify="right")
    for role, row in ndcg.items():
        t.add_row(role, *("-" if row.get(k) is None else f"{row[k]:.4f}" for k in ks))
    if ndcg:
        console.print(t)
    fid = report.get("fidelity") or {}
    if fid.get("mean_cosine") is not None:
        console.print(f"int8 fidelity: mean cosine {fid['mean_cosine']:.4f}")
    verdict = "[bold green]passed[/]" if report.get("passed") else "[bold red]refused[/]"
    console.print(f"{verdict}: {escape('; '.join(report.get('reasons') or []))}")


models_app = typer.Typer(help="Model registry (GTO tags in artifacts/registry): list, show, register, promote, rollback.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
@user_errors
def models_list(dataset: str | None = DatasetOpt) -> None:
    """Registered versions, newest first, with stage and gate result."""
    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.release.promotion import listing

    ds = dataset or typed(load_params()).data.default_dataset
    rows = listing(ds)
    t = Table(title=f"{ds} model versions")
    for col in ("version", "model_version", "stage", "gate", "ndcg@10_k3", "parent", "created", "code"):
        t.add_column(col)
    for r in rows:
        t.add_row(*("" if r[c] is None else str(r[c]) for c in ("version", "model_version", "stage", "gate", "ndcg@10_k3",
                                                                 "parent", "created", "code")))
    console.print(t if rows else f"no registered version of {ds} (run `coldrec pipeline run` or `coldrec models register`)")


@models_app.command("show")
@user_errors
def models_show(version: str = typer.Argument(..., help="v0.0.N or a model directory name v-<hash>"),
                dataset: str | None = DatasetOpt) -> None:
    """A version's lineage: data fingerprint, params, metrics, gate report, code commit, parent."""
    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.release.model_registry import Registry

    ds = dataset or typed(load_params()).data.default_dataset
    console.print_json(json.dumps(Registry().get(ds, version).to_dict(), default=str))


@models_app.command("register")
@user_errors
def models_register(dataset: str | None = DatasetOpt,
                    model: Path | None = typer.Option(None, "--model", "-m", help="Version directory (default: latest).")) -> None:
    """Register a trained version (with its gate report when `coldrec gate` judged it)."""
    console.print_json(json.dumps(stages.register(dataset, model=model).to_dict(), default=str))


@models_app.command("promote")
@user_errors
def models_promote(version: str = typer.Argument(..., help="v0.0.N or a model directory name v-<hash>"),
                   dataset: str | None = DatasetOpt,
                   force: bool = typer.Option(False, "--force", help="Promote even if the version failed its gate.")) -> None:
    """Make a registered version production: its item collection and Bento are made ready, then
    the registry, the index alias and the served model switch together."""
    with console.status(f"promoting {version} ..."):
        res = stages.promote(dataset, version=version, force=force)
    console.print_json(json.dumps(res.to_dict(), default=str))


@models_app.command("rollback")
@user_errors
def models_rollback(dataset: str | None = DatasetOpt) -> None:
    """Put back the version that was production before the current one."""
    with console.status("rolling back ..."):
        res = stages.rollback(dataset)
    console.print_json(json.dumps(res.to_dict(), default=str))


pipeline_app = typer.Typer(help="The retrain pipeline (Airflow DAG coldrec_retrain).", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
@user_errors
def pipeline_run(dataset: str | None = DatasetOpt, events: Path | None = EventsOpt, items: Path | None = ItemsOpt,
                 users: Path | None = UsersOpt) -> None:
    """Run the coldrec_retrain DAG once, in process (Airflow's dag.test(), SQLite metadata DB in the
    data dir): validate, features, train, quantize, gate, register, index, bundle, promote.
    Exit 1 when a task failed; a candidate the gate refused is a successful run (see the report)."""
    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.orchestration.airflow_local import run

    conf = {"dataset": dataset or typed(load_params()).data.default_dataset,
            **{k: str(v.resolve()) for k, v in (("events", events), ("items", items), ("users", users)) if v}}
    result = run(conf)
    report = result.get("report") or {}
    t = Table(title=f"coldrec_retrain {result.get('run_id')}: {result.get('state')}")
    for col in ("task", "state", "seconds"):
        t.add_column(col)
    for row in report.get("tasks", []):
        t.add_row(row["task"], row["state"], "" if row["seconds"] is None else f"{row['seconds']:.1f}")
    console.print(t)
    console.print(f"[bold]{escape(str(report.get('outcome')))}[/] (report: {report.get('path', 'none')})")
    if result.get("state") != "success" or any(r["state"] == "failed" for r in report.get("tasks", [])):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
