"""The product's model with fine-tuning off: a 3-6 minute check of a blend change on a real split.

    python -m research.quick_fit --dataset movielens-small --split users \
        [--set model.knn_alpha=[0.5,0.7,0.9] --set model.knn_user_weight=[none,log] ...]

Fits ``coldrec`` with the zero-shot encoder on the split's training part (validation slice,
weight search, arrival window: all as in ``coldrec evaluate``) and prints NDCG@10 per k, the
picked arrival window and the tuned blend per bucket. The numbers are not the product's (no
fine-tuning, fp32 encoder, no bootstrap); `coldrec evaluate` gives those. Notes quote it as
"zero-shot". Fine-tuning is turned off through params (``model.finetune.enabled: false``), so
every other setting is params.yaml's, except what ``--set KEY=VALUE`` overrides (a dotted
params.yaml key, the value read as YAML; an unknown key is an error). Findings so far:
``research/README.md``.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import yaml

from coldrec.core.config import load_params, settings
from coldrec.core.params import typed, with_overrides
from coldrec.data.dataset import load_prepared
from coldrec.runtime.recommender import TrainData
from training.evaluation.evaluate import score_method, seed_everything, split_for
from training.model.hybrid import ColdrecModel

ZERO_SHOT = {"model": {"finetune": {"enabled": False}}}  # the pretrained encoder as it is


def overrides(pairs: list[str]) -> dict[str, Any]:
    """``["model.knn_alpha=[0.5, 0.9]", ...]`` -> ``{"model": {"knn_alpha": [0.5, 0.9]}}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE, e.g. model.recent_days=30")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--split", default="time", choices=["time", "users", "warm"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params.yaml key (dotted, value as YAML), after fine-tuning is turned off")
    a = ap.parse_args()
    params = with_overrides(with_overrides(load_params(), ZERO_SHOT), overrides(a.set))
    seed = typed(params).seed
    seed_everything(seed)
    ds = load_prepared(settings().data_dir / a.dataset)
    split = split_for(ds, params, a.split, seed)
    train = TrainData.build(split.train_events, ds.items, seed=seed, protocol=split.name, users=ds.users)
    model = ColdrecModel(params)
    t0 = time.perf_counter()
    model.fit(train)
    print(f"fit {time.perf_counter() - t0:.0f} s (zero-shot encoder)")
    rows = score_method(model, split, train, 10, seed)
    ndcg = {("query" if r["signal"] == "query" else f"k={r['k']}"): r["value"] for r in rows if r["metric"] == "ndcg@10"}
    print("| " + " | ".join(ndcg) + " |\n|" + "---|" * len(ndcg) + "\n| " + " | ".join(f"{v:.4f}" for v in ndcg.values()) + " |")
    print("arrival window:", model.report.get("arrival_window"))
    print("co-occurrence:", model.report.get("knn"))
    for bucket, tuned in model.report.get("blend", {}).items():
        print(f"  bucket {bucket}: val {tuned['val_ndcg@10']}, {tuned['users']} cases, "
              f"{ {n: w for n, w in tuned['weights'].items() if w} }")


if __name__ == "__main__":
    main()
