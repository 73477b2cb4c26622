"""A model version on disk, read for serving.

<dir>/encoder/           the fine-tuned fp32 encoder (sentence-transformers format; fit-time only)
<dir>/item_vectors.npy   catalogue vectors from that encoder (row i = items.parquet row i)
<dir>/items.parquet      the catalogue snapshot the vectors and similarities index
<dir>/collab.npz         co-occurrence similarities + popularity priors
<dir>/weights.json       blend weights per bucket
<dir>/metadata.json      version, data fingerprint, params, validation metrics, code version
<dir>/encoder_int8/      ``coldrec quantize``: int8 ONNX encoder, its item vectors, fidelity report

Why the reader is in the runtime: a serving process loads the int8 encoder and the collaborative
parts only, so it never imports torch. The writer (``training.model.artifacts.save_model``) and
the fp32 loader that fine-tuning and quantization need live at fit time.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed, with_overrides
from coldrec.runtime.attributes import AttributePopularity
from coldrec.runtime.onnx_encoder import OnnxEncoder
from coldrec.runtime.parts import ArrivalHistory, CollaborativeParts
from coldrec.runtime.recommender import TrainData
from coldrec.runtime.scorer import ColdrecRuntime

ENCODER_DIR = "encoder"
INT8_DIR = "encoder_int8"
ITEM_VECTORS = "item_vectors.npy"
FILES = (ENCODER_DIR, ITEM_VECTORS, "items.parquet", "collab.npz", "weights.json", "metadata.json")
SERVING_FILES = (ITEM_VECTORS, "items.parquet", "collab.npz", "weights.json", "metadata.json", INT8_DIR)

_Model = TypeVar("_Model", bound=ColdrecRuntime)  # the runtime, or fit time's ColdrecModel subclass


def check_files(d: Path, files: tuple[str, ...] = FILES) -> None:
    missing = [f for f in files if not (d / f).exists()]
    if missing == [INT8_DIR]:
        raise ColdrecError(f"{d}: the version has no int8 encoder ({INT8_DIR}/ missing): run `coldrec quantize --model {d}`")
    if missing:
        raise ColdrecError(f"{d}: not a coldrec model version (missing {', '.join(missing)})")


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    d = Path(model_dir)
    try:
        meta: dict[str, Any] = json.loads((d / "metadata.json").read_text(encoding="utf-8"))
        return meta
    except FileNotFoundError:
        raise ColdrecError(f"{d}: not a coldrec model version (missing metadata.json)") from None
    except (OSError, ValueError) as exc:
        raise ColdrecError(f"{d / 'metadata.json'}: corrupt ({type(exc).__name__}: {exc})") from None


def version_params(meta: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The params a version was fitted with (``seed``, ``encoder``, ``model``), laid over ``params``
    (default: params.yaml) so a version saved before a key existed still reads."""
    if params is None:
        from coldrec.core.config import load_params

        params = load_params()
    return with_overrides(params, meta.get("params") or {})


def read_into(model: _Model, model_dir: str | Path, meta: dict[str, Any]) -> _Model:
    """Fill ``model`` with a version's catalogue, collaborative parts, weights and fp32 item vectors
    (no encoder: the caller attaches one); ``meta``: its :func:`read_metadata`. A missing or
    corrupt file is a clear error."""
    d = Path(model_dir)
    try:
        items = pd.read_parquet(d / "items.parquet")
        vecs = np.load(d / ITEM_VECTORS)
        z = np.load(d / "collab.npz")
        n = len(items)
        sims = {name: sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=(n, n))
                for name in ("knn", "session")}
        weights = json.loads((d / "weights.json").read_text(encoding="utf-8"))
    except Exception as exc:  # many libraries, many error types: name the version and the cause
        raise ColdrecError(f"{d}: corrupt model version ({type(exc).__name__}: {exc})") from None
    if vecs.shape[0] != n:
        raise ColdrecError(f"{d}: {ITEM_VECTORS} has {vecs.shape[0]} rows for {n} items")
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
    model.item_vecs, model.weights, model.report = vecs.astype(np.float32), weights, meta.get("metrics", {})
    model.metadata = meta
    return model


def load_int8(d: str | Path, n_items: int, threads: int | None = None, spinning: bool = False
              ) -> tuple[OnnxEncoder, np.ndarray]:
    """The int8 encoder and its catalogue vectors from ``<version>/encoder_int8``; clear errors."""
    d = Path(d)
    enc = OnnxEncoder(d, threads=threads, spinning=spinning)
    f = d / ITEM_VECTORS
    if not f.is_file():
        raise ColdrecError(f"{f}: missing (re-run `coldrec quantize`)")
    try:
        vecs = np.load(f).astype(np.float32)
    except Exception as exc:  # noqa: BLE001
        raise ColdrecError(f"{f}: corrupt ({type(exc).__name__}: {exc})") from None
    if vecs.shape != (n_items, enc.get_sentence_embedding_dimension()):
        raise ColdrecError(f"{f}: shape {vecs.shape}, expected ({n_items}, {enc.get_sentence_embedding_dimension()})")
    return enc, vecs


def attach_int8(model: _Model, model_dir: str | Path, params: dict[str, Any]) -> _Model:
    """Serve from the version's int8 encoder: ``st`` and ``item_vecs`` become the int8 ones (the fp32
    encoder, when one was attached, is kept as ``st_fp32`` and its vectors as ``item_vecs_fp32``)."""
    q = typed(params).quantize
    enc, vecs = load_int8(Path(model_dir) / INT8_DIR, model.train.n_items, q.intra_op_threads, q.spinning)
    model.st_fp32, model.item_vecs_fp32 = getattr(model, "st", None), model.item_vecs
    model.st, model.item_vecs = enc, vecs
    return model


def load_version(model_dir: str | Path, params: dict[str, Any] | None = None) -> ColdrecRuntime:
    """A version ready to serve: collaborative parts + the int8 encoder and its item vectors."""
    d = Path(model_dir)
    check_files(d, SERVING_FILES)
    meta = read_metadata(d)
    merged = version_params(meta, params)
    p = typed(merged)
    model = read_into(ColdrecRuntime(p.model, p.encoder.item_template, p.encoder.max_chars), d, meta)
    return attach_int8(model, d, merged)
