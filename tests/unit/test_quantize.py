"""The int8 ONNX encoder: same vectors as the torch encoder (with and without a Dense head),
clear errors for missing/corrupt files, the served/fp32 pair in evaluation, the quantize step."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from coldrec.core.errors import ColdrecError
from coldrec.runtime.recommender import Signals, TrainData
from tests.conftest import make_items, params_with
from tests.unit.test_model import TINY, _shop_events

TITLES = ["WHITE HANGING HEART T-LIGHT HOLDER", "RED MUG", "JUMBO BAG RED RETROSPOT", "REGENCY CAKESTAND 3 TIER",
          "PARTY BUNTING", "LUNCH BAG RED RETROSPOT", "SET OF 3 CAKE TINS PANTRY DESIGN", "PACK OF 72 RETROSPOT CAKE CASES",
          "ASSORTED COLOUR BIRD ORNAMENT", "NATURAL SLATE HEART CHALKBOARD", "HEART OF WICKER SMALL", "JAM MAKING SET WITH JARS",
          "PAPER CHAIN KIT 50'S CHRISTMAS", "SPOTTY BUNTING", "ALARM CLOCK BAKELIKE RED", "GARDEN GNOME WITH A FISHING ROD",
          "VINTAGE SNAP CARDS", "a much longer description of a hand painted ceramic garden ornament with a tiny hat " * 3,
          "an overlong text that the tokenizer must truncate exactly like sentence-transformers does " * 30]


@pytest.fixture(scope="module")
def st():
    from sentence_transformers import SentenceTransformer

    from training.encoder import resolve_model_path

    return SentenceTransformer(str(resolve_model_path()), device="cpu").eval()


@pytest.fixture(scope="module")
def pretrained(st, tmp_path_factory):
    """Exported once per module: fp32 ONNX dir, int8 dir, fidelity report."""
    from training.quantize.int8 import quantize_encoder, quantize_settings

    base = tmp_path_factory.mktemp("onnx")
    enc, rep = quantize_encoder(st, TITLES, base / "int8", quantize_settings(TINY), workdir=base / "work")
    return {"fp32": base / "work" / "fp32", "int8": base / "int8", "enc": enc, "report": rep}


def test_fp32_onnx_gives_the_same_vectors_as_sentence_transformers(st, pretrained):
    from coldrec.runtime.onnx_encoder import OnnxEncoder

    enc = OnnxEncoder(pretrained["fp32"])
    ref = st.encode(TITLES, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    got = enc.encode(TITLES, batch_size=4, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4)  # order kept although batches are length-sorted
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    one = enc.encode("RED MUG")
    assert one.shape == (384,) and np.allclose(one, ref[1], atol=1e-4)
    assert enc.config["fused"] and not enc.config["dense_head"]


def test_int8_matches_fp32_and_is_a_quarter_of_the_size(st, pretrained):
    rep = pretrained["report"]
    ref = st.encode(TITLES, normalize_embeddings=True)
    got = pretrained["enc"].encode(TITLES)
    cos = (got * ref).sum(1)
    assert cos.mean() >= 0.985 and cos.min() >= 0.96, cos
    assert rep["mean_cosine"] == pytest.approx(float(cos.mean()), abs=2e-3)
    assert rep["size_ratio"] <= 0.35 and pretrained["enc"].precision == "int8"
    assert rep["quantization"]["mode"] == "dynamic" and rep["quantization"]["excluded_nodes"]
    doc = json.loads((pretrained["int8"] / "fidelity.json").read_text())
    assert doc["n_texts"] == len(TITLES) and doc["passed"] and len(doc["worst"]) == 10
    assert "int8 encoder fidelity: passed" in (pretrained["int8"] / "fidelity.html").read_text()


def test_an_int8_vector_does_not_depend_on_the_other_texts_of_the_call(pretrained):
    """Dynamic int8 scales each MatMul input by its whole tensor: batched, a text's vector would depend
    on its batch-mates (and on their padding). Serving batches concurrent requests, so a shopper's
    query vector must be the same alone, first, last, or among 18 others."""
    enc = pretrained["enc"]
    assert enc.per_text
    alone = np.stack([enc.encode(t) for t in TITLES])
    together = enc.encode(TITLES, batch_size=64)
    shuffled = enc.encode(TITLES[::-1], batch_size=4)[::-1]
    assert np.array_equal(alone, together) and np.array_equal(alone, shuffled)


def test_dense_head_is_part_of_the_exported_graph(st, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from coldrec.runtime.onnx_encoder import OnnxEncoder
    from training.encoder import resolve_model_path
    from training.model.finetune import with_head
    from training.quantize.int8 import quantize_encoder, quantize_settings

    head_model = with_head(SentenceTransformer(str(resolve_model_path()), device="cpu")).eval()
    dense = next(m for m in head_model if type(m).__name__ == "Dense")
    torch.manual_seed(0)
    with torch.no_grad():
        dense.linear.weight.normal_(0.0, 0.05)  # not the identity any more
    ref = head_model.encode(TITLES, normalize_embeddings=True)
    assert (ref * st.encode(TITLES, normalize_embeddings=True)).sum(1).mean() < 0.95
    enc, rep = quantize_encoder(head_model, TITLES, tmp_path / "int8", quantize_settings(TINY), workdir=tmp_path / "work")
    np.testing.assert_allclose(OnnxEncoder(tmp_path / "work" / "fp32").encode(TITLES), ref, atol=1e-4)
    assert enc.config["dense_head"] and rep["mean_cosine"] >= 0.985
    assert (enc.encode(TITLES) * ref).sum(1).min() >= 0.96


def test_missing_or_corrupt_model_files_are_clear_errors(pretrained, tmp_path):
    from coldrec.runtime.onnx_encoder import OnnxEncoder

    d = tmp_path / "int8"
    shutil.copytree(pretrained["int8"], d)
    good = (d / "model.onnx").read_bytes()
    (d / "model.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ColdrecError, match=r"int8/model.onnx: corrupt \(sha256"):
        OnnxEncoder(d)
    with pytest.raises(ColdrecError, match=r"int8/model.onnx: corrupt ONNX model"):
        OnnxEncoder(d, verify=False)  # without the checksum, ONNX Runtime's own failure is named too
    (d / "model.onnx").unlink()
    with pytest.raises(ColdrecError, match=r"int8/model.onnx: missing"):
        OnnxEncoder(d)
    (d / "model.onnx").write_bytes(good)
    (d / "coldrec_onnx.json").write_text("{not json")
    with pytest.raises(ColdrecError, match=r"coldrec_onnx.json: corrupt"):
        OnnxEncoder(d)


def test_settings_come_from_params_and_are_validated():
    from coldrec.core.errors import ConfigError
    from training.quantize.int8 import quantize_settings

    assert quantize_settings(params_with({"quantize": {"mode": "static"}}))["mode"] == "static"
    assert quantize_settings(params_with())["mode"] == "dynamic" and quantize_settings(params_with())["seed"] == 42
    with pytest.raises(ConfigError, match="quantize.mode"):
        params_with({"quantize": {"mode": "fp4"}})
    with pytest.raises(ConfigError, match="quantize.moode"):
        params_with({"quantize": {"moode": "static"}})


@pytest.fixture(scope="module")
def served_pair(tmp_path_factory):
    """`coldrec` and `coldrec_fp32` as the evaluation builds them: one fit, two encoders."""
    from training import methods
    from training.model import hybrid

    calls = []
    real_fit = hybrid.ColdrecModel.fit

    def counting_fit(self, train):
        calls.append(1)
        return real_fit(self, train)

    hybrid.ColdrecModel.fit = counting_fit
    try:
        train = TrainData.build(_shop_events(), make_items(8), seed=3)
        int8 = methods.make("coldrec", TINY).fit(train)
        fp32 = methods.make("coldrec_fp32", TINY).fit(train)
        served = methods.make("coldrec_served", TINY).fit(train)
    finally:
        hybrid.ColdrecModel.fit = real_fit
    return int8, fp32, len(calls), served


def test_evaluation_gets_the_served_int8_model_and_its_fp32_twin_from_one_fit(served_pair):
    from sentence_transformers import SentenceTransformer

    from coldrec.runtime.onnx_encoder import OnnxEncoder

    int8, fp32, fits, _ = served_pair
    assert fits == 1 and int8 is not fp32
    assert isinstance(int8.st, OnnxEncoder) and isinstance(fp32.st, SentenceTransformer) and int8.st_fp32 is fp32.st
    cos = (int8.item_vecs * fp32.item_vecs).sum(1)
    assert cos.min() >= 0.97 and int8.report["quantize"]["mean_cosine"] >= 0.98
    assert "quantize" not in fp32.report and fp32.weights is int8.weights
    profiles = [Signals(items=["i0", "i2"]), Signals(query="garden thing"), Signals()]
    a, b = int8.score(profiles), fp32.score(profiles)
    assert a.shape == b.shape == (3, 8) and np.isfinite(a).all()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    assert int8.recommend(Signals(query="item number 7 lighting"), n=3)


def test_coldrec_served_ranks_like_coldrec_on_its_milvus_candidates(served_pair):
    """`coldrec_served` shares `coldrec`'s fit and int8 encoder (no third fit) and, on a catalogue
    its candidates cover, gives the same scores; its scores are the evaluation harness's shape."""
    int8, _, fits, served = served_pair
    assert fits == 1 and served.ranker.model is int8
    profiles = [Signals(items=["i0", "i2"]), Signals(query="garden thing"), Signals(), Signals(items=["nope"])]
    got, want = served.score(profiles), int8.score(profiles)
    assert got.shape == want.shape == (4, 8)
    finite = np.isfinite(got)
    assert finite.sum(axis=1).min() >= 5  # tiny catalogue: the candidates are (nearly) all of it
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4)


def test_quantized_version_saves_and_loads_int8_by_default_fp32_by_flag(served_pair, tmp_path):
    from sentence_transformers import SentenceTransformer

    from coldrec.runtime.onnx_encoder import OnnxEncoder
    from training.model.artifacts import load_model, save_model

    int8, fp32, _, _ = served_pair
    path = save_model(int8, tmp_path / "v1", "fp-test", TINY)
    assert (path / "encoder" / "config.json").exists() and (path / "encoder_int8" / "model.onnx").exists()
    np.testing.assert_allclose(np.load(path / "item_vectors.npy"), fp32.item_vecs)
    served = load_model(path)
    assert isinstance(served.st, OnnxEncoder)
    p = Signals(items=["i0", "i4"], event_types=["purchase", "view"], query="red")
    np.testing.assert_allclose(served.score([p]), int8.score([p]), atol=1e-4)
    assert isinstance(load_model(path, quantized=False).st, SentenceTransformer)
    (path / "encoder_int8" / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(ColdrecError, match=r"encoder_int8/model.onnx: corrupt"):
        load_model(path)
    assert isinstance(load_model(path, quantized=False).st, SentenceTransformer)
    shutil.rmtree(path / "encoder_int8")
    with pytest.raises(ColdrecError, match=r"encoder_int8/model.onnx: missing"):
        load_model(path, quantized=True)
    assert isinstance(load_model(path).st, SentenceTransformer)  # no int8 encoder written: fp32, with a warning


@pytest.fixture
def reuse_served_int8(served_pair, monkeypatch):
    """`coldrec quantize` on a version of the served pair's fp32 model: its int8 export already
    exists (same weights), so reuse it instead of exporting again (export is tested above)."""
    from coldrec.runtime.onnx_encoder import OnnxEncoder
    from training.quantize import stage
    from training.quantize.export import torch_vectors
    from training.quantize.fidelity import fidelity_report, file_size

    int8, _, _, _ = served_pair

    def fake_quantize_encoder(st, texts, out_dir, settings, workdir=None, max_length=None, **_):
        shutil.copytree(int8.st.path, out_dir, dirs_exist_ok=True)
        enc = OnnxEncoder(out_dir)
        rep = fidelity_report(torch_vectors(st, texts, max_length=max_length), enc.encode(texts, max_length=max_length),
                              texts, settings["min_mean_cosine"], out_dir,
                              sizes={"fp32": 90_000_000, "int8": file_size(out_dir / "model.onnx")},
                              extra={"max_length": max_length})
        return enc, rep

    monkeypatch.setattr(stage, "quantize_encoder", fake_quantize_encoder)


def test_quantize_command_writes_int8_encoder_and_fidelity_into_the_version(served_pair, reuse_served_int8, cli,
                                                                             tmp_path, monkeypatch):
    import yaml

    from coldrec.runtime.onnx_encoder import OnnxEncoder
    from training.model.artifacts import load_model, save_model

    _, fp32, _, _ = served_pair
    path = save_model(fp32, tmp_path / "v2", "fp-test", TINY)
    assert not (path / "encoder_int8").exists()
    res = cli("quantize", "--model", path)
    assert res.exit_code == 0, res.output
    assert "mean cosine" in res.output and "encoder_int8" in res.output
    rep = json.loads((path / "encoder_int8" / "fidelity.json").read_text())
    assert rep["passed"] and rep["n_texts"] == 8 and rep["size_ratio"] <= 0.35
    assert rep["max_length"] == 32  # item vectors encoded with the fine-tuning max_len, like the fp32 ones
    served = load_model(path)
    assert isinstance(served.st, OnnxEncoder)
    assert (served.item_vecs * fp32.item_vecs).sum(1).min() >= 0.97
    np.testing.assert_allclose(served.item_vecs, np.load(path / "encoder_int8" / "item_vectors.npy"))

    # below the fidelity gate: exit 1, the installed int8 encoder is kept, the report is left aside
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_with({"quantize": {"min_mean_cosine": 1.01}})))
    monkeypatch.setenv("COLDREC_PARAMS", str(tmp_path / "params.yaml"))
    before = (path / "encoder_int8" / "model.onnx").read_bytes()
    res = cli("quantize", "--model", path)
    assert res.exit_code == 1 and "not installed" in res.output
    assert (path / "encoder_int8.rejected" / "fidelity.html").exists()
    assert (path / "encoder_int8" / "model.onnx").read_bytes() == before

    res = cli("quantize", "--model", tmp_path / "nope")
    assert res.exit_code == 2 and "not a coldrec model version" in res.output


SERVE_ONE = """
import json, sys, time
t0 = time.perf_counter()
from coldrec.runtime.recommender import Signals
from coldrec.runtime.profile import build_profile
from coldrec.runtime.version import load_version
model = load_version(sys.argv[1])
built = build_profile(model, items=["i0"], queries=["garden thing"])
recs = model.recommend(built.signals, n=3)
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "training") if m in sys.modules)
print(json.dumps({"items": [r.item_id for r in recs], "reasons": [r.reason for r in recs], "heavy": heavy,
                  "encoder": type(model.st).__name__, "seconds": time.perf_counter() - t0}))
"""


def test_a_fresh_process_serves_the_int8_version_without_torch(served_pair, tmp_path):
    """The runtime loads a version's int8 encoder and answers a recommendation with no torch,
    transformers, sentence-transformers or fit-time code in the process, and ranks like the fit."""
    import subprocess
    import sys

    from coldrec.runtime.profile import build_profile
    from training.model.artifacts import save_model

    int8, _, _, _ = served_pair
    path = save_model(int8, tmp_path / "v1", "fp-test", TINY)
    out = subprocess.run([sys.executable, "-c", SERVE_ONE, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [] and got["encoder"] == "OnnxEncoder"
    expected = int8.recommend(build_profile(int8, items=["i0"], queries=["garden thing"]).signals, n=3)
    assert got["items"] == [r.item_id for r in expected] and got["reasons"] == [r.reason for r in expected]


def test_runtime_modules_import_nothing_of_fit_time():
    """Static rule behind the test above: no module of coldrec/runtime imports torch, transformers,
    sentence-transformers or anything under training/ (function-level imports included)."""
    import ast
    from pathlib import Path

    from tests.conftest import ROOT

    banned = ("torch", "transformers", "sentence_transformers", "training")
    offenders = []
    for f in sorted((ROOT / "coldrec" / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{Path(f).name}: {n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []
