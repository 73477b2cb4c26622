"""The pipeline's stages, one function each, with one calling convention.

    result = stage(source, params=None, *, out=None, model=None, **options) -> StageResult

Why: four entry points run the pipeline (the ``coldrec`` CLI, the Airflow DAGs, the DVC stages,
which call the CLI, and the serving bundle). If each carried its own glue (load params, find the
data, pick the output folder) they would drift; here that glue exists once, and every entry point
only parses its arguments, calls a stage and shows the :class:`StageResult`.

- ``source`` says whose data: a :class:`Source` (a shipped dataset by name, or the user's own
  files), a dataset name as a plain string, or ``None`` for ``params.yaml``'s default dataset.
  Stages on a model version (quantize, index, bundle, gate, register) or on a dataset's models
  (promote, rollback) and feature store (apply_features, materialize) take the dataset from it too;
- ``params`` is the params.yaml dict (``None``: read and validated from the file);
- everything else is keyword-only: ``out`` the output location (``None``: the default of
  :mod:`coldrec.core.paths`), ``model`` a version directory (``None``: the dataset's latest
  trained version, the candidate), ``force`` replace an output coldrec did not write, and the
  stage's own options;
- the result carries the output ``path``, a JSON-able ``summary`` (what the CLI prints and a DAG
  task returns through XCom) and the stage's own object in ``detail`` (not serialised).

Heavy libraries (torch, Feast, Great Expectations) are imported inside the stage that needs
them, so importing this module (and the CLI) stays fast.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.config import load_params
from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed
from coldrec.data.dataset import Dataset


@dataclass(frozen=True)
class Source:
    """Where a stage's data comes from: a shipped dataset's name, or the user's own files."""

    dataset: str | None = None
    events: Path | None = None
    items: Path | None = None
    users: Path | None = None
    data_dir: Path | None = None  # where a shipped dataset's raw files are (overrides the lookup)

    def load(self, params: dict[str, Any]) -> Dataset:
        from coldrec.data.prepare import load_source

        return load_source(self.dataset, self.events, self.items, self.users, self.data_dir, params)

    def name(self, params: dict[str, Any]) -> str:
        """The dataset's name: the shipped dataset's, or the folder of the user's events file (as
        :func:`coldrec.data.dataset.from_files` names it), else params.yaml's default."""
        if self.events is not None:
            return Path(self.events).parent.name or "custom"
        return self.dataset or typed(params).data.default_dataset

    def inputs(self, params: dict[str, Any]) -> tuple[Path | None, ...]:
        """What a stage reads, which its output must never overwrite: the user's files, or the
        shipped dataset's prepared tables."""
        if self.events is not None:
            return (self.events, self.items, self.users)
        return (paths.prepared_dir(self.name(params)),)


@dataclass
class StageResult:
    stage: str
    path: Path
    summary: dict[str, Any] = field(default_factory=dict)
    detail: Any = None  # the stage's own object (Dataset, ValidationResult, ...), for the caller's display
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what a DAG task returns and a log records."""
        return {"stage": self.stage, "path": str(self.path), "seconds": round(self.seconds, 1), **self.summary}


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    return load_params() if params is None else params


def _source(source: Source | str | None) -> Source:
    if source is None:
        return Source()
    return Source(dataset=source) if isinstance(source, str) else source


def _version(model: str | Path | None, dataset: str) -> Path:
    """The version a model stage works on: ``model`` (a version directory, or a models folder: its
    latest), else the dataset's latest trained version (the candidate, not production)."""
    if model:
        return paths.resolve_model(model, pointer=paths.LATEST)
    return paths.latest_version(paths.models_dir(dataset))


def _timed(stage: str, fn) -> StageResult:
    t0 = time.perf_counter()
    result = fn()
    result.stage, result.seconds = stage, time.perf_counter() - t0
    return result


# ------------------------------------------------------------------------------------------ data
def prepare(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
            out: str | Path | None = None, force: bool = False) -> StageResult:
    """Raw files -> canonical Parquet tables (``data/<dataset>/``)."""
    from coldrec.data.prepare import prepare as run

    params, src = _params(params), _source(source)

    def go() -> StageResult:
        ds, path = run(dataset=src.dataset, events=src.events, items=src.items, users=src.users, out=out,
                       data_dir=src.data_dir, params=params, force=force)
        return StageResult("prepare", Path(path), {"dataset": ds.name, "fingerprint": ds.fingerprint(),
                                                   **ds.summary()}, ds)

    return _timed("prepare", go)


def validate(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
             out: str | Path | None = None, run_date: str | None = None, force: bool = False) -> StageResult:
    """The data validation. The result's ``summary['success']`` is False on a critical failure
    (``summary['passed']`` counts the expectations that passed); the caller decides what stops
    (``detail.raise_if_failed()``: the CLI exits 1, a DAG task fails)."""
    from coldrec.quality import validate_source

    params, src = _params(params), _source(source)

    def go() -> StageResult:
        res = validate_source(dataset=src.dataset, events=src.events, items=src.items, users=src.users,
                              data_dir=src.data_dir, out_dir=out, run_date=run_date, params=params, force=force)
        return StageResult("validate", Path(res.out_dir), {**res.counts(), "success": res.success,
                                                           "summary": res.summary_line()}, res)

    return _timed("validate", go)


# -------------------------------------------------------------------------------------- features
def build_features(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
                   out: str | Path | None = None, force: bool = False) -> StageResult:
    """Point-in-time feature tables (``data/features/<dataset>/``)."""
    from coldrec.feature_store.compute import build_feature_tables

    params, src = _params(params), _source(source)

    def go() -> StageResult:
        ds = src.load(params)
        ft = build_feature_tables(ds, out or paths.features_dir(ds.name), params, inputs=src.inputs(params), force=force)
        return StageResult("build_features", Path(ft.path), {"dataset": ds.name, "rows": dict(ft.meta["rows"])}, ft)

    return _timed("build_features", go)


FEAST_REPO_FILES = ("definitions.py", ".feastignore", "feature_store.yaml", "registry.db", "online_store.db")


def apply_features(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
                   out: str | Path | None = None, online: str | None = None, features_data: str | Path | None = None,
                   force: bool = False) -> StageResult:
    """Render a copy of ``features/`` for the dataset and online store at ``out`` and ``feast apply`` it.
    The copy is updated in place (its registry and online store persist), so the output rule is the
    ownership one: a folder coldrec did not render is refused unless ``force``."""
    from coldrec.core import outputs
    from coldrec.feature_store.repo import declarations_dir, resolve_repo
    from coldrec.feature_store.store import setup_store

    params = _params(params)
    name, online, repo = resolve_repo(_source(source).name(params), typed(params), online, out)
    outputs.check(repo, inputs=(declarations_dir(), features_data), force=force, legacy=FEAST_REPO_FILES, what="--repo")

    def go() -> StageResult:
        store = setup_store(name, online=online, features_data=features_data, repo=repo, params=params)
        (repo / outputs.MARKER).write_text('{"stage": "apply_features"}', encoding="utf-8")
        views = [fv.name for fv in store.list_feature_views()]
        return StageResult("apply_features", repo, {"dataset": name, "project": store.project, "online": online,
                                                    "feature_views": views}, store)

    return _timed("apply_features", go)


def materialize(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
                out: str | Path | None = None, online: str | None = None) -> StageResult:
    """Load the newest feature rows into the online store of the repo at ``out`` (incremental)."""
    from coldrec.feature_store.repo import resolve_repo
    from coldrec.feature_store.store import materialize as run
    from coldrec.feature_store.store import open_store

    params = _params(params)
    name, online, repo = resolve_repo(_source(source).name(params), typed(params), online, out)

    def go() -> StageResult:
        done = run(open_store(repo))
        return StageResult("materialize", repo, {"dataset": name, "online": online, "views": dict(sorted(done.items()))})

    return _timed("materialize", go)


# -------------------------------------------------------------------------------------- training
def train(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
          out: str | Path | None = None, force: bool = False, until: str | None = None,
          holdout: bool = False, reuse: bool = False) -> StageResult:
    """Fit the model and write a new version. Default ``out``: ``artifacts/models/<dataset>/<version>/``,
    and the dataset's ``latest`` pointer then names it (a candidate: serving follows ``current``,
    which only promotion moves); an explicit ``out`` is written as given. ``until``: train on
    events before that time only; ``holdout``: before the promotion gate's cut (coldrec.release.promotion_gate), so
    the gate can judge this very version on shoppers it has not seen. ``reuse``: a complete version
    of the same data, params and code is taken as it is (a rerun does not fit it again)."""
    from training.train import train as run

    params, src = _params(params), _source(source)

    def go() -> StageResult:
        ds = src.load(params)
        models = paths.models_dir(ds.name)
        cut = until
        if holdout:
            from coldrec.release.promotion_gate import gate_cutoff

            cut = gate_cutoff(ds, params)
        path, report = run(ds, params, out_dir=out, models=models, inputs=src.inputs(params), force=force, until=cut,
                           reuse=reuse)
        if out is None:
            paths.set_latest(models, path.name)
        ft = report.get("finetune", {})
        return StageResult("train", Path(path), {
            "dataset": ds.name, "version": Path(path).name, "train_seconds": report["seconds"], "until": cut,
            "finetune_steps": ft.get("steps"), "finetune_best_val_ndcg@10": ft.get("best_score"),
            "finetune_best_step": ft.get("best_step"), "finetune_stopped": ft.get("stopped"),
            "reused": bool(report.get("reused"))}, report)

    return _timed("train", go)


def quantize(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
             model: str | Path | None = None) -> StageResult:
    """int8 encoder into ``<version>/encoder_int8/``. ``model``: a version directory or a dataset's
    models folder (its latest version); default: the latest version of the source's dataset."""
    from training.quantize.stage import quantize_version

    params = _params(params)
    target = _version(model, _source(source).name(params))

    def go() -> StageResult:
        rep = quantize_version(target, params)
        keep = ("n_texts", "mean_cosine", "min_cosine", "p01_cosine", "neighbour_overlap@10", "size_ratio", "size_bytes")
        return StageResult("quantize", Path(rep["out_dir"]), {"version": target.name, **{k: rep.get(k) for k in keep}}, rep)

    return _timed("quantize", go)


def evaluate(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
             out: str | Path | None = None, split: str | None = None, seed: int | None = None,
             methods: list[str] | None = None, force: bool = False) -> StageResult:
    """The cold-start benchmark (``reports/evaluation/<dataset>/<split>/``)."""
    from training.evaluation.evaluate import evaluate as run
    from training.methods import available as available_methods

    params, src = _params(params), _source(source)
    if methods is not None:
        unknown = [m for m in methods if m not in available_methods()]
        if unknown:
            raise ColdrecError(f"--methods: unknown {', '.join(unknown)} (available: {', '.join(available_methods())})")

    def go() -> StageResult:
        ds = src.load(params)
        doc = run(ds, params, out_dir=out, split=split, seed=seed, methods=methods, inputs=src.inputs(params),
                  force=force)
        overall = {f"{r['method']}/{r['metric']}": round(r["value"], 4) for r in doc["overall"] if r["metric"] == "ndcg@10"}
        return StageResult("evaluate", Path(doc["out_dir"]), {"dataset": ds.name, "split": doc["split"],
                                                              "overall_ndcg@10": overall}, doc)

    return _timed("evaluate", go)


def index(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
          model: str | Path | None = None, uri: str | None = None) -> StageResult:
    """The version's item collection in Milvus (built once; rebuilt only if incomplete), ahead of
    its promotion: only a promotion (coldrec.release.promotion) points the production alias at it.
    Serving builds it too when missing."""
    from coldrec.runtime import item_index
    from coldrec.runtime.version import load_version

    params = _params(params)
    dataset = _source(source).name(params)
    target = _version(model, dataset)
    uri = uri or paths.milvus_uri()

    def go() -> StageResult:
        runtime = load_version(target, params)
        if uri.endswith(".db"):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        c = item_index.client(uri)
        name = item_index.collection_name(dataset, target.name)
        info = item_index.build_for_model(c, name, runtime, typed(params).serving)
        return StageResult("index", Path(uri), {"dataset": dataset, "version": target.name, **info})

    return _timed("index", go)


def bundle(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
           model: str | Path | None = None) -> StageResult:
    """A Bento (``bentoml build``) of the service with the version (default: the current one)."""
    from coldrec.core.config import settings
    from coldrec.release.bundle import build_bento

    params = _params(params)
    dataset = _source(source).name(params)
    target = _version(model, dataset)

    def go() -> StageResult:
        info = build_bento(target, dataset, settings().root)
        return StageResult("bundle", target, {k: v for k, v in info.items() if k != "spec"}, info)

    return _timed("bundle", go)


# ------------------------------------------------------------------------------- registry
def gate(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
         model: str | Path | None = None, out: str | Path | None = None) -> StageResult:
    """Judge the candidate (default: the dataset's latest version) against production
    (coldrec.release.promotion_gate); the report goes to ``reports/gate/<dataset>/<version>.json``. The result's
    ``summary['passed']`` says whether it may be promoted; a failed gate is a result, not an error."""
    from coldrec.release.promotion_gate import judge, write_report

    params, src = _params(params), _source(source)

    def go() -> StageResult:
        ds = src.load(params)
        models = paths.models_dir(ds.name)
        candidate = _version(model, ds.name)
        production = paths.current_version(models) if (models / paths.CURRENT).is_file() else None
        report = judge(ds, params, candidate, production)
        f = write_report(report, Path(out) if out else paths.gate_dir(ds.name))
        keep = ("candidate", "production", "passed", "reasons", "candidate_value", "production_value", "delta", "test_users")
        return StageResult("gate", f, {"dataset": ds.name, **{k: report.get(k) for k in keep}}, report)

    return _timed("gate", go)


def register(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
             model: str | Path | None = None) -> StageResult:
    """Register the version (default: latest) in the model registry with its lineage and, when the
    gate judged it, the gate's report. Idempotent."""
    import json

    from coldrec.release.promotion import register as run

    params = _params(params)
    dataset = _source(source).name(params)
    target = _version(model, dataset)

    def go() -> StageResult:
        f = paths.gate_dir(dataset) / f"{target.name}.json"
        report = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
        e = run(dataset, target, report)
        return StageResult("register", target, {"dataset": dataset, "version": e.version, "model_version": e.model_version,
                                                "parent": e.lineage.get("parent"),
                                                "gate": None if report is None else report.get("passed")}, e)

    return _timed("register", go)


def promote(source: Source | str | None = None, params: dict[str, Any] | None = None, *,
            version: str | None = None, uri: str | None = None, reason: str = "manual", force: bool = False) -> StageResult:
    """Make a registered version production (coldrec.release.promotion: complete versions only, atomic
    switch). ``version``: registry or model version name; default: the latest trained version."""
    from coldrec.release.promotion import promote as run

    params = _params(params)
    dataset = _source(source).name(params)

    def go() -> StageResult:
        name = version or paths.latest_version(paths.models_dir(dataset)).name
        info = run(dataset, name, params, uri=uri, reason=reason, force=force)
        return StageResult("promote", paths.models_dir(dataset), info, info)

    return _timed("promote", go)


def rollback(source: Source | str | None = None, params: dict[str, Any] | None = None, *, uri: str | None = None) -> StageResult:
    """Put back the previous production version, end to end (registry, item index alias, serving)."""
    from coldrec.release.promotion import rollback as run

    params = _params(params)
    dataset = _source(source).name(params)

    def go() -> StageResult:
        info = run(dataset, params, uri=uri)
        return StageResult("rollback", paths.models_dir(dataset), info, info)

    return _timed("rollback", go)


STAGES = {"prepare": prepare, "validate": validate, "build_features": build_features, "apply_features": apply_features,
          "materialize": materialize, "train": train, "quantize": quantize, "evaluate": evaluate,
          "index": index, "bundle": bundle, "gate": gate, "register": register, "promote": promote,
          "rollback": rollback}
