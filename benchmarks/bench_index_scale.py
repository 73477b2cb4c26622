"""Two-stage ranking at catalogue scale: a synthetic catalogue (vectors + co-occurrence) of N
items in a Milvus Lite collection, ranked the way the service ranks, beside the NumPy floor.

    python -m benchmarks.bench_index_scale [--items 100000] [--queries 200] [--threads 8]
        [--inproc-milvus] [--index HNSW|FLAT] [--model artifacts/models/online-retail]

``--model``: a real version's catalogue, vectors and co-occurrence instead of the synthetic ones.

Synthetic catalogue (seeded): 384-d unit vectors around 1,000 clusters; each item's
co-occurrence row holds ~20 neighbours in its cluster (knn and session); popularity Zipf-like,
10% never bought (new arrivals). The blend weights are the product's defaults for 3 items.
Profiles: 3 random bought items each. Reported (ms):
  sequential  one ``CandidateRanker.rank`` at a time (one index search per request);
  concurrent  ``--threads`` threads, the service's batching index (searches shared);
  floor       brute-force NumPy top-200 of the profile vector over the same vectors;
  recall      share of the brute-force top-200 the index returns for the profile vector;
plus build time, and peak RSS of this process and of the Milvus process.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def synthetic_model(n: int, dim: int = 384, seed: int = 0):
    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.runtime.attributes import AttributePopularity
    from coldrec.runtime.blend import DEFAULT_WEIGHTS
    from coldrec.runtime.parts import ArrivalHistory, CollaborativeParts
    from coldrec.runtime.recommender import TrainData
    from coldrec.runtime.scorer import ColdrecRuntime

    rng = np.random.default_rng(seed)
    k = 1000
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    cluster = rng.integers(0, k, n)
    vecs = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        vecs[s:e] = centres[cluster[s:e]] + 0.8 * rng.normal(size=(e - s, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    order = np.argsort(cluster, kind="stable")
    rank_in = np.empty(n, np.int64)
    rank_in[order] = np.arange(n)
    rows = np.repeat(np.arange(n), 20)
    # neighbours: nearby positions in the cluster-sorted order (same cluster, mostly)
    cols = order[np.clip(rank_in[rows] + rng.integers(-30, 31, len(rows)), 0, n - 1)]
    vals = rng.random(len(rows)).astype(np.float32)
    knn = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    knn.setdiag(0)
    knn.eliminate_zeros()
    pop = np.log1p(rng.zipf(1.6, n).clip(max=10_000)).astype(np.float32)
    pop[rng.random(n) < 0.1] = 0
    items = pd.DataFrame({"item_id": [f"s{i}" for i in range(n)], "title": [f"item {i}" for i in range(n)],
                          "price": rng.uniform(1, 100, n).round(2)})
    p = typed(load_params())
    model = ColdrecRuntime(p.model, p.encoder.item_template, p.encoder.max_chars)
    empty = pd.DataFrame({"user_id": pd.Series([], dtype=object), "item_id": pd.Series([], dtype=object),
                          "event_type": pd.Series([], dtype=object),
                          "timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})
    model.train = TrainData.build(empty, items)
    model.item_vecs = vecs
    model.parts = CollaborativeParts(knn, knn, pop, pop * rng.random(n).astype(np.float32), (pop == 0).astype(np.float32),
                                     ArrivalHistory(np.zeros(0, np.int64), np.zeros(0, np.int64), n),
                                     AttributePopularity.empty(n))
    model.weights = {b: dict(w) for b, w in DEFAULT_WEIGHTS.items()}
    model._popularity = pop
    return model


def pct(xs) -> tuple[float, float]:
    return float(np.percentile(xs, 50)) * 1e3, float(np.percentile(xs, 99)) * 1e3


def rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--inproc-milvus", action="store_true")
    ap.add_argument("--index", default="HNSW", choices=["HNSW", "FLAT"])
    ap.add_argument("--model", default=None, help="a real model version (or models folder) instead of the synthetic catalogue")
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread, as the service runs (serving/launch.py SINGLE_THREADED)

    from coldrec.runtime import item_index
    from coldrec.runtime.candidates import CandidateRanker
    from coldrec.runtime.recommender import Signals
    from serving import launch

    t0 = time.perf_counter()
    if a.model:
        from coldrec.core.paths import resolve_model
        from coldrec.runtime.version import load_version

        model = load_version(resolve_model(a.model))
        a.items = model.train.n_items
    else:
        model = synthetic_model(a.items)
    t_synth = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="coldrec-scale-"))
    proc = None
    uri = str(work / "milvus.db")
    if not a.inproc_milvus:
        proc, uri = launch.start_milvus_lite(uri, work / "milvus.log")
    try:
        c = item_index.client(uri)
        t0 = time.perf_counter()
        spec = ({"index_type": "FLAT", "metric_type": "COSINE", "params": {}} if a.index == "FLAT" else
                {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 16, "efConstruction": 200}})
        item_index.build_collection(c, "scale", model.train.items, model.item_vecs, model.parts.pop > 0, spec)
        t_build = time.perf_counter() - t0
        from coldrec.core.config import load_params
        from coldrec.core.params import typed

        sizes = item_index.candidate_sizes(typed(load_params()).serving)  # as the service ranks
        plain = item_index.MilvusItemIndex(c, "scale")
        ranker = CandidateRanker(model, plain, sizes)
        rng = np.random.default_rng(1)
        bought = np.flatnonzero(model.parts.pop > 0)
        ids = model.train.item_ids
        profiles = [Signals(items=[str(ids[i]) for i in rng.choice(bought, 3, replace=False)], event_types=["view"] * 3)
                    for _ in range(a.queries)]
        for p in profiles[:5]:
            ranker.rank([p])
        seq = []
        for p in profiles:
            t = time.perf_counter()
            ranker.rank([p])
            seq.append(time.perf_counter() - t)
        batching = CandidateRanker(model, item_index.BatchingIndex(plain), sizes)
        conc: list[float] = []
        lock = threading.Lock()

        def worker(chunk):
            for p in chunk:
                t = time.perf_counter()
                batching.rank([p])
                with lock:
                    conc.append(time.perf_counter() - t)

        threads = [threading.Thread(target=worker, args=(profiles[i::a.threads],)) for i in range(a.threads)]
        t_wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_wall = time.perf_counter() - t_wall
        users = model._user_vectors(model.train, profiles)
        floor, recall = [], []
        for u in users:
            t = time.perf_counter()
            sims = model.item_vecs @ u
            top = np.argpartition(-sims, 200)[:200]
            top = top[np.argsort(-sims[top])]
            floor.append(time.perf_counter() - t)
        hits = plain.search(users[:50], 200)
        for u, (rows, _) in zip(users[:50], hits):
            sims = model.item_vecs @ u
            truth = set(np.argpartition(-sims, 200)[:200].tolist())
            recall.append(len(truth & set(rows.tolist())) / 200)
        layout = "in the ranking process" if a.inproc_milvus else "in its own process"
        what = f"items of {a.model}" if a.model else "synthetic items"
        print(f"\n### {a.items:,} {what}, {a.index}, Milvus Lite {layout}\n")
        print(f"catalogue {t_synth:.1f} s; collection build (insert, flush, index, load) {t_build:.1f} s; "
              f"recall of the index's top-200 vs brute force: {np.mean(recall):.3f}")
        print("\n| measure | p50 ms | p99 ms | req/s |")
        print("| --- | ---: | ---: | ---: |")
        s50, s99 = pct(seq)
        print(f"| two-stage rank, sequential | {s50:.1f} | {s99:.1f} | {1e3 / s50:.0f} |")
        c50, c99 = pct(conc)
        print(f"| two-stage rank, {a.threads} threads, batched searches | {c50:.1f} | {c99:.1f} | {len(conc) / t_wall:.0f} |")
        f50, f99 = pct(floor)
        print(f"| NumPy floor: brute-force top-200 | {f50:.2f} | {f99:.2f} | {1e3 / f50:.0f} |")
        print(f"\nratio sequential p50 / floor p50: {s50 / f50:.1f}x; peak RSS: this process {rss_mb():.0f} MB, "
              f"Milvus process {rss_mb(proc.pid) if proc else float('nan'):.0f} MB")
    finally:
        if proc is not None:
            launch.stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
