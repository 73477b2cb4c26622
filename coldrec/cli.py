"""The ``coldrec`` command. Each subcommand is a thin call into one stage function.

Errors a user can fix (bad files, unknown names) print one line and exit 2; nothing else here
has logic of its own.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from coldrec.errors import ColdrecError

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

console = Console()
err_console = Console(stderr=True)

DatasetOpt = typer.Option(None, "--dataset", "-d", help="Shipped dataset name: online-retail (default) or movielens-small.")
EventsOpt = typer.Option(None, "--events", help="Your events file (CSV/Parquet): user_id,item_id,event_type,timestamp[,value,query].")
ItemsOpt = typer.Option(None, "--items", help="Your items file (CSV/Parquet): item_id,title[,description,category,brand,price,...].")
UsersOpt = typer.Option(None, "--users", help="Optional users file (CSV/Parquet): user_id + attributes.")
DataDirOpt = typer.Option(None, "--data-dir", help="Directory holding the shipped datasets' raw files (overrides the lookup order).")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ColdrecError into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ColdrecError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def print_summary(summary: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> None:
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
    dataset: Optional[str] = DatasetOpt,
    events: Optional[Path] = EventsOpt,
    items: Optional[Path] = ItemsOpt,
    users: Optional[Path] = UsersOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: data/<dataset name>)."),
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Convert a dataset to canonical Parquet (events, items, users) and print its summary."""
    from coldrec.prepare import prepare

    with console.status("preparing dataset (reading, cleaning, checking the contract)..."):
        ds, path = prepare(dataset=dataset, events=events, items=items, users=users, out=out, data_dir=data_dir)
    print_summary(ds.summary(), ds.report.get("rules"))
    console.print(f"wrote [bold]{path}[/] (fingerprint {ds.fingerprint()})")


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    dataset: Optional[str] = DatasetOpt,
    events: Optional[Path] = EventsOpt,
    items: Optional[Path] = ItemsOpt,
    users: Optional[Path] = UsersOpt,
    data_dir: Optional[Path] = DataDirOpt,
    split: Optional[str] = typer.Option(None, "--split", help="time (cold-start users after a cutoff, default) | users (held-out users) | warm (leave-last-out)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: params.yaml seed)."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods (default: all in params.yaml)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: reports/evaluation/<dataset>/<split>)."),
) -> None:
    """Cold-start benchmark: fit every method on the split's training part, rank the full catalogue
    for each test user after revealing k items, write metrics.json + report.html + a plot."""
    from coldrec.config import load_params
    from coldrec.prepare import load_source
    from training.evaluation.evaluate import evaluate
    from training.evaluation.report import console_table

    params = load_params()
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    if chosen is not None:
        from training import methods as registry

        unknown = [m for m in chosen if m not in registry.available()]
        if unknown:
            raise ColdrecError(f"--methods: unknown {', '.join(unknown)} (available: {', '.join(registry.available())})")
    ds = load_source(dataset, events, items, users, data_dir, params)
    doc = evaluate(ds, params, out_dir=out, split=split, seed=seed, methods=chosen)
    console.print(console_table(doc))
    console.print(f"wrote [bold]{doc['out_dir']}[/]/metrics.json, report.html, ndcg_vs_k.png")


@app.command("train")
@user_errors
def train_cmd(
    dataset: Optional[str] = DatasetOpt,
    events: Optional[Path] = EventsOpt,
    items: Optional[Path] = ItemsOpt,
    users: Optional[Path] = UsersOpt,
    data_dir: Optional[Path] = DataDirOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Model directory (default: artifacts/models/<version>)."),
) -> None:
    """Fine-tune the encoder on behaviour, fit the hybrid blend, write a new model version."""
    from coldrec.config import load_params
    from coldrec.prepare import load_source
    from training.train import train

    params = load_params()
    ds = load_source(dataset, events, items, users, data_dir, params)
    path, report = train(ds, params, out_dir=out)
    ft = report.get("finetune", {})
    console.print(f"trained in {report['seconds']} s (fine-tune: {ft.get('steps')} steps, best validation NDCG@10 "
                  f"{ft.get('best_score', float('nan')):.4f} at step {ft.get('best_step')}, {ft.get('stopped')})")
    console.print(f"wrote model version [bold]{path}[/]")


@app.command("validate")
@user_errors
def validate_cmd(
    dataset: Optional[str] = DatasetOpt,
    events: Optional[Path] = EventsOpt,
    items: Optional[Path] = ItemsOpt,
    users: Optional[Path] = UsersOpt,
    data_dir: Optional[Path] = DataDirOpt,
    run_date: Optional[str] = typer.Option(None, "--run-date", help="Date the freshness and not-in-the-future checks are relative to (YYYY-MM-DD = end of that day, UTC; default: params.yaml quality.run_date, else now)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: reports/validation/<dataset>)."),
) -> None:
    """Data-quality gate (Great Expectations): run the suites of expectations/ on the data and write
    result.json + report.html (+ quarantine/). Exit 0: passed (warnings allowed); 1: a critical
    expectation failed (do not train on this batch); 2: unusable input or arguments."""
    from coldrec.quality import validate_source
    from coldrec.quality.report import console_table

    with console.status("validating (Great Expectations)..."):
        result = validate_source(dataset=dataset, events=events, items=items, users=users, data_dir=data_dir,
                                 out_dir=out, run_date=run_date)
    console.print(console_table(result))
    console.print(f"wrote [bold]{result.out_dir}[/]/result.json, report.html")
    result.raise_if_failed()


features_app = typer.Typer(help="Feature store (Feast): build feature tables, apply, materialise, look up, push.", no_args_is_help=True)
app.add_typer(features_app, name="features")
OnlineOpt = typer.Option(None, "--online", help="Online store: sqlite (embedded) or redis (default: params.yaml features.online_store).")
RepoOpt = typer.Option(None, "--repo", help="Feast repo copy to use (default: data/feast/<dataset>/<online store>).")


def _feature_target(dataset: Optional[str], online: Optional[str], repo: Optional[Path]) -> tuple[str, str, Path, dict[str, Any]]:
    from coldrec.config import load_params
    from coldrec.features.store import default_repo_dir
    from coldrec.prepare import default_dataset

    params = load_params()
    name = dataset or default_dataset(params)
    online = online or (params.get("features") or {}).get("online_store") or "sqlite"
    return name, online, repo or default_repo_dir(name, online), params


@features_app.command("build")
@user_errors
def features_build(
    dataset: Optional[str] = DatasetOpt,
    events: Optional[Path] = EventsOpt,
    items: Optional[Path] = ItemsOpt,
    users: Optional[Path] = UsersOpt,
    data_dir: Optional[Path] = DataDirOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: data/features/<dataset>)."),
) -> None:
    """Compute the point-in-time feature tables (user profiles, item popularity, item attributes)."""
    from coldrec.config import load_params
    from coldrec.features.compute import build_feature_tables
    from coldrec.features.store import default_features_data
    from coldrec.prepare import load_source

    params = load_params()
    ds = load_source(dataset, events, items, users, data_dir, params)
    with console.status("computing feature tables..."):
        ft = build_feature_tables(ds, out or default_features_data(ds.name), params)
    t = Table(title=f"feature tables {ds.name}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in ft.meta["rows"].items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    console.print(f"wrote [bold]{ft.path}[/]")


@features_app.command("apply")
@user_errors
def features_apply(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset whose feature tables to register (default: params.yaml data.default_dataset)."),
    online: Optional[str] = OnlineOpt,
    repo: Optional[Path] = RepoOpt,
    features_data: Optional[Path] = typer.Option(None, "--features-data", help="Feature tables directory (default: data/features/<dataset>)."),
) -> None:
    """Render a copy of features/ for the dataset and online store, then `feast apply` it."""
    from coldrec.features.store import setup_store

    name, online, repo, params = _feature_target(dataset, online, repo)
    store = setup_store(name, online=online, features_data=features_data, repo=repo, params=params)
    views = ", ".join(fv.name for fv in store.list_feature_views())
    console.print(f"applied project [bold]{store.project}[/] ({online}) in [bold]{repo}[/]: {views}")


@features_app.command("materialize")
@user_errors
def features_materialize(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: Optional[str] = OnlineOpt,
    repo: Optional[Path] = RepoOpt,
) -> None:
    """Load the latest feature rows into the online store (incremental after the first run)."""
    from coldrec.features.store import materialize, open_store

    name, online, repo, _ = _feature_target(dataset, online, repo)
    with console.status("materialising..."):
        done = materialize(open_store(repo))
    for view, how in sorted(done.items()):
        console.print(f"{view}: {how} -> {online}")


@features_app.command("get")
@user_errors
def features_get(
    user_id: str = typer.Argument(..., help="The user whose online profile to print."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: Optional[str] = OnlineOpt,
    repo: Optional[Path] = RepoOpt,
) -> None:
    """Print a user's online feature profile as JSON (an unknown user prints the cold profile)."""
    import json

    from coldrec.features.store import get_user_profile, open_store

    _, _, repo, _ = _feature_target(dataset, online, repo)
    console.print_json(json.dumps(get_user_profile(open_store(repo), user_id), default=str))


@features_app.command("push")
@user_errors
def features_push(
    user_id: str = typer.Argument(..., help="The user the event belongs to."),
    item_id: Optional[str] = typer.Argument(None, help="The item (omit for a search event)."),
    event_type: str = typer.Option("view", "--event-type", "-e", help="view, click, add_to_cart, purchase, search or rate."),
    query: Optional[str] = typer.Option(None, "--query", help="Text of a search event."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset (default: params.yaml data.default_dataset)."),
    online: Optional[str] = OnlineOpt,
    repo: Optional[Path] = RepoOpt,
) -> None:
    """Push one live event into the user's online profile (what the serving feedback API does)."""
    import json

    from coldrec.features.store import open_store, push_event

    _, _, repo, params = _feature_target(dataset, online, repo)
    fp = params.get("features") or {}
    prof = push_event(open_store(repo), {"user_id": user_id, "item_id": item_id, "event_type": event_type, "query": query},
                      recent_n=fp.get("recent_items"), top_k=fp.get("top_categories"))
    console.print_json(json.dumps(prof, default=str))


@app.command("quantize")
@user_errors
def quantize_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Model version directory written by `coldrec train`."),
) -> None:
    """Export the version's encoder to ONNX, quantize it to int8 (ONNX Runtime) and write it with
    its item vectors and a fidelity report (fidelity.json/.html) to <model>/encoder_int8/, which
    serving then loads by default. Exit 1 if the mean cosine to fp32 is below quantize.min_mean_cosine."""
    from coldrec.config import load_params
    from training.quantize import quantize_version

    with console.status("exporting, quantizing and checking fidelity..."):
        rep = quantize_version(model, load_params())
    t = Table(title="int8 encoder fidelity (vs fp32)", show_header=False)
    for key in ("n_texts", "mean_cosine", "min_cosine", "p01_cosine", "neighbour_overlap@10", "size_ratio"):
        if rep.get(key) is not None:
            t.add_row(key.replace("_", " "), f"{rep[key]:.4f}" if isinstance(rep[key], float) else str(rep[key]))
    sizes = rep.get("size_bytes", {})
    t.add_row("size fp32 / int8", f"{sizes.get('fp32', 0) / 1e6:.1f} MB / {sizes.get('int8', 0) / 1e6:.1f} MB")
    console.print(t)
    console.print(f"wrote [bold]{rep['out_dir']}[/] (model.onnx, item_vectors.npy, fidelity.json, fidelity.html)")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
