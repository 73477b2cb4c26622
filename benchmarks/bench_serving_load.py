"""Serving latency and throughput: the real HTTP server under a Locust load, beside the same
requests in process and the brute-force NumPy floor, on one version, in one run.

    python -m benchmarks.bench_serving_load [--model artifacts/models/online-retail] [--users 8]
        [--seconds 60] [--scenario items3|query|mixed] [--promote-at 30] [--inproc-milvus]

What it does, in order (nothing else should load the machine meanwhile):
1. in process: ``Engine.recommend`` on the same request mix (``--calls`` calls, sequential), and the
   NumPy floor: the profile vector's brute-force top-k over the same item vectors;
2. starts the server (``serving.launch.serve``, Milvus Lite in its own process unless
   ``--inproc-milvus``) on a free loopback port, with a throw-away models folder holding the
   version and, with ``--promote-at``, a copy of it under another name;
3. runs Locust headless (``--users`` closed-loop users, no wait, ``--seconds``), and at
   ``--promote-at`` seconds points the folder's ``current`` at the copy (a promotion under load);
4. stops the server and prints a markdown table (Locust's percentiles are its own rounding).
Every response's ``model_version`` is recorded: the promotion check counts answers per version.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from coldrec.core.paths import resolve_model, set_current

LOCUSTFILE = Path(__file__).resolve().parent / "loadtest" / "locustfile.py"


def request_bodies(ids: list[str], scenario: str, n: int, seed: int = 0) -> list[dict]:
    import random

    os.environ.setdefault("COLDREC_LOAD_ITEMS", "/dev/null")
    rng = random.Random(seed)
    words = ["red", "heart", "mug", "bag", "candle", "christmas", "vintage", "lunch", "box", "paper"]
    out = []
    for _ in range(n):
        kind = scenario if scenario != "mixed" else rng.choice(["items3", "items3", "query"])
        if kind == "query":
            out.append({"query": " ".join(rng.sample(words, 2)), "k": 10})
        else:
            out.append({"recent_items": [{"item_id": i, "event_type": "view"} for i in rng.sample(ids, 3)], "k": 10})
    return out


def in_process(version: Path, bodies: list[dict], milvus_dir: Path) -> dict:
    """Engine.recommend timings and the NumPy floor on the same profiles (ms)."""
    from serving.engine import Engine
    from serving.schemas import RecommendRequest

    engine = Engine(version, str(milvus_dir / "inproc.db"), None).load()
    reqs = [RecommendRequest.model_validate(b) for b in bodies]
    for r in reqs[:20]:
        engine.recommend(r)  # warm caches (arrival / attribute rows, ONNX session)
    t = []
    for r in reqs:
        t0 = time.perf_counter()
        engine.recommend(r)
        t.append(time.perf_counter() - t0)
    s = engine.snapshot()
    m = s.model
    from coldrec.runtime.recommender import Signals

    profiles = [Signals(items=[x.item_id for x in r.recent_items], event_types=["view"] * len(r.recent_items),
                        query=r.query) for r in reqs]
    users = m._user_vectors(m.train, profiles)
    floor = []
    for u in users:
        t0 = time.perf_counter()
        sims = m.item_vecs @ u
        top = np.argpartition(-sims, 200)[:200]
        top[np.argsort(-sims[top])]
        floor.append(time.perf_counter() - t0)
    ms = lambda xs: (float(np.percentile(xs, 50)) * 1e3, float(np.percentile(xs, 99)) * 1e3)
    return {"engine": ms(t), "floor": ms(floor), "n_items": m.train.n_items}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (from /proc; 0 when gone)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree(pid: int) -> list[int]:
    """pid and its descendants (the BentoML arbiter starts the worker as a child)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def run_locust(url: str, users: int, seconds: int, scenario: str, items_file: Path, versions_file: Path,
               out_prefix: Path, watch: dict[str, int] | None = None) -> dict:
    env = {**os.environ, "COLDREC_LOAD_ITEMS": str(items_file), "COLDREC_LOAD_SCENARIO": scenario,
           "COLDREC_LOAD_VERSIONS": str(versions_file)}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", url, "--csv", str(out_prefix), "--only-summary", "--stop-timeout", "10",
           "--loglevel", "WARNING"]
    procs = {name: tree(pid) for name, pid in (watch or {}).items()}
    before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in procs.items()}
    t0 = os.times()
    subprocess.run(cmd, env=env, check=False, timeout=seconds + 120, stdout=subprocess.DEVNULL)
    t1 = os.times()
    cpu = {name: sum(cpu_seconds(p) for p in pids) - before[name] for name, pids in procs.items()}
    cpu["locust"] = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    with open(f"{out_prefix}_stats.csv", encoding="utf-8") as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    agg = rows["Aggregated"]
    return {"requests": int(agg["Request Count"]), "failures": int(agg["Failure Count"]), "p50": float(agg["50%"]),
            "p99": float(agg["99%"]), "rps": float(agg["Requests/s"]), "mean": float(agg["Average Response Time"]),
            "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="artifacts/models/online-retail")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--scenario", default="items3", choices=["items3", "query", "mixed"])
    ap.add_argument("--promote-at", type=float, default=None)
    ap.add_argument("--inproc-milvus", action="store_true")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--skip-inproc", action="store_true")
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread, as the service runs (serving/launch.py SINGLE_THREADED)

    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.runtime.version import load_version
    from serving import launch

    version = resolve_model(a.model)
    work = Path(tempfile.mkdtemp(prefix="coldrec-load-"))
    model = load_version(version)
    top = np.argsort(-np.asarray(model.parts.pop), kind="stable")[:1000]
    ids = [str(model.train.item_ids[i]) for i in top]
    (work / "items.json").write_text(json.dumps(ids))
    bodies = request_bodies(ids, a.scenario, a.calls)
    inproc = None if a.skip_inproc else in_process(version, bodies, work)
    del model

    models = work / "models" / version.parent.name
    models.mkdir(parents=True)
    shutil.copytree(version, models / version.name, symlinks=True)
    if a.promote_at is not None:
        shutil.copytree(version, models / f"{version.name}-copy", symlinks=True)
    set_current(models, version.name)
    env = launch.service_env(typed(load_params()), dataset=version.parent.name, milvus_uri=str(work / "milvus" / "coldrec.db"))
    env.update(COLDREC_MODEL=str(models), COLDREC_FEAST_REPO="")
    port = launch.free_port()
    url = launch.serve("127.0.0.1", port, env, work / "server.log", lite_process=not a.inproc_milvus, detach=True,
                       pidfile=work / "serve.pid")
    try:
        if a.promote_at is not None:
            threading.Timer(a.promote_at, set_current, args=(models, f"{version.name}-copy")).start()
        pids = json.loads((work / "serve.pid").read_text())["pids"]
        watch = {"milvus": pids[0], "service": pids[1]} if len(pids) == 2 else {"service": pids[0]}
        load = run_locust(url, a.users, a.seconds, a.scenario, work / "items.json", work / "versions.txt", work / "locust",
                          watch)
    finally:
        launch.stop(work / "serve.pid")
    versions = (work / "versions.txt").read_text().split() if (work / "versions.txt").exists() else []
    counts = {v: versions.count(v) for v in dict.fromkeys(versions)}
    layout = "Milvus Lite in the service process" if a.inproc_milvus else "Milvus Lite in its own process"
    print(f"\n### /recommend, {a.scenario}, {inproc['n_items'] if inproc else '?'} items, {a.users} users, {a.seconds} s ({layout})\n")
    print("| measure | p50 ms | p99 ms | req/s | requests | failures |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| HTTP (Locust) | {load['p50']:.0f} | {load['p99']:.0f} | {load['rps']:.1f} | {load['requests']} | {load['failures']} |")
    if inproc:
        print(f"| in process, sequential (Engine.recommend) | {inproc['engine'][0]:.1f} | {inproc['engine'][1]:.1f} | | {a.calls} | |")
        floor = inproc["floor"]
        print(f"| NumPy floor (brute-force top-200 of the profile vector) | {floor[0]:.3f} | {floor[1]:.3f} | | {a.calls} | |")
        print(f"\nratio in-process p50 / floor p50: {inproc['engine'][0] / max(inproc['floor'][0], 1e-9):.0f}x")
    n = max(load["requests"], 1)
    print("\nCPU per request (ms), by process: " + ", ".join(f"{k} {v * 1e3 / n:.1f}" for k, v in load["cpu"].items())
          + f" (2 cores = {2e3 / max(load['rps'], 1e-9):.1f} ms of CPU per request at this rate)")
    if a.promote_at is not None:
        print(f"\npromotion at {a.promote_at:.0f} s: answers per model_version (in order of first appearance): {counts}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
