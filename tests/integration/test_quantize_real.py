"""The int8 encoder on real catalogue texts (online-retail item titles), with params.yaml settings."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SHARED

N_TEXTS = 600  # a seeded sample of the ~3.9k titles keeps this tier fast; `coldrec quantize` uses them all


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    from sentence_transformers import SentenceTransformer

    from coldrec.core.config import load_params
    from coldrec.data.prepare import build
    from coldrec.runtime.text import item_texts
    from training.encoder import resolve_model_path
    from training.quantize.int8 import quantize_encoder, quantize_settings

    params = load_params()
    texts = item_texts(build("online-retail").items, params["encoder"]["item_template"], params["encoder"]["max_chars"])
    pick = np.sort(np.random.default_rng(0).choice(len(texts), N_TEXTS, replace=False))
    texts = [texts[i] for i in pick]
    st = SentenceTransformer(str(resolve_model_path()), device="cpu").eval()
    base = tmp_path_factory.mktemp("int8-real")
    enc, rep = quantize_encoder(st, texts, base / "int8", quantize_settings(params), workdir=base / "work")
    return {"st": st, "texts": texts, "enc": enc, "report": rep, "fp32": base / "work" / "fp32"}


def test_int8_vectors_match_fp32_on_real_titles(real):
    rep = real["report"]
    assert rep["n_texts"] == N_TEXTS and rep["passed"]
    assert rep["mean_cosine"] >= 0.99, rep  # the target, over real catalogue texts
    assert rep["p01_cosine"] >= 0.975 and rep["min_cosine"] >= 0.96
    assert rep["neighbour_overlap@10"] >= 0.85  # the items' nearest neighbours barely move
    assert rep["size_ratio"] <= 0.35


def test_fp32_onnx_is_exact_and_int8_within_tolerance_per_text(real):
    from coldrec.runtime.onnx_encoder import OnnxEncoder

    texts = real["texts"][:200]
    ref = real["st"].encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(OnnxEncoder(real["fp32"]).encode(texts), ref, atol=1e-4)
    cos = (real["enc"].encode(texts) * ref).sum(1)
    assert cos.min() >= 0.96 and cos.mean() >= 0.99
