"""Stage ``quantize``: write ``<version>/encoder_int8/`` beside the version's fp32 encoder."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core.config import load_params
from coldrec.core.outputs import atomic_dir
from coldrec.runtime.version import INT8_DIR, ITEM_VECTORS
from training.model.artifacts import load_model
from training.quantize.int8 import FidelityError, catalogue_texts, item_max_length, quantize_encoder, quantize_settings


def quantize_version(model_dir: str | Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage ``quantize``: write ``<version>/encoder_int8/`` (int8 encoder, int8 item vectors,
    fidelity report) beside the fp32 encoder. Below the fidelity gate nothing is installed and the
    report is left in ``<version>/encoder_int8.rejected/``."""
    params = load_params() if params is None else params
    s = quantize_settings(params)
    d = Path(model_dir)
    model = load_model(d, params, quantized=False)
    texts = catalogue_texts(model)
    max_len = item_max_length(model)
    with tempfile.TemporaryDirectory(prefix="coldrec-quantize-") as work:
        enc, rep = quantize_encoder(model.st, texts, Path(work) / "int8", s, workdir=Path(work) / "fp32", max_length=max_len)
        if not rep["passed"]:
            rejected = d / f"{INT8_DIR}.rejected"
            with atomic_dir(rejected) as tmp:
                for name in ("fidelity.json", "fidelity.html"):
                    shutil.copy2(Path(work) / "int8" / name, tmp / name)
            raise FidelityError(f"{d}: int8 encoder mean cosine {rep['mean_cosine']:.4f} < {rep['min_mean_cosine']} "
                                f"(not installed; report in {rejected})")
        vecs = enc.encode(texts, batch_size=64, max_length=max_len)
        rep["served_item_vectors_cosine"] = {"mean": float((vecs * model.item_vecs).sum(1).mean()),
                                             "min": float((vecs * model.item_vecs).sum(1).min())}
        (Path(work) / "int8" / "fidelity.json").write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
        with atomic_dir(d / INT8_DIR) as tmp:
            for f in (Path(work) / "int8").iterdir():
                shutil.copy2(f, tmp / f.name)
            np.save(tmp / ITEM_VECTORS, vecs)
    shutil.rmtree(d / f"{INT8_DIR}.rejected", ignore_errors=True)
    rep["out_dir"] = str(d / INT8_DIR)
    return rep
