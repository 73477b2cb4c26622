"""Device check: the model's own fit (``ColdrecModel``) fine-tunes on CUDA when a GPU is present.

    python benchmarks/gpu_finetune_check.py [STEPS ...]   (default: 200 1000)

Checks that the partial encoder (cached frozen bottom + trained top) gives the full model's vectors
on the GPU, then fits on the online-retail time split at each step count and prints fit time and
NDCG@10 per k as JSON (also written to ``$OUT/gpu_<steps>.json`` when $OUT is set).

For a bare GPU machine that has torch/transformers/sentence-transformers but not this project:
carry a float16 copy of the encoder (``COLDREC_GPU_MODEL``, 45 MB: under a 64 MiB transfer) and
the prepared dataset (``COLDREC_GPU_DATA``); the copy is widened back to float32 before use.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main(steps_list: list[int]) -> None:
    print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    carried = os.environ.get("COLDREC_GPU_MODEL")
    if carried:  # float16 copy -> float32 directory the model code loads like any local encoder
        SentenceTransformer(carried, device="cpu").float().save("/tmp/coldrec-model32")
        os.environ["COLDREC_ENCODER"] = "/tmp/coldrec-model32"
    from coldrec.dataset import load_prepared
    from coldrec.recommender import TrainData
    from training.encoder import resolve_model_path
    from training.evaluation.evaluate import score_method, seed_everything, split_for
    from training.model.finetune import PartialEncoder
    from training.model.hybrid import ColdrecModel

    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    texts = ["white hanging heart t-light holder", "red mug", "a much longer title about a garden gnome with a hat"]
    st = SentenceTransformer(str(resolve_model_path(params)), device=device)
    enc = PartialEncoder(st, layers_trained=2, max_len=32, device=device)
    ids, am = enc.tokenize(texts)
    diff = np.abs(enc.all_vectors(enc.bottom(ids, am, progress=False), am) - st.encode(texts, normalize_embeddings=True))
    print("partial vs full encoder: max abs diff", float(diff.max()), flush=True)

    ds = load_prepared(os.environ.get("COLDREC_GPU_DATA", root / "data" / "online-retail"), name="online-retail")
    for steps in steps_list:
        seed_everything(42)
        params["model"]["finetune"].update(max_steps=steps, eval_every=max(50, steps // 5))
        split = split_for(ds, params, "time")
        train = TrainData.build(split.train_events, ds.items, seed=42, protocol="time", users=ds.users)
        t0 = time.time()
        model = ColdrecModel(params).fit(train)
        fit_s = time.time() - t0
        rows = score_method(model, split, train, 10, 42)
        out = {"steps": steps, "device": device, "fit_s": round(fit_s, 1), "finetune": model.report["finetune"],
               "ndcg@10": {f"k{r['k']}{'q' if r['signal'] == 'query' else ''}": round(r["value"], 4)
                           for r in rows if r["metric"] == "ndcg@10"}}
        print(json.dumps(out), flush=True)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], f"gpu_{steps}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [200, 1000])
