"""Encoder speed, memory and size: torch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8, in one run.

    nice -n 10 .venv/bin/python -m benchmarks.bench_quantize [--model artifacts/models/<dataset>/<version>] \
        [--dataset online-retail] [--rounds 5] [--b1 100] [--b64 10] [--long] [--static] [--all-int8] [--spinning on|off]

What is timed: the encoder's forward pass (for ORT: the whole graph incl. pooling, head and
normalisation; for torch: ``SentenceTransformer.forward`` under inference mode) on *identical*
token batches (catalogue texts, tokenised once in the parent; tokenisation is the same for every
backend and not timed), with the same number of intra-op threads (``torch.get_num_threads()``).
Each backend lives in its own child process (so its peak RSS is its own: imports + model +
inference), and the rounds are interleaved (round r runs every backend before round r+1), so a
noisy neighbour hits all backends alike. Reported: batch 1 latency (median over every call) and
texts/s, batch 64 texts/s (median over rounds), peak RSS, model file size, and the mean cosine of
each backend's batch-64 vectors to torch's.

Without ``--model`` the pretrained encoder is exported and quantized into a temporary directory
with the ``quantize:`` settings of params.yaml; with a model version it uses ``encoder/`` and
``encoder_int8/`` (the fp32 ONNX is exported on the fly). ``--long`` joins 8 titles per text
(~100 tokens) instead of one title (~10 tokens). ``--static`` adds a static (QDQ) int8 row,
``--all-int8`` a dynamic int8 row without ``quantize.exclude_nodes``; ``--spinning on|off``
overrides ``quantize.spinning`` for the ORT rows.
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _weights_size(path: Path) -> int:
    path = Path(path)
    if path.suffix == ".onnx":
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.suffix in (".safetensors", ".bin", ".onnx"))


def _peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM; ru_maxrss would carry the parent's over fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, path: str, threads: int, spinning: bool, conn) -> None:
    """One backend: load, then answer ("run", batches) requests with timings; ("done",) -> peak RSS."""
    if kind == "torch":
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(path, device="cpu").eval()

        def fwd(b):
            with torch.inference_mode():
                feats = {k: torch.from_numpy(v) for k, v in b.items()}
                return model(feats)["sentence_embedding"].numpy()
    else:
        from coldrec.runtime.onnx_encoder import OnnxEncoder

        enc = OnnxEncoder(path, threads=threads, spinning=spinning)

        def fwd(b):
            return enc.session.run(None, {k: b[k] for k in enc.inputs})[0]

    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg[0] == "done":
            conn.send(_peak_rss_mb())
            return
        _, b64, b1, want = msg
        fwd(b64[0]), fwd(b1[0])  # warm-up
        t = time.perf_counter()
        outs = [fwd(b) for b in b64]
        t64 = time.perf_counter() - t
        lat = []
        for b in b1:
            t = time.perf_counter()
            fwd(b)
            lat.append(time.perf_counter() - t)
        conn.send((t64, lat, np.concatenate(outs) if want else None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="a model version (encoder/ + encoder_int8/); default: the pretrained encoder")
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--b1", type=int, default=100, help="batch-1 calls per round")
    ap.add_argument("--b64", type=int, default=10, help="batches of 64 per round")
    ap.add_argument("--long", action="store_true", help="8 titles per text (~100 tokens)")
    ap.add_argument("--static", action="store_true", help="also time a static (QDQ) int8 model")
    ap.add_argument("--all-int8", action="store_true", help="also time dynamic int8 with no node kept in fp32")
    ap.add_argument("--spinning", choices=["on", "off"], help="ORT thread spin-waiting (default: params.yaml quantize.spinning)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from coldrec.core.config import load_params
    from coldrec.core.params import typed
    from coldrec.data.prepare import load_source
    from coldrec.runtime.onnx_encoder import OnnxEncoder
    from coldrec.runtime.text import item_texts
    from coldrec.runtime.version import ENCODER_DIR, INT8_DIR
    from training.encoder import resolve_model_path
    from training.quantize.export import export_onnx
    from training.quantize.int8 import quantize_onnx, quantize_settings

    params = load_params()
    qs = quantize_settings(params)
    if args.spinning:
        qs["spinning"] = args.spinning == "on"
    threads = torch.get_num_threads()
    ds = load_source(args.dataset, params=params)
    encoder = typed(params).encoder
    texts = item_texts(ds.items, encoder.item_template, encoder.max_chars)
    rng = np.random.default_rng(args.seed)
    if args.long:
        texts = [" ".join(rng.choice(texts, 8)) for _ in range(2000)]
    src = args.model / ENCODER_DIR if args.model else resolve_model_path(params)
    st = SentenceTransformer(str(src), device="cpu").eval()
    work = Path(tempfile.mkdtemp(prefix="bench-quantize-"))
    t0 = time.perf_counter()
    export_onnx(st, work / "fp32", fuse=qs["fuse"], opset=qs["opset"])
    int8 = args.model / INT8_DIR if args.model else quantize_onnx(work / "fp32", work / "int8", qs, texts).parent
    backends = {"torch fp32": ("torch", str(src)), "ORT fp32": ("ort", str(work / "fp32")), "ORT int8": ("ort", str(int8))}
    if args.static:
        backends["ORT int8 static"] = ("ort", str(quantize_onnx(work / "fp32", work / "static", {**qs, "mode": "static"}, texts).parent))
    if args.all_int8:
        backends["ORT int8 (no fp32 nodes)"] = ("ort", str(quantize_onnx(work / "fp32", work / "all", {**qs, "exclude_nodes": []}).parent))
    prep_s = time.perf_counter() - t0
    enc = OnnxEncoder(work / "fp32")  # the tokenizer every backend's inputs come from
    pick = lambda n: [texts[i] for i in rng.choice(len(texts), n, replace=False)]  # noqa: E731
    b64 = [enc.tokenize(pick(64)) for _ in range(args.b64)]
    b1 = [enc.tokenize([t]) for t in pick(args.b1)]
    tokens = float(np.mean([b["attention_mask"].sum(1).mean() for b in b64]))
    width = float(np.mean([b["input_ids"].shape[1] for b in b64]))
    del st, enc

    ctx = mp.get_context("spawn")
    procs = {}
    for name, (kind, path) in backends.items():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_child, args=(kind, path, threads, bool(qs["spinning"]), child), daemon=True)
        p.start()
        procs[name] = (p, parent)
        assert parent.recv() == "ready"  # loaded one after the other: no import contention in the timings
    load_before = os.getloadavg()[0]
    res = {n: {"b64": [], "lat": [], "vec": None} for n in backends}
    for r in range(args.rounds):
        for name, (_, conn) in procs.items():
            conn.send(("run", b64, b1, r == 0))
            t64, lat, vec = conn.recv()
            res[name]["b64"].append(len(b64) * 64 / t64)
            res[name]["lat"] += lat
            if vec is not None:
                res[name]["vec"] = vec
    load_after = os.getloadavg()[0]
    for name, (p, conn) in procs.items():
        conn.send(("done",))
        res[name]["rss"] = conn.recv()
        p.join(timeout=30)

    ref = res["torch fp32"]
    ref_vec = ref["vec"] / np.linalg.norm(ref["vec"], axis=1, keepdims=True)
    torch_b64, torch_lat = np.median(ref["b64"]), np.median(ref["lat"])
    fp32_size = _weights_size(Path(backends["ORT fp32"][1]) / "model.onnx")
    print(f"\n## Encoder benchmark ({'model ' + str(args.model) if args.model else 'pretrained ' + src.name})\n")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {threads} intra-op threads for every "
          f"backend, ORT spinning={'on' if qs['spinning'] else 'off'}; {args.dataset} {'8-title texts' if args.long else 'titles'}: "
          f"{tokens:.1f} tokens/text on average, batches of 64 padded to {width:.1f}; {args.rounds} interleaved rounds "
          f"(each: {args.b64} batches of 64, {args.b1} single texts); load average {load_before:.2f} -> {load_after:.2f}; "
          f"export+quantize {prep_s:.0f} s.\n")
    print("| backend | b1 latency p50 (ms) | b1 p95 (ms) | b1 texts/s | b64 texts/s (median [min-max]) | b64 vs torch "
          "| b1 latency vs torch | peak RSS (MB) | model (MB) | size vs fp32 | mean cos vs torch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        lat = np.array(r["lat"]) * 1000
        size = _weights_size(Path(backends[name][1]) if backends[name][0] == "torch" else Path(backends[name][1]) / "model.onnx")
        v = r["vec"] / np.linalg.norm(r["vec"], axis=1, keepdims=True)
        print(f"| {name} | {np.median(lat):.2f} | {np.percentile(lat, 95):.2f} | {1000 / lat.mean():.0f} | "
              f"{np.median(r['b64']):.0f} [{min(r['b64']):.0f}-{max(r['b64']):.0f}] | {np.median(r['b64']) / torch_b64:.2f}x | "
              f"{np.median(r['lat']) / torch_lat:.2f}x | {r['rss']:.0f} | {size / 1e6:.1f} | {size / fp32_size:.2f} | "
              f"{float((v * ref_vec).sum(1).mean()):.4f} |")
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
