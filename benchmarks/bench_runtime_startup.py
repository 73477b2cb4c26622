"""Start-up of a serving process: load a model version and answer one recommendation, in a fresh process.

    python -m benchmarks.bench_runtime_startup --model artifacts/models/online-retail/current [--rounds 3]
        [--code DIR]   # run the children against another checkout (e.g. an older commit's worktree)

Loaders compared, each in its own child process (so imports, memory and time are its own):
  runtime  ``coldrec.runtime.version.load_version``: int8 ONNX encoder + collaborative parts, no torch;
  fit      ``training.model.artifacts.load_model``: the fit-time loader (torch, sentence-transformers,
           the fp32 encoder loaded, then the int8 one swapped in) -- what serving had to use before
           the runtime existed.
Reported per loader: seconds to the first answer (interpreter start included), peak RSS, and
whether torch was imported. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
loader, path = sys.argv[1], sys.argv[2]
from coldrec.runtime.recommender import Signals
if loader == "runtime":
    from coldrec.runtime.version import load_version
    model = load_version(path)
else:
    from training.model.artifacts import load_model
    model = load_model(path)
t_load = time.perf_counter() - t0
items = [str(i) for i in model.train.item_ids[:3]]
recs = model.recommend(Signals(items=items, event_types=["view"] * 3, query="red heart"), n=10)
print(json.dumps({"load_s": t_load, "first_answer_s": time.perf_counter() - t0, "n": len(recs),
                  "torch": "torch" in sys.modules, "encoder": type(model.st).__name__,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(loader: str, model: Path, code: Path | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, loader, str(model)], capture_output=True, text=True,
                         env=env, cwd=code or Path.cwd(), timeout=600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{loader} child failed:\n{out.stderr[-2000:]}")
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return {**doc, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a model version directory with encoder_int8/")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loaders", default="runtime,fit")
    ap.add_argument("--code", type=Path, default=None, help="checkout whose code the children run (default: this one)")
    a = ap.parse_args()
    model = a.model.resolve()
    if (model / "current").is_file():
        model = model / (model / "current").read_text().strip()
    print(f"model {model}; {a.rounds} rounds per loader; code {a.code or 'this checkout'}\n")
    print("| loader | process start to first answer (s) | load (s) | peak RSS (MB) | torch imported | encoder |")
    print("|---|---|---|---|---|---|")
    for loader in a.loaders.split(","):
        runs = [run_child(loader, model, a.code) for _ in range(a.rounds)]
        med = lambda k, runs=runs: statistics.median(r[k] for r in runs)  # noqa: E731
        print(f"| {loader} | {med('wall_s'):.2f} | {med('load_s'):.2f} | {med('maxrss_mb'):.0f} | "
              f"{runs[0]['torch']} | {runs[0]['encoder']} |")


if __name__ == "__main__":
    main()
