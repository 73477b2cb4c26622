"""Device check: the model's own fit (``ColdrecModel``) fine-tunes on CUDA when a GPU is present.

    python -m benchmarks.gpu_finetune_check [STEPS ...]   (default: 200 1000; from the repository root)

Checks that the partial encoder (cached frozen bottom + trained top) gives the full model's vectors
on the GPU, then fits on the online-retail time split at each step count (``model.finetune.max_steps``
set through params, everything else as in params.yaml) and prints fit time and NDCG@10 per k as
JSON (also written to ``$OUT/gpu_<steps>.json`` when $OUT is set).

For a bare GPU machine that has torch/transformers/sentence-transformers but not this project
installed: run it as a module from the repository root (the checkout is then importable), carry a
float16 copy of the encoder (``COLDREC_GPU_MODEL``, 45 MB: under a 64 MiB transfer) and the
prepared dataset (``COLDREC_GPU_DATA``, default ``$COLDREC_DATA_DIR/online-retail``); the copy is
widened back to float32 before use.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps", nargs="*", type=int, default=[200, 1000], help="fine-tuning step counts (default: 200 1000)")
    steps_list = ap.parse_args().steps

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    carried = os.environ.get("COLDREC_GPU_MODEL")
    if carried:  # float16 copy -> float32 directory the model code loads like any local encoder
        SentenceTransformer(carried, device="cpu").float().save("/tmp/coldrec-model32")
        os.environ["COLDREC_ENCODER"] = "/tmp/coldrec-model32"
    from coldrec.core.config import load_params
    from coldrec.core.params import with_overrides
    from coldrec.core.paths import prepared_dir
    from coldrec.data.dataset import load_prepared
    from coldrec.runtime.recommender import TrainData
    from training.encoder import resolve_model_path
    from training.evaluation.evaluate import score_method, seed_everything, split_for
    from training.model.finetune import PartialEncoder
    from training.model.hybrid import ColdrecModel

    params = load_params()
    texts = ["white hanging heart t-light holder", "red mug", "a much longer title about a garden gnome with a hat"]
    st = SentenceTransformer(str(resolve_model_path(params)), device=device)
    enc = PartialEncoder(st, layers_trained=2, max_len=32, device=device)
    ids, am = enc.tokenize(texts)
    diff = np.abs(enc.all_vectors(enc.bottom(ids, am, progress=False), am) - st.encode(texts, normalize_embeddings=True))
    print("partial vs full encoder: max abs diff", float(diff.max()), flush=True)

    ds = load_prepared(os.environ.get("COLDREC_GPU_DATA") or prepared_dir("online-retail"), name="online-retail")
    for steps in steps_list:
        seed_everything(42)
        run_params = with_overrides(params, {"model": {"finetune": {"max_steps": steps, "eval_every": max(50, steps // 5)}}})
        split = split_for(ds, run_params, "time")
        train = TrainData.build(split.train_events, ds.items, seed=42, protocol="time", users=ds.users)
        t0 = time.time()
        model = ColdrecModel(run_params).fit(train)
        fit_s = time.time() - t0
        rows = score_method(model, split, train, 10, 42)
        out = {"steps": steps, "device": device, "fit_s": round(fit_s, 1), "finetune": model.report["finetune"],
               "ndcg@10": {f"k{r['k']}{'q' if r['signal'] == 'query' else ''}": round(r["value"], 4)
                           for r in rows if r["metric"] == "ndcg@10"}}
        print(json.dumps(out), flush=True)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], f"gpu_{steps}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
