"""The retrain pipeline's steps, as plain functions the Airflow tasks call (dags/), plus the run
report. Each step takes names (dataset, version), not objects, and returns a JSON-able dict: a
task may run in another process or on another machine (Celery), and its result travels by XCom.

The same steps are the ``coldrec`` CLI's commands and the DVC stages' commands; they all end in
:mod:`coldrec.orchestration.stages`. Nothing here decides hyperparameters: ``params.yaml`` does.

**The run policy lives here and only here**: which data a run takes (:func:`source`), that a
critical validation failure stops the run without retry (:func:`validate`), that the candidate
trains on events before the gate's cut and an identical version is reused (:func:`train`), that a
version's existing int8 encoder is kept (:func:`quantize`), that the Bento is skipped when
``pipeline.bundle`` is false (:func:`bundle`), and that only a candidate the gate passed is
promoted (:func:`promote`). The other steps only forward to their stage.
"""
from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.config import load_params
from coldrec.core.errors import ColdrecError
from coldrec.core.outputs import write_atomic
from coldrec.core.params import typed
from coldrec.orchestration import stages

# the retrain DAG's tasks, in order (the run report lists them so)
STEPS = ("prepare", "validate", "features", "train", "quantize", "gate", "register", "index", "bundle", "promote")


class ValidationFailed(ColdrecError):
    """Critical data-quality failure: the run stops here (no retry: the data will not change)."""


def source(conf: dict[str, Any] | str | None) -> stages.Source:
    """A run's data: a shipped dataset by name (``{"dataset": "online-retail"}``), or files in the
    canonical schema (``{"events": ..., "items": ..., "users": ...}``; the dataset is then named
    after the events file's folder, as everywhere in coldrec)."""
    conf = {"dataset": conf} if isinstance(conf, str) or conf is None else conf
    if conf.get("events"):
        return stages.Source(events=Path(conf["events"]), items=Path(conf["items"]) if conf.get("items") else None,
                             users=Path(conf["users"]) if conf.get("users") else None)
    return stages.Source(dataset=conf.get("dataset") or typed(load_params()).data.default_dataset)


def dataset_name(conf: dict[str, Any] | str | None) -> str:
    return source(conf).name(load_params())


def _model(dataset: str, version: str) -> Path:
    d = paths.models_dir(dataset) / version
    if not d.is_dir():
        raise ColdrecError(f"{dataset}: model version {version!r} not found in {paths.models_dir(dataset)}")
    return d


def prepare(conf: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Raw files -> canonical tables (a shipped dataset; own files are read as they are)."""
    src = source(conf)
    if src.events is not None:
        return {"stage": "prepare", "skipped": "own files in the canonical schema", "dataset": dataset_name(conf)}
    return stages.prepare(src).to_dict()


def validate(conf: dict[str, Any] | str | None = None, run_date: str | None = None) -> dict[str, Any]:
    """Validation: a critical failure raises :class:`ValidationFailed`; warnings are in the result."""
    res = stages.validate(source(conf), run_date=run_date)
    out = res.to_dict()
    if not res.detail.success:
        raise ValidationFailed(f"data validation failed for {dataset_name(conf)}: {res.summary.get('summary')} "
                                f"(report: {res.path})")
    return out


def features(conf: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """Feature tables, then the Feast registry and online store (apply, materialise)."""
    ds = dataset_name(conf)
    built = stages.build_features(source(conf))
    applied = stages.apply_features(ds)
    loaded = stages.materialize(ds)
    return {"stage": "features", "seconds": round(built.seconds + applied.seconds + loaded.seconds, 1),
            "rows": built.summary.get("rows"), "online": applied.summary.get("online"),
            "views": loaded.summary.get("views")}


def train(conf: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """A candidate trained on events before the gate's cut (so the gate can judge it fairly)."""
    return stages.train(source(conf), holdout=True, reuse=True).to_dict()


def quantize(conf: dict[str, Any] | str | None, version: str) -> dict[str, Any]:
    """The int8 encoder (skipped when the version already has one: it is installed only whole)."""
    from coldrec.runtime.version import INT8_DIR

    dataset = dataset_name(conf)
    model = _model(dataset, version)
    if (model / INT8_DIR / "fidelity.json").is_file():
        return {"stage": "quantize", "version": version, "skipped": "the version already has its int8 encoder"}
    return stages.quantize(dataset, model=model).to_dict()


def gate(conf: dict[str, Any] | str | None, version: str) -> dict[str, Any]:
    return stages.gate(source(conf), model=_model(dataset_name(conf), version)).to_dict()


def register(conf: dict[str, Any] | str | None, version: str) -> dict[str, Any]:
    dataset = dataset_name(conf)
    return stages.register(dataset, model=_model(dataset, version)).to_dict()


def index(conf: dict[str, Any] | str | None, version: str) -> dict[str, Any]:
    dataset = dataset_name(conf)
    return stages.index(dataset, model=_model(dataset, version)).to_dict()


def bundle(conf: dict[str, Any] | str | None, version: str) -> dict[str, Any]:
    if not typed(load_params()).pipeline.bundle:
        return {"stage": "bundle", "skipped": "pipeline.bundle is false"}
    dataset = dataset_name(conf)
    return stages.bundle(dataset, model=_model(dataset, version)).to_dict()


def promote(conf: dict[str, Any] | str | None, version: str, gate_result: dict[str, Any]) -> dict[str, Any]:
    """Promote when the gate passed; otherwise keep production and say why (not an error: a worse
    candidate is an expected outcome of a retrain)."""
    dataset = dataset_name(conf)
    if not gate_result.get("passed"):
        return {"stage": "promote", "promoted": False, "version": version,
                "kept": gate_result.get("production"), "reasons": gate_result.get("reasons")}
    res = stages.promote(dataset, version=version, reason="retrain: gate passed").to_dict()
    return {**res, "promoted": True}


# ------------------------------------------------------------------------------------ report
def write_report(dataset: str, run_id: str, results: dict[str, Any], states: dict[str, str]) -> dict[str, Any]:
    """The run's report (JSON + HTML): per-task state and seconds, the gate's comparison, the
    promotion decision. Written even when a task failed (it says which)."""
    gate_result = results.get("gate") or {}
    promo = results.get("promote") or {}
    doc = {"dataset": dataset, "run_id": run_id, "written": datetime.now(UTC).isoformat(timespec="seconds"),
           "tasks": [{"task": t, "state": states.get(t, "none"), "seconds": (results.get(t) or {}).get("task_seconds")}
                     for t in STEPS],
           "candidate": (results.get("train") or {}).get("version"),
           "gate": gate_result, "promotion": promo,
           "outcome": _outcome(states, promo, gate_result)}
    out = paths.pipeline_report_dir(dataset)
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    doc["path"] = str(out / f"{safe}.json")
    text = json.dumps(doc, indent=2, default=str)
    for name, content in ((f"{safe}.json", text), (f"{safe}.html", _html(doc)), ("latest.json", text)):
        write_atomic(out / name, content)
    return doc


def _outcome(states: dict[str, str], promo: dict[str, Any], gate_result: dict[str, Any]) -> str:
    failed = [t for t in STEPS if states.get(t) == "failed"]
    if failed:
        return f"failed at {failed[0]}: production unchanged"
    if promo.get("promoted") and not promo.get("changed", True):
        return f"production unchanged: {promo.get('version')} ({promo.get('model_version')}) already is production"
    if promo.get("promoted"):
        return f"promoted {promo.get('version')} ({promo.get('model_version')})"
    if promo:
        return "not promoted: " + "; ".join(promo.get("reasons") or gate_result.get("reasons") or [])
    return "incomplete"


def _html(doc: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(t['task'])}</td><td>{e(t['state'])}</td><td>{'' if t['seconds'] is None else t['seconds']}</td></tr>"
                   for t in doc["tasks"])
    g = doc.get("gate") or {}
    ndcg = g.get("ndcg@10") or {}
    ks = sorted({k for v in ndcg.values() for k in v}, key=int)
    grow = "".join(f"<tr><td>{e(role)}</td>" + "".join(f"<td>{v.get(k, '')}</td>" for k in ks) + "</tr>"
                   for role, v in ndcg.items())
    return (f"<!doctype html><meta charset=utf-8><title>coldrec retrain {e(doc['run_id'])}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd}</style>"
            f"<h1>retrain {e(doc['dataset'])}</h1><p><b>{e(doc['outcome'])}</b></p>"
            f"<p>run {e(doc['run_id'])}, candidate {e(str(doc.get('candidate')))}, production {e(str(g.get('production')))}</p>"
            f"<h2>tasks</h2><table><tr><th>task</th><th>state</th><th>seconds</th></tr>{rows}</table>"
            f"<h2>gate: cold-start NDCG@10 by revealed items k</h2><table><tr><th></th>"
            + "".join(f"<th>k={e(k)}</th>" for k in ks) + f"</tr>{grow}</table>"
            f"<p>{e('; '.join(g.get('reasons') or []))}</p>")
