"""A model version on disk: everything serving needs, nothing it must recompute.

<dir>/encoder/           the fine-tuned encoder, sentence-transformers / Hugging Face format
<dir>/item_vectors.npy   catalogue vectors from that encoder (row i = items.parquet row i)
<dir>/items.parquet      the catalogue snapshot the vectors and similarities index
<dir>/collab.npz         co-occurrence similarities + popularity priors
<dir>/weights.json       blend weights per bucket
<dir>/metadata.json      version, data fingerprint, params, validation metrics, code version
<dir>/encoder_int8/      optional (``coldrec quantize``): int8 ONNX encoder, its item vectors, fidelity report

A version is named by a fingerprint of data + params + code, and written atomically.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldrec.config import settings
from coldrec.dataset import atomic_dir
from coldrec.errors import ColdrecError
from coldrec.recommender import TrainData

FILES = ("encoder", "item_vectors.npy", "items.parquet", "collab.npz", "weights.json", "metadata.json")


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=settings().root)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, cwd=settings().root).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def version_id(data_fingerprint: str, params: dict[str, Any], code: str) -> str:
    blob = json.dumps({"data": data_fingerprint, "params": params, "code": code}, sort_keys=True, default=str)
    return "v-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def models_dir() -> Path:
    return settings().root / "artifacts" / "models"


def save_model(model, out_dir: str | Path | None, data_fingerprint: str, params: dict[str, Any],
               extra_metadata: dict[str, Any] | None = None) -> Path:
    code = code_version()
    used = {k: params.get(k) for k in ("seed", "encoder", "model")}
    version = version_id(data_fingerprint, used, code)
    target = Path(out_dir) if out_dir else models_dir() / version
    with atomic_dir(target) as tmp:
        getattr(model, "st_fp32", model.st).save(str(tmp / "encoder"))  # quantized: fp32 here, int8 below
        np.save(tmp / "item_vectors.npy", getattr(model, "item_vecs_fp32", model.item_vecs))
        if hasattr(model, "st_fp32"):
            from training.quantize import INT8_DIR, save_int8

            save_int8(model, tmp / INT8_DIR)
        model.train.items.to_parquet(tmp / "items.parquet", index=False)
        p = model.parts
        h = p.history
        np.savez_compressed(tmp / "collab.npz", pop=p.pop, recent=p.recent, new=p.new, arrival_ns=h.ns,
                            arrival_idx=h.idx, arrival_days=np.float64(np.nan if h.days is None else h.days),
                            attr_names=p.attrs.names, attr_values=p.attrs.values, attr_scores=p.attrs.scores,
                            **{f"{name}_{part}": getattr(m, part) for name, m in (("knn", p.knn_sim.tocsr()),
                                                                                 ("session", p.session_sim.tocsr()))
                               for part in ("data", "indices", "indptr")})
        (tmp / "weights.json").write_text(json.dumps(model.weights, indent=2), encoding="utf-8")
        meta = {"version": version, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "data_fingerprint": data_fingerprint, "code_version": code, "params": used,
                "metrics": model.report, "n_items": int(model.train.n_items), **(extra_metadata or {})}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return target


def load_model(model_dir: str | Path, params: dict[str, Any] | None = None, quantized: bool | None = None):
    """Rebuild a ready-to-serve ColdrecModel; a missing or corrupt file is a clear error.

    ``quantized``: None (default) serves the int8 encoder of ``encoder_int8/`` when the version has
    one (else fp32, with a warning); True requires it; False loads the fp32 torch encoder."""
    from sentence_transformers import SentenceTransformer

    from training.model.attributes import AttributePopularity
    from training.model.hybrid import ArrivalHistory, CollaborativeParts, ColdrecModel

    d = Path(model_dir)
    missing = [f for f in FILES if not (d / f).exists()]
    if missing:
        raise ColdrecError(f"{d}: not a coldrec model version (missing {', '.join(missing)})")
    try:
        meta = json.loads((d / "metadata.json").read_text(encoding="utf-8"))
        items = pd.read_parquet(d / "items.parquet")
        vecs = np.load(d / "item_vectors.npy")
        z = np.load(d / "collab.npz")
        n = len(items)
        sims = {name: sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=(n, n))
                for name in ("knn", "session")}
        weights = json.loads((d / "weights.json").read_text(encoding="utf-8"))
        st = SentenceTransformer(str(d / "encoder"), device="cpu")
    except Exception as exc:  # many libraries, many error types: name the version and the cause
        raise ColdrecError(f"{d}: corrupt model version ({type(exc).__name__}: {exc})") from None
    if vecs.shape[0] != n:
        raise ColdrecError(f"{d}: item_vectors.npy has {vecs.shape[0]} rows for {n} items")
    model = ColdrecModel({**(params or {}), **meta.get("params", {})})
    empty = pd.DataFrame({"user_id": pd.Series([], dtype=object), "item_id": pd.Series([], dtype=object),
                          "event_type": pd.Series([], dtype=object),
                          "timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})
    model.train = TrainData.build(empty, items)
    model._popularity = np.expm1(z["pop"]).astype(np.float32)
    history = None  # a version saved before the arrival component: "arrival" scores stay flat
    if "arrival_ns" in z.files:
        days = float(z["arrival_days"])
        history = ArrivalHistory(z["arrival_ns"], z["arrival_idx"], n, None if np.isnan(days) else days)
    attrs = None  # a version saved before the attr component: attributes score every item alike
    if "attr_scores" in z.files:
        attrs = AttributePopularity(z["attr_names"], z["attr_values"], z["attr_scores"], n)
    model.parts = CollaborativeParts(sims["knn"], sims["session"], z["pop"], z["recent"], z["new"], history, attrs)
    model.item_vecs, model.st, model.weights, model.report = vecs.astype(np.float32), st, weights, meta.get("metrics", {})
    model.metadata = meta
    from training.quantize import INT8_DIR, load_int8

    if quantized is None and not (d / INT8_DIR).exists():
        import logging

        logging.getLogger(__name__).warning("%s: no %s/ (run `coldrec quantize`); serving the fp32 encoder", d, INT8_DIR)
    elif quantized is None or quantized:
        enc, vecs_int8 = load_int8(d / INT8_DIR, n, params)
        model.st_fp32, model.item_vecs_fp32 = model.st, model.item_vecs
        model.st, model.item_vecs = enc, vecs_int8
    return model
