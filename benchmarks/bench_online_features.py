"""Online feature lookup latency: one user per call, SQLite and Redis online stores in one run.

    .venv/bin/python benchmarks/bench_online_features.py [--dataset online-retail] [--n 2000]

Builds the feature tables of the dataset (into a temporary directory), applies a throw-away
copy of features/ per online store, materialises it, then times, per store:
- ``lookup``: ``get_user_profile`` for one random known user (Feast ``get_online_features`` plus
  decoding into the profile dict: what serving calls), and the raw ``get_online_features`` call;
- ``cold``: the same for users that do not exist (the cold-profile path);
- ``push``: ``push_event`` (read, fold, push) followed by the lookup that must see it.
Prints a markdown table (milliseconds). Redis: ``--redis`` or $COLDREC_FEAST_REDIS or params.yaml
``features.redis``; its keys live under a unique Feast project and are deleted at the end. A store
that cannot be reached is reported as skipped.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from coldrec.core.config import load_params
from coldrec.data.prepare import load_source
from coldrec.feature_store.compute import build_feature_tables
from coldrec.feature_store.materialization import materialize
from coldrec.feature_store.online import USER_REFS, get_user_profile
from coldrec.feature_store.push import push_event
from coldrec.feature_store.repo import apply, redis_connection, render_repo


def pct(samples: list[float]) -> tuple[float, float, float, float]:
    a = np.asarray(samples) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(np.percentile(a, 99)), float(a.max())


def timed(fn, args_list) -> list[float]:
    out = []
    for a in args_list:
        t = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=None, help="shipped dataset (default: params.yaml data.default_dataset)")
    ap.add_argument("--n", type=int, default=2000, help="lookups per measurement")
    ap.add_argument("--pushes", type=int, default=200, help="push+lookup rounds per store")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--redis", default=None, help="Redis connection string (host:port[,db=N])")
    ap.add_argument("--stores", default="sqlite,redis")
    args = ap.parse_args()

    t = time.perf_counter()
    import feast  # noqa: F401  (~10 s, once per process: kept out of the per-store timings)

    import_s = time.perf_counter() - t
    params = load_params()
    ds = load_source(args.dataset, params=params)
    users = sorted(ds.events["user_id"].unique())
    items = sorted(ds.events["item_id"].dropna().unique())
    rng = random.Random(42)
    work = Path(tempfile.mkdtemp(prefix="bench-features-"))
    t = time.perf_counter()
    build_feature_tables(ds, work / "features", params)
    build_s = time.perf_counter() - t
    redis = args.redis or redis_connection(params)

    rows, notes = [], []
    for online in args.stores.split(","):
        project = f"coldrec_bench_{uuid.uuid4().hex[:8]}"
        try:
            t = time.perf_counter()
            store = apply(render_repo(work / online, project=project, online=online, redis=redis), work / "features")
            materialize(store)
            mat_s = time.perf_counter() - t
        except Exception as exc:  # e.g. no Redis server
            notes.append(f"{online}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        try:
            known = [rng.choice(users) for _ in range(args.n)]
            cold = [f"nobody-{i}" for i in range(args.n)]
            timed(lambda u, store=store: get_user_profile(store, u), [rng.choice(users) for _ in range(args.warmup)])
            raw = timed(lambda u, store=store: store.get_online_features(features=USER_REFS, entity_rows=[{"user_id": u}]), known)
            prof = timed(lambda u, store=store: get_user_profile(store, u), known)
            cold_t = timed(lambda u, store=store: get_user_profile(store, u), cold)
            live = [f"bench-live-{i % 50}" for i in range(args.pushes)]
            seen_ok = 0
            push_t = []
            for _, u in enumerate(live):
                item = rng.choice(items)
                t0 = time.perf_counter()
                push_event(store, {"user_id": u, "item_id": item, "event_type": "click"})
                seen_ok += get_user_profile(store, u)["recent_item_ids"][0] == item
                push_t.append(time.perf_counter() - t0)
            where = "embedded file" if online == "sqlite" else redis.split(",")[0]
            for name, samples in (("get_online_features (raw)", raw), ("get_user_profile (known user)", prof),
                                  ("get_user_profile (unknown user)", cold_t), ("push_event + next lookup", push_t)):
                p50, p95, p99, mx = pct(samples)
                rows.append(f"| {online} ({where}) | {name} | {len(samples)} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {mx:.2f} |")
            notes.append(f"{online}: apply+materialise {mat_s:.1f} s; pushed events visible to the next lookup: {seen_ok}/{len(live)}")
        finally:
            if online == "redis":
                store.teardown()  # this project's keys only

    print(f"\n### Online feature lookup, dataset {ds.name} ({len(users):,} users, {len(ds.events):,} events)\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};"
          f" import feast {import_s:.1f} s; feature tables built in {build_s:.1f} s; times in ms, one user per call\n")
    print("| online store | operation | calls | p50 | p95 | p99 | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print()
    for n in notes:
        print(f"- {n}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
