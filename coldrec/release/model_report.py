"""What the web page's "Model versions" view shows, in one JSON-able document: the registry's
versions (stage, date, data fingerprint, gate result with NDCG@10 by k against production and
baselines, int8 fidelity), which version serves, the latest full evaluation's NDCG@10 by method,
and the command that promotes each version (promotion stays a command, on purpose).

Why here and not in the service: it reads files the pipeline writes (registry, gate reports,
evaluation metrics, fidelity reports), torch-free, and a CLI or a notebook may want the same view.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.errors import ColdrecError
from coldrec.runtime.version import INT8_DIR


def _json(f: Path) -> dict[str, Any] | None:
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fidelity(model_dir: Path) -> dict[str, Any] | None:
    rep = _json(model_dir / INT8_DIR / "fidelity.json")
    if rep is None:
        return None
    return {k: rep.get(k) for k in ("mean_cosine", "min_cosine", "neighbour_overlap@10", "size_ratio") if k in rep}


def evaluation(dataset: str) -> dict[str, Any] | None:
    """The newest full evaluation of the dataset (``coldrec evaluate``): NDCG@10 by method and k."""
    base = paths.evaluation_dir(dataset)
    found = sorted(base.glob("*/metrics.json"), key=lambda f: f.stat().st_mtime) + (
        [base / "metrics.json"] if (base / "metrics.json").is_file() else [])
    if not found:
        return None
    f = max(found, key=lambda f: f.stat().st_mtime)
    doc = _json(f) or {}
    table: dict[str, dict[str, float]] = {}
    for r in doc.get("results", []):
        if r.get("metric") == "ndcg@10":
            key = f"k={r['k']}" + (" query" if r["k"] == 0 and r.get("signal") == "query" else "")
            table.setdefault(r["method"], {})[key] = round(float(r["value"]), 4)
    return {"split": doc.get("split"), "table": table, "plot": (f.parent / "ndcg_vs_k.png").is_file(),
            "plot_path": str(f.parent / "ndcg_vs_k.png")}


def versions_view(dataset: str, serving: str | None, models: Path | None = None) -> dict[str, Any]:
    """The document behind the page's model view (see the module doc). ``models``: the folder of
    the dataset's versions (default: the project's)."""
    from coldrec.release.model_registry import Registry

    models = models or paths.models_dir(dataset)
    rows, note = [], None
    try:
        entries = list(reversed(Registry().entries(dataset)))
    except (ColdrecError, OSError) as exc:
        entries, note = [], f"registry unreadable: {exc}"
    for e in entries:
        gate = e.lineage.get("gate") or {}
        rows.append({
            "version": e.version, "model_version": e.model_version, "stage": e.stage or "candidate",
            "serving": e.model_version == serving, "created": e.lineage.get("created"),
            "data_fingerprint": e.lineage.get("data_fingerprint"), "code": e.lineage.get("code_version"),
            "parent": e.lineage.get("parent"), "trained_until": e.lineage.get("trained_until"),
            "gate": {"passed": gate.get("passed"), "reasons": gate.get("reasons"), "ndcg@10": gate.get("ndcg@10"),
                     "test_users": gate.get("test_users")} if gate else None,
            "fidelity": fidelity(models / e.model_version),
            "promote": f"coldrec models promote {e.version} --dataset {dataset}"})
    if not entries and note is None:
        note = ("no registered version yet: `coldrec pipeline run` trains, gates, registers and promotes one"
                if serving is None or not (models / serving).is_dir() else
                f"the serving version {serving} is not in the registry (served from a Bento or trained by hand)")
    return {"dataset": dataset, "serving": serving, "versions": rows, "note": note, "evaluation": evaluation(dataset),
            "rollback": f"coldrec models rollback --dataset {dataset}"}
