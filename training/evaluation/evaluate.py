"""Stage ``evaluate``: fit every method on a split's training part and rank the full catalogue
for each test user; write ``metrics.json`` (tidy rows), ``report.html`` and ``ndcg_vs_k.png``.

Every method, the product's own included, is fit here with ``params.yaml`` defaults, so the
table on a dataset nobody has seen before is an honest side-by-side.
"""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core import outputs, paths, progress
from coldrec.core.errors import DataError
from coldrec.core.params import typed
from coldrec.data.dataset import Dataset
from coldrec.runtime.recommender import Recommender, TrainData
from training import methods as method_registry
from training.evaluation.metrics import bootstrap_ci, top_n, user_metrics
from training.evaluation.splits import QUERY, Split, make_split

CUTOFFS = (10, 20)
REPORT_FILES = ("metrics.json", "report.html", "ndcg_vs_k.png")  # what an evaluation directory holds
BATCH = 256


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def split_for(ds: Dataset, params: dict[str, Any], split: str | None = None, seed: int | None = None) -> Split:
    p = typed(params)
    ep = p.evaluation
    split = split or ep.split
    seed = int(seed if seed is not None else p.seed)
    titles = dict(zip(ds.items["item_id"], ds.items["title"])) if ep.query_probe else None
    return make_split(ds.events, split, list(ep.ks), cutoff=ep.time_cutoff.get(ds.name),
                      holdout=ep.user_holdout, seed=seed, max_users=ep.max_test_users,
                      dataset=ds.name, titles=titles, users=ds.users)


def score_method(model: Recommender, split: Split, train: TrainData, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Tidy metric rows for one fitted method over every k of the split."""
    rows: list[dict[str, Any]] = []
    cold_idx = np.array(train.known(sorted(split.cold_items)), dtype=np.int64)
    for key, cases in split.cases.items():
        k = 0 if key == QUERY else int(key)
        signal = "query" if key == QUERY or any(c.signals.query for c in cases) else ("items" if k else "none")
        base = {"method": model.name, "k": k, "signal": signal}
        per_user: dict[str, list[float]] = {f"{m}@{n}": [] for n in CUTOFFS for m in ("ndcg", "recall", "hit", "mrr")}
        shown: dict[int, set[int]] = {n: set() for n in CUTOFFS}
        cold_slots = cold_hits = cold_targets = slots = 0
        for start in range(0, len(cases), BATCH):
            batch = cases[start:start + BATCH]
            scores = model.score([c.signals for c in batch])
            for case, s in zip(batch, scores):
                targets = np.array(train.known(case.targets), dtype=np.int64)
                if len(targets) == 0:
                    continue
                excluded = np.array(train.known(case.signals.items + case.exclude), dtype=np.int64)
                ranked = top_n(s, targets, max(CUTOFFS), excluded)
                for n in CUTOFFS:
                    um = user_metrics(ranked, targets, n)
                    for m in ("ndcg", "recall", "hit", "mrr"):
                        per_user[f"{m}@{n}"].append(getattr(um, m))
                    shown[n].update(ranked[:n].tolist())
                top10 = ranked[:10]
                slots += len(top10)
                cold_slots += int(np.isin(top10, cold_idx).sum())
                cold_t = targets[np.isin(targets, cold_idx)]
                cold_targets += len(cold_t)
                cold_hits += int(np.isin(cold_t, top10).sum())
        n_users = len(per_user["ndcg@10"])
        if n_users == 0:
            continue
        for metric, values in per_user.items():
            ci = list(bootstrap_ci(np.array(values), n_boot, seed)) if metric == "ndcg@10" and n_boot > 0 else None
            rows.append({**base, "metric": metric, "value": float(np.mean(values)), "n_users": n_users, "ci95": ci})
        for n in CUTOFFS:
            rows.append({**base, "metric": f"coverage@{n}", "value": len(shown[n]) / train.n_items, "n_users": n_users,
                         "ci95": None})
        rows.append({**base, "metric": "cold_item_share@10", "value": cold_slots / max(slots, 1), "n_users": n_users,
                     "ci95": None})
        rows.append({**base, "metric": "cold_item_recall@10", "value": cold_hits / cold_targets if cold_targets else 0.0,
                     "n_users": n_users, "ci95": None, "n_targets": cold_targets})
    return rows


def overall(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method and metric: the user-weighted mean over k >= 1 (every revealed-history case)."""
    out = []
    keys = sorted({(r["method"], r["metric"]) for r in rows if r["k"] >= 1 and not r["metric"].startswith(("coverage", "cold"))})
    for method, metric in keys:
        sel = [r for r in rows if r["method"] == method and r["metric"] == metric and r["k"] >= 1]
        n = sum(r["n_users"] for r in sel)
        out.append({"method": method, "metric": metric, "value": sum(r["value"] * r["n_users"] for r in sel) / n, "n_cases": n})
    return out


def headline(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """NDCG@10 per method as plain numbers (``overall``, ``k0``, ``k1``, ..., ``k0_query``): DVC's
    metrics commands read scalars in mappings, not rows in lists, so ``dvc metrics diff`` and
    ``dvc exp show`` compare these."""
    out: dict[str, dict[str, float]] = {}
    for r in overall(rows):
        if r["metric"] == "ndcg@10":
            out.setdefault(r["method"], {})["overall"] = round(r["value"], 5)
    for r in rows:
        if r["metric"] == "ndcg@10":
            key = f"k{r['k']}" + ("_query" if r["k"] == 0 and r["signal"] == "query" else "")
            out.setdefault(r["method"], {})[key] = round(r["value"], 5)
    return out


def evaluate(ds: Dataset, params: dict[str, Any], out_dir: str | Path | None = None, split: str | None = None,
             seed: int | None = None, methods: list[str] | None = None,
             extra_methods: dict[str, Callable[[], Recommender]] | None = None,
             on_method: Callable[[str, float], None] | None = None,
             inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> dict[str, Any]:
    """Run the protocol; returns the metrics document (also written to ``out_dir``).

    The output location is checked before any fitting (:mod:`coldrec.core.outputs`), and a split in
    which no test user can be scored is an error before any fitting too: an empty table is no
    result, and it must never replace a previous good ``metrics.json``."""
    p = typed(params)
    ep = p.evaluation
    seed = int(seed if seed is not None else p.seed)
    seed_everything(seed)
    target = outputs.check(Path(out_dir) if out_dir else paths.evaluation_dir(ds.name, split or ep.split),
                           inputs=inputs, force=force, legacy=REPORT_FILES)
    s = split_for(ds, params, split, seed)
    train = TrainData.build(s.train_events, ds.items, seed=seed, protocol=s.name, users=ds.users)
    scorable = sum(1 for cases in s.cases.values() for c in cases if train.known(c.targets))
    if not scorable:
        n_test = len({c.user_id for cases in s.cases.values() for c in cases})
        raise DataError(f"evaluate {ds.name}/{s.name}: no test user can be scored ({n_test} test users, "
                        f"{train.n_items} catalogue items): none has a later item that is in the catalogue. "
                        "Do the events' item ids match the items' ids (same type and spelling)?")
    names = methods or list(ep.methods or method_registry.available())
    extra = extra_methods or {}
    factories: dict[str, Callable[[], Recommender]] = {
        n: extra.get(n) or (lambda n=n: method_registry.make(n, params)) for n in names}
    factories.update({n: f for n, f in extra.items() if n not in factories})
    rows: list[dict[str, Any]] = []
    timing: dict[str, dict[str, float]] = {}
    n_boot = ep.bootstrap
    for name, factory in (bar := progress.bar(factories.items(), desc=f"evaluate {ds.name}/{s.name}", unit="method")):
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        model = factory().fit(train)
        model.name = name
        t1 = time.perf_counter()
        rows += score_method(model, s, train, n_boot, seed)
        timing[name] = {"fit_s": round(t1 - t0, 2), "score_s": round(time.perf_counter() - t1, 2)}
        if on_method:
            on_method(name, time.perf_counter() - t0)
    if not rows:
        raise DataError(f"evaluate {ds.name}/{s.name}: no method scored any test user; nothing written")
    doc = {
        "dataset": ds.name,
        "split": s.name,
        "seed": seed,
        "split_info": {**s.info, "cold_items": len(s.cold_items), "catalogue": train.n_items,
                       "cases_per_k": {str(k): len(v) for k, v in s.cases.items()},
                       "query_probe": QUERY in s.cases,
                       "profile_attributes": [] if ds.users is None else [c for c in ds.users.columns if c != "user_id"]},
        "results": rows,
        "overall": overall(rows),
        "ndcg@10": headline(rows),
        "timing": timing,
    }
    from training.evaluation.report import write_report

    with outputs.owned_dir(target, stage="evaluate", inputs=inputs, force=force, legacy=REPORT_FILES) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        write_report(doc, tmp)
    doc["out_dir"] = str(target)
    return doc
