"""The product's model with fine-tuning off: a 3-6 minute check of a blend change on a real split.

    python benchmarks/quick_fit.py --dataset movielens-small --split users

Fits ``coldrec`` with the zero-shot encoder on the split's training part (validation slice,
weight search, arrival window: all as in ``coldrec evaluate``) and prints NDCG@10 per k, the
picked arrival window and the tuned blend per bucket. The numbers are not the product's (no
fine-tuning, fp32 encoder, no bootstrap); `coldrec evaluate` gives those. Notes quote it as
"zero-shot".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coldrec.config import load_params, settings  # noqa: E402
from coldrec.dataset import load_prepared  # noqa: E402
from coldrec.recommender import TrainData  # noqa: E402
from training.evaluation.evaluate import score_method, seed_everything, split_for  # noqa: E402
from training.model.hybrid import ColdrecModel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--split", default="time", choices=["time", "users", "warm"])
    a = ap.parse_args()
    params = load_params()
    seed = int(params.get("seed", 42))
    seed_everything(seed)
    ds = load_prepared(settings().data_dir / a.dataset)
    split = split_for(ds, params, a.split, seed)
    train = TrainData.build(split.train_events, ds.items, seed=seed, protocol=split.name, users=ds.users)
    model = ColdrecModel(params)
    model.cfg.finetune = False
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
