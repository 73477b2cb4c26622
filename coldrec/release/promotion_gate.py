"""The promotion gate: may a candidate version replace production?

Both *saved versions* (the artifacts that would be served, int8 encoder included) are scored by
the evaluation harness (:func:`training.evaluation.evaluate.score_method`) on the same cold-start
shoppers: those who first arrived after the gate's cut and after both versions' training data
ended (``trained_until`` in their metadata), so neither has seen them; that is what "without
leakage" means here. The retrain pipeline trains its candidate on events before the cut
(``coldrec train --holdout``) for exactly this reason.

It passes when
- the candidate's int8 encoder passed its fidelity check (``quantize.min_mean_cosine``), and
- its NDCG@10 at ``registry.gate_k`` revealed items is not below production's by more than
  ``registry.tolerance`` (no production yet: the fidelity check alone).
Every number and the reason go into the report, which the pipeline's run report shows, beside
the baselines of ``registry.gate_baselines`` fitted on the same events and scored on the same
shoppers (context for the reader; they do not decide).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core.outputs import write_atomic
from coldrec.core.params import typed
from coldrec.data.dataset import Dataset
from coldrec.runtime.recommender import Recommender, Signals, TrainData
from coldrec.runtime.version import INT8_DIR, read_metadata
from training.evaluation.evaluate import score_method
from training.evaluation.splits import time_split

METRIC = "ndcg@10"


def gate_cutoff(ds: Dataset, params: dict[str, Any]) -> str:
    """The cut between what a candidate trains on and the shoppers it is judged on: the
    evaluation's time cutoff for the dataset, else the 80% quantile of its event times (as the
    evaluation's time split)."""
    configured = typed(params).evaluation.time_cutoff.get(ds.name)
    cut = pd.Timestamp(configured) if configured else ds.events["timestamp"].quantile(0.8)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    return cut.isoformat()


class SavedVersion(Recommender):
    """A saved version (int8, as served) scoring the current catalogue: its columns are mapped to
    the catalogue's order; items it does not know rank last."""

    uses_text = True

    def __init__(self, path: Path, params: dict[str, Any], train: TrainData):
        from coldrec.runtime.version import load_version

        self.runtime = load_version(path, params)
        self.name = path.name
        self.train = train
        own = self.runtime.train.item_ids
        cols = np.array([train.item_index.get(i, -1) for i in own], dtype=np.int64)
        self._keep = np.flatnonzero(cols >= 0)
        self._cols = cols[self._keep]

    def fit(self, train: TrainData) -> SavedVersion:
        return self

    def has_signal(self, profile: Signals) -> bool:
        return True

    def score(self, profiles: list[Signals]) -> np.ndarray:
        own = self.runtime.score(profiles)
        out = np.full((len(profiles), self.train.n_items), -np.inf, dtype=np.float32)
        out[:, self._cols] = own[:, self._keep]
        return out


def trained_until(path: Path) -> pd.Timestamp | None:
    """When a version's training data ended (None: a version from before this was recorded)."""
    value = read_metadata(path).get("trained_until")
    return pd.Timestamp(value).tz_convert("UTC") if value else None


def fidelity(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    floor = typed(params).quantize.min_mean_cosine
    f = path / INT8_DIR / "fidelity.json"
    if not f.is_file():
        return {"passed": False, "reason": f"no int8 fidelity report ({f} missing: run `coldrec quantize`)"}
    rep = json.loads(f.read_text(encoding="utf-8"))
    mean = float(rep.get("mean_cosine", 0.0))
    ok = mean >= floor
    return {"passed": ok, "mean_cosine": round(mean, 5), "min_mean_cosine": floor,
            "reason": None if ok else f"int8 mean cosine {mean:.4f} < {floor}"}


def judge(ds: Dataset, params: dict[str, Any], candidate: Path, production: Path | None) -> dict[str, Any]:
    """The gate's report (JSON-able); ``passed`` says whether the candidate may be promoted."""
    p = typed(params)
    rp = p.registry
    report: dict[str, Any] = {"dataset": ds.name, "candidate": candidate.name,
                              "production": production.name if production else None,
                              "metric": f"{METRIC} at k={rp.gate_k}", "tolerance": rp.tolerance}
    fid = fidelity(candidate, params)
    report["fidelity"] = fid
    reasons = []
    if rp.require_fidelity and not fid["passed"]:
        reasons.append(fid["reason"])
    if production is not None and production.resolve() == candidate.resolve():
        report.update(passed=not reasons, reasons=reasons or ["the candidate is the production version"])
        return report

    cut = pd.Timestamp(gate_cutoff(ds, params))
    until = {v.name: trained_until(v) for v in (candidate, production) if v is not None}
    bound = max([cut, *(t for t in until.values() if t is not None)])
    missing = [name for name, t in until.items() if t is None]
    report["cutoff"] = bound.isoformat()
    if missing:
        reasons.append(f"{', '.join(missing)}: no trained_until in metadata (trained before the gate existed): "
                       "cannot tell which shoppers it has seen")
    s = time_split(ds.events, bound, list(p.evaluation.ks), max_users=rp.gate_max_users, seed=p.seed, users=ds.users)
    report["test_users"] = s.info["test_users"]
    if not missing and not any(s.cases.get(rp.gate_k, [])):
        reasons.append(f"no shopper arrived after {bound.isoformat()} with {rp.gate_k}+ items: nothing to judge on "
                       "(was the candidate trained on every event? the pipeline trains it with --holdout)")
    if not missing and any(s.cases.get(rp.gate_k, [])):
        train = TrainData.build(s.train_events, ds.items, seed=p.seed, users=ds.users)
        scores = {}
        for role, path in (("candidate", candidate), ("production", production)):
            if path is None:
                continue
            rows = score_method(SavedVersion(path, params, train), s, train, n_boot=0, seed=p.seed)
            scores[role] = {str(r["k"]): round(r["value"], 5) for r in rows if r["metric"] == METRIC}
            scores[role + "_users"] = {str(r["k"]): r["n_users"] for r in rows if r["metric"] == METRIC}
        from training import methods as method_registry

        for name in rp.gate_baselines:  # context for the report, not part of the decision
            model = method_registry.make(name, params).fit(train)
            model.name = name
            rows = score_method(model, s, train, n_boot=0, seed=p.seed)
            scores[name] = {str(r["k"]): round(r["value"], 5) for r in rows if r["metric"] == METRIC}
        report["ndcg@10"] = {r: v for r, v in scores.items() if not r.endswith("_users")}
        report["n_users"] = scores.get("candidate_users", {})
        k = str(rp.gate_k)
        cand = scores["candidate"].get(k)
        report["candidate_value"] = cand
        if production is not None:
            prod = scores["production"].get(k)
            report["production_value"] = prod
            report["delta"] = None if cand is None or prod is None else round(cand - prod, 5)
            if cand is None or prod is None:
                reasons.append(f"no scorable shopper at k={k}")
            elif cand < prod - rp.tolerance:
                reasons.append(f"candidate NDCG@10 at k={k} {cand:.4f} is below production {prod:.4f} "
                               f"by more than the tolerance {rp.tolerance}")
    report["passed"] = not reasons
    report["reasons"] = reasons or ["candidate not worse than production" if production is not None
                                    else "no production version yet; fidelity passed"]
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    return write_atomic(out_dir / f"{report['candidate']}.json", json.dumps(report, indent=2, default=str))
