"""Stage ``quantize``: the encoder as int8 ONNX for fast CPU serving, with a fidelity report.

Route (measured on the 2-core AVX2 dev box, see ``benchmarks/bench_quantize.py``):

1. **Export** the whole sentence-transformers forward (transformer -> pooling -> Dense head if
   the model was fine-tuned with one -> Normalize) to ONNX with dynamic batch and sequence axes
   (TorchScript exporter; eager attention so ONNX Runtime can fuse it).
2. **Fuse** (BERT-family encoders): ONNX Runtime's transformer optimizer turns the graph into
   EmbedLayerNormalization / Attention / SkipLayerNormalization / BiasGelu kernels. The fp32 graph
   is checked against ``SentenceTransformer.encode`` before anything is quantized.
3. **Quantize** with ONNX Runtime: ``dynamic`` (default; int8 per-channel weights, activations
   quantized per call; the word-embedding table is quantized too, which is what brings the file
   to ~1/4 of fp32) or ``static`` (QDQ, activation ranges calibrated on catalogue texts).
   Nodes named in ``quantize.exclude_nodes`` (substrings) stay fp32: by default layer 0's FFN
   output projection, the single most sensitive MatMul (+0.0015 mean cosine for +1.8 MB).
4. **Fidelity**: cosine(int8, fp32) for every catalogue text, nearest-neighbour overlap, file
   sizes; ``fidelity.json`` + ``fidelity.html`` next to the model. ``coldrec quantize`` fails
   (exit 1, nothing installed) when the mean cosine is below ``quantize.min_mean_cosine``.

:class:`OnnxEncoder` is a drop-in for the ``SentenceTransformer.encode`` calls the model makes.
Inside a model version the int8 encoder lives in ``<version>/encoder_int8/`` (``model.onnx``,
tokenizer files, ``coldrec_onnx.json``, ``item_vectors.npy`` from the int8 encoder,
``fidelity.json``/``.html``).
"""
from __future__ import annotations

import contextlib
import copy
import html
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from coldrec.datasets.fetch import sha256_of
from coldrec.errors import ColdrecError, ConfigError
from coldrec.recommender import Recommender, TrainData

log = logging.getLogger(__name__)

CONFIG_NAME = "coldrec_onnx.json"
MODEL_NAME = "model.onnx"
INT8_DIR = "encoder_int8"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

DEFAULTS: dict[str, Any] = {
    "enabled": True,  # the served model (`coldrec`) uses the int8 encoder
    "mode": "dynamic",  # dynamic | static
    "per_channel": True,
    "reduce_range": False,
    "fuse": True,  # ONNX Runtime transformer fusions before quantizing (BERT-family encoders)
    "exclude_nodes": ["encoder/layer.0/output/dense/"],  # substrings of node names kept in fp32
    "calibration_size": 256,  # static mode: catalogue texts used to calibrate activation ranges
    "fidelity_max_texts": None,  # texts compared in the fidelity report (null: whole catalogue)
    "min_mean_cosine": 0.99,  # the quantize step fails below this
    "intra_op_threads": None,  # null: ONNX Runtime's default (physical cores)
    "spinning": False,  # ORT worker-thread spin-waiting: off is much faster on a shared CPU
    "opset": 17,
    "seed": 42,
}


class FidelityError(ColdrecError):
    """The quantized encoder drifted too far from fp32: do not serve it."""

    exit_code = 1


def quantize_settings(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``params.yaml`` ``quantize:`` over :data:`DEFAULTS` (pass either full params or the section)."""
    p = params or {}
    if "quantize" in p:
        section = p.get("quantize") or {}
    else:  # the section itself (or full params without one: only keys this step knows are used)
        section = {k: v for k, v in p.items() if k in DEFAULTS}
    s = {**DEFAULTS, **section}
    if s["mode"] not in ("dynamic", "static"):
        raise ConfigError(f"quantize.mode: {s['mode']!r} is not one of dynamic, static")
    return s


# ---------------------------------------------------------------------------------------- export
def _input_names(tokenizer) -> list[str]:
    sample = tokenizer(["a"], return_tensors="np")
    return [k for k in INPUTS if k in sample]


def _session(path: Path, threads: int | None = None, spinning: bool = False):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def torch_vectors(st, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None) -> np.ndarray:
    """``st.encode`` (normalised float32), truncating at ``max_length`` tokens when given."""
    old = st.max_seq_length
    try:
        if max_length:
            st.max_seq_length = int(max_length)
        return np.asarray(st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
    finally:
        st.max_seq_length = old


def _fuse(src: Path, dst: Path, config) -> bool:
    """ONNX Runtime BERT fusions; False (dst untouched) when the encoder is not BERT-like."""
    if getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta", "mpnet", "electra"):
        return False
    from onnxruntime.transformers import optimizer

    with _quiet():
        opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=int(config.num_attention_heads),
                                       hidden_size=int(config.hidden_size), opt_level=0, use_gpu=False)
    stats = opt.get_fused_operator_statistics()
    if not stats.get("Attention"):
        return False
    opt.save_model_to_file(str(dst))
    return True


def export_onnx(st, out_dir: str | Path, fuse: bool = True, opset: int = 17,
                verify_texts: Sequence[str] | None = None, atol: float = 1e-4) -> Path:
    """Write ``out_dir/model.onnx`` (fp32) + tokenizer + ``coldrec_onnx.json`` for the whole
    SentenceTransformer forward; verified against ``st.encode`` (max abs diff <= ``atol``)."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = st.tokenizer
    names = _input_names(tok)
    model = copy.deepcopy(st).cpu().eval()
    try:  # eager attention traces into plain MatMul/Softmax, which ORT fuses into one Attention kernel
        model[0].auto_model.set_attn_implementation("eager")
    except Exception:  # noqa: BLE001 - older transformers / non-HF first module: keep its attention
        pass

    class Forward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = torch.nn.ModuleList(list(model))

        def forward(self, *tensors):
            feats = dict(zip(names, tensors))
            for m in self.mods:
                feats = m(feats)
            return feats["sentence_embedding"]

    sample = tok(["a short title", "a somewhat longer sample text used for tracing the export"], padding=True,
                 return_tensors="pt")
    raw = out / "model.raw.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Forward().eval(), tuple(sample[n] for n in names), str(raw), dynamo=False,
                          input_names=names, output_names=["sentence_embedding"], opset_version=int(opset),
                          do_constant_folding=True,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                        "sentence_embedding": {0: "batch"}})
    del model
    texts = list(verify_texts or []) or ["white hanging heart t-light holder", "red mug", "x",
                                         "a much longer title about a garden gnome with a hat " * 8]
    ref = torch_vectors(st, texts)
    fused = bool(fuse) and _fuse(raw, out / MODEL_NAME, st[0].auto_model.config)
    err = _max_err(out / MODEL_NAME, tok, names, texts, ref) if fused else float("inf")
    if fused and err > atol:
        log.warning("fused ONNX graph differs from torch by %.2g; using the unfused graph", err)
        fused = False
    if not fused:
        os.replace(raw, out / MODEL_NAME)
        err = _max_err(out / MODEL_NAME, tok, names, texts, ref)
    raw.unlink(missing_ok=True)
    if err > atol:
        raise ColdrecError(f"{out / MODEL_NAME}: ONNX export differs from the torch encoder (max abs {err:.2g} > {atol})")
    tok.save_pretrained(str(out))
    has_norm = any(type(m).__name__ == "Normalize" for m in st)
    _write_config(out, {"precision": "fp32", "inputs": names, "dim": int(ref.shape[1]),
                        "max_seq_length": int(st.max_seq_length or 512), "normalized_in_graph": has_norm,
                        "pad_token": tok.pad_token, "pad_token_id": tok.pad_token_id,
                        "padding_side": getattr(tok, "padding_side", "right"),
                        "fused": fused, "dense_head": any(type(m).__name__ == "Dense" for m in st),
                        "export_max_abs_err": float(err), "opset": int(opset)})
    return out / MODEL_NAME


def _max_err(path: Path, tok, names, texts, ref) -> float:
    """Largest |ONNX - torch| over the texts, run one at a time and as one padded batch."""
    sess = _session(path)
    one = [sess.run(None, {n: b[n].astype(np.int64) for n in names})[0][0]
           for b in (tok([t], truncation=True, max_length=tok.model_max_length, return_tensors="np") for t in texts)]
    b = tok(list(texts), padding=True, truncation=True, max_length=tok.model_max_length, return_tensors="np")
    batch = sess.run(None, {n: b[n].astype(np.int64) for n in names})[0]
    errs = []
    for got in (np.asarray(one, np.float32), np.asarray(batch, np.float32)):
        got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
        errs.append(float(np.abs(got - ref).max()))
    return max(errs)


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's tools warn through the root logger and warnings; silence them for one call."""
    loggers = [logging.getLogger(), logging.getLogger("onnxruntime"), logging.getLogger("onnxruntime.transformers")]
    levels = [lg.level for lg in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _write_config(out: Path, cfg: dict[str, Any]) -> None:
    cfg = {"format": 1, **cfg, "sha256": sha256_of(out / MODEL_NAME),
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2), encoding="utf-8")


# ------------------------------------------------------------------------------------ quantize
def _excluded(model_path: Path, patterns: Sequence[str]) -> list[str]:
    import onnx

    if not patterns:
        return []
    g = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in g.node if any(p in n.name for p in patterns)]


class _Calibration:
    """Tokenised catalogue texts, batch by batch, for static quantization."""

    def __init__(self, tokenize, texts: Sequence[str], batch: int = 32):
        self.batches = [tokenize(list(texts[i:i + batch])) for i in range(0, len(texts), batch)]
        self.it = iter(self.batches)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.batches)


def quantize_onnx(fp32_dir: str | Path, out_dir: str | Path, settings: dict[str, Any] | None = None,
                  calibration_texts: Sequence[str] | None = None) -> Path:
    """int8 ``out_dir/model.onnx`` (+ tokenizer, config) from an :func:`export_onnx` directory."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod

    s = quantize_settings(settings)
    src, out = Path(fp32_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / CONFIG_NAME).read_text(encoding="utf-8"))
    exclude = _excluded(src / MODEL_NAME, s["exclude_nodes"])
    common = dict(per_channel=bool(s["per_channel"]), reduce_range=bool(s["reduce_range"]), nodes_to_exclude=exclude,
                  weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    t0 = time.perf_counter()
    with _quiet():
        if s["mode"] == "dynamic":
            quantize_dynamic(str(src / MODEL_NAME), str(out / MODEL_NAME), **common)
        else:
            texts = list(calibration_texts or [])
            if not texts:
                raise ConfigError("quantize.mode static needs calibration texts (the catalogue)")
            rng = np.random.default_rng(int(s["seed"]))
            pick = rng.choice(len(texts), min(len(texts), int(s["calibration_size"])), replace=False)
            tokenize = OnnxEncoder(src, verify=False).tokenize

            class Reader(_Calibration, CalibrationDataReader):
                pass

            quantize_static(str(src / MODEL_NAME), str(out / MODEL_NAME), Reader(tokenize, [texts[i] for i in pick]),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            calibrate_method=CalibrationMethod.MinMax, **common)
    for f in src.iterdir():  # tokenizer files travel with the model
        if f.is_file() and f.name not in (MODEL_NAME, CONFIG_NAME) and not f.name.endswith(".onnx"):
            shutil.copy2(f, out / f.name)
    _write_config(out, {**{k: v for k, v in cfg.items() if k not in ("sha256", "created", "format")},
                        "precision": "int8",
                        "quantization": {"mode": s["mode"], "per_channel": bool(s["per_channel"]),
                                         "reduce_range": bool(s["reduce_range"]), "excluded_nodes": exclude,
                                         "seconds": round(time.perf_counter() - t0, 1)}})
    return out / MODEL_NAME


# ---------------------------------------------------------------------------------- the encoder
class OnnxEncoder:
    """``SentenceTransformer.encode`` on ONNX Runtime (CPU): same tokenizer, same pooling/head/normalisation.

    ``path`` is an :func:`export_onnx` / :func:`quantize_onnx` directory (or its ``model.onnx``).
    A missing or corrupt file is a :class:`ColdrecError` naming the file.
    """

    device = "cpu"

    def __init__(self, path: str | Path, threads: int | None = None, spinning: bool = False, verify: bool = True):
        d = Path(path)
        d = d.parent if d.suffix == ".onnx" else d
        self.path = d
        for name in (MODEL_NAME, CONFIG_NAME):
            if not (d / name).is_file():
                raise ColdrecError(f"{d / name}: missing (quantized encoder not written? run `coldrec quantize`)")
        try:
            self.config = json.loads((d / CONFIG_NAME).read_text(encoding="utf-8"))
            self.inputs = list(self.config["inputs"])
        except Exception as exc:  # noqa: BLE001
            raise ColdrecError(f"{d / CONFIG_NAME}: corrupt ({type(exc).__name__}: {exc})") from None
        if verify and self.config.get("sha256") and sha256_of(d / MODEL_NAME) != self.config["sha256"]:
            raise ColdrecError(f"{d / MODEL_NAME}: corrupt (sha256 differs from {CONFIG_NAME})")
        try:
            self.session = _session(d / MODEL_NAME, threads, spinning)
        except Exception as exc:  # noqa: BLE001 - ORT raises several types for unreadable models
            raise ColdrecError(f"{d / MODEL_NAME}: corrupt ONNX model ({type(exc).__name__}: {exc})") from None
        self._fast = self.tokenizer = None
        try:
            if (d / "tokenizer.json").is_file() and self.config.get("pad_token_id") is not None:
                from tokenizers import Tokenizer  # the Rust tokenizer alone: serving needs neither torch nor transformers

                self._fast = Tokenizer.from_file(str(d / "tokenizer.json"))
                self._fast.enable_padding(pad_id=int(self.config["pad_token_id"]), pad_token=str(self.config["pad_token"]),
                                          direction=self.config.get("padding_side", "right"))
                self._fast.no_truncation()
                self._limit = None
            else:
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(d))
        except Exception as exc:  # noqa: BLE001
            raise ColdrecError(f"{d}: tokenizer files missing or corrupt ({type(exc).__name__}: {exc})") from None
        self.max_seq_length = int(self.config.get("max_seq_length") or getattr(self.tokenizer, "model_max_length", 512))
        self.precision = self.config.get("precision", "?")

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, np.ndarray]:
        """The model's inputs (int64 arrays, padded to the longest text) exactly as ST tokenizes."""
        limit = int(max_length or self.max_seq_length)
        if self._fast is None:
            b = self.tokenizer(list(texts), padding=True, truncation="longest_first", max_length=limit, return_tensors="np")
            return {n: b[n].astype(np.int64) for n in self.inputs}
        if self._limit != limit:
            self._fast.enable_truncation(max_length=limit, strategy="longest_first")
            self._limit = limit
        enc = self._fast.encode_batch(list(texts))
        cols = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {n: np.array([getattr(e, cols[n]) for e in enc], dtype=np.int64) for n in self.inputs}

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.config["dim"])

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(self, texts: str | Sequence[str], batch_size: int = 64, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, max_length: int | None = None,
               **_: Any) -> np.ndarray:
        """float32 vectors, one row per text (a 1-D vector for a single string), like ST.encode.
        Texts are batched longest-first (as sentence-transformers does) and returned in input order."""
        single = isinstance(texts, str)
        items = [texts] if single else [str(t) for t in texts]
        dim = self.get_sentence_embedding_dimension()
        out = np.zeros((len(items), dim), np.float32)
        order = np.argsort([-len(t) for t in items], kind="stable")
        for s in range(0, len(items), int(batch_size)):
            idx = order[s:s + int(batch_size)]
            out[idx] = self.session.run(None, self.tokenize([items[i] for i in idx], max_length))[0]
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.path}, {self.precision})"


# ----------------------------------------------------------------------------------- fidelity
def file_size(path: Path) -> int:
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


def fidelity_report(fp32: np.ndarray, int8: np.ndarray, texts: Sequence[str], out_dir: str | Path | None = None,
                    sizes: dict[str, int] | None = None, extra: dict[str, Any] | None = None,
                    min_mean_cosine: float = DEFAULTS["min_mean_cosine"]) -> dict[str, Any]:
    """Cosine(int8, fp32) per text, top-10 neighbour overlap, sizes; written as fidelity.json/.html."""
    a = fp32 / np.maximum(np.linalg.norm(fp32, axis=1, keepdims=True), 1e-12)
    b = int8 / np.maximum(np.linalg.norm(int8, axis=1, keepdims=True), 1e-12)
    cos = (a * b).sum(1)
    k = min(10, len(a) - 1)
    overlap = None
    if k >= 1:
        sample = np.arange(len(a)) if len(a) <= 2000 else np.random.default_rng(0).choice(len(a), 2000, replace=False)
        sa, sb = a[sample] @ a.T, b[sample] @ b.T
        sa[np.arange(len(sample)), sample] = sb[np.arange(len(sample)), sample] = -np.inf
        ta, tb = np.argpartition(-sa, k, 1)[:, :k], np.argpartition(-sb, k, 1)[:, :k]
        overlap = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb)]))
    worst = np.argsort(cos)[:10]
    rep: dict[str, Any] = {
        "n_texts": int(len(cos)),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "p01_cosine": float(np.percentile(cos, 1)),
        "p50_cosine": float(np.median(cos)),
        "share_below_0_99": float((cos < 0.99).mean()),
        "neighbour_overlap@10": overlap,
        "min_mean_cosine": float(min_mean_cosine),
        "passed": bool(cos.mean() >= min_mean_cosine),
        "worst": [{"text": str(texts[i]), "cosine": float(cos[i])} for i in worst],
    }
    if sizes:
        rep["size_bytes"] = {k2: int(v) for k2, v in sizes.items()}
        if sizes.get("int8") and sizes.get("fp32"):
            rep["size_ratio"] = sizes["int8"] / sizes["fp32"]
    rep.update(extra or {})
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fidelity.json").write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
        (out / "fidelity.html").write_text(_html(rep, cos), encoding="utf-8")
    return rep


def _html(rep: dict[str, Any], cos: np.ndarray) -> str:
    e = html.escape
    rows = [(k, rep[k]) for k in ("n_texts", "mean_cosine", "min_cosine", "p01_cosine", "p50_cosine", "share_below_0_99",
                                   "neighbour_overlap@10", "size_ratio", "passed") if k in rep]
    rows += [(f"size {k} (MB)", v / 1e6) for k, v in rep.get("size_bytes", {}).items()]
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else e(str(v))  # noqa: E731
    table = "".join(f"<tr><th>{e(str(k))}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    edges = [-1.0, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0001]
    counts = np.histogram(cos, bins=edges)[0]
    hist = "".join(f"<tr><td>[{lo:g}, {min(hi, 1):g})</td><td>{c}</td>"
                   f"<td><div style='background:#4a7;height:10px;width:{int(300 * c / max(counts.max(), 1))}px'></div></td></tr>"
                   for lo, hi, c in zip(edges[:-1], edges[1:], counts))
    worst = "".join(f"<tr><td>{r['cosine']:.4f}</td><td>{e(r['text'])}</td></tr>" for r in rep.get("worst", []))
    q = e(json.dumps(rep.get("quantization", {}), default=str))
    verdict = "passed" if rep.get("passed") else "FAILED"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>int8 encoder fidelity</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head><body>"
            f"<h1>int8 encoder fidelity: {verdict}</h1><p>cosine(int8 vector, fp32 vector) per catalogue text; "
            f"gate: mean &ge; {rep.get('min_mean_cosine')}</p><table>{table}</table>"
            f"<h2>Distribution</h2><table>{hist}</table><h2>Lowest cosines</h2><table>{worst}</table>"
            f"<h2>Settings</h2><pre>{q}</pre></body></html>")


# --------------------------------------------------------------------------- whole-step helpers
def quantize_encoder(st, texts: Sequence[str], out_dir: str | Path, settings: dict[str, Any] | None = None,
                     workdir: str | Path | None = None, max_length: int | None = None) -> tuple[OnnxEncoder, dict[str, Any]]:
    """Export ``st``, quantize it into ``out_dir`` and write the fidelity report there.

    ``texts`` (the catalogue) calibrate static mode and are compared int8 vs fp32 (torch
    ``st.encode``, truncated at ``max_length`` like the int8 side)."""
    s = quantize_settings(settings)
    out = Path(out_dir)
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="coldrec-onnx-")) if own_tmp else Path(workdir)
    try:
        t0 = time.perf_counter()
        export_onnx(st, work / "fp32", fuse=s["fuse"], opset=s["opset"])
        t_export = time.perf_counter() - t0
        quantize_onnx(work / "fp32", out, s, calibration_texts=texts)
        t_quant = time.perf_counter() - t0 - t_export
        enc = OnnxEncoder(out, threads=s["intra_op_threads"], spinning=s["spinning"])
        sample = list(texts)
        if s["fidelity_max_texts"] and len(sample) > int(s["fidelity_max_texts"]):
            pick = np.sort(np.random.default_rng(int(s["seed"])).choice(len(sample), int(s["fidelity_max_texts"]), replace=False))
            sample = [sample[i] for i in pick]
        ref = torch_vectors(st, sample, max_length=max_length)
        got = enc.encode(sample, max_length=max_length)
        sizes = {"fp32": file_size(work / "fp32" / MODEL_NAME), "int8": file_size(out / MODEL_NAME)}
        rep = fidelity_report(ref, got, sample, out, sizes=sizes, min_mean_cosine=float(s["min_mean_cosine"]),
                              extra={"quantization": enc.config.get("quantization", {}), "fused": enc.config.get("fused"),
                                     "dense_head": enc.config.get("dense_head"), "max_length": max_length,
                                     "export_max_abs_err": enc.config.get("export_max_abs_err"),
                                     "seconds": {"export": round(t_export, 1), "quantize": round(t_quant, 1)}})
        return enc, rep
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def catalogue_texts(model) -> list[str]:
    from training.encoder import item_texts

    return list(getattr(model, "texts", None) or item_texts(model.train.items, model.template, model.max_chars))


def item_max_length(model) -> int | None:
    """The token limit the fp32 item vectors were computed with (fine-tuning: ``finetune.max_len``)."""
    ft = (getattr(model, "report", None) or {}).get("finetune") or {}
    return int(model.ft_cfg.max_len) if ft.get("steps") and ft.get("stopped") != "fine-tuning off" else None


def quantize_model(model, workdir: str | Path, settings: dict[str, Any] | None = None):
    """Serve a fitted ColdrecModel from the int8 encoder: export + quantize ``model.st`` into
    ``workdir``, keep the torch encoder as ``model.st_fp32`` (and its item vectors as
    ``model.item_vecs_fp32``), recompute ``model.item_vecs`` with the int8 encoder."""
    if hasattr(model, "st_fp32"):
        return model
    texts = catalogue_texts(model)
    enc, rep = quantize_encoder(model.st, texts, workdir, settings, workdir=Path(workdir) / "_work",
                                max_length=item_max_length(model))
    shutil.rmtree(Path(workdir) / "_work", ignore_errors=True)
    vecs = enc.encode(texts, batch_size=64, max_length=item_max_length(model))
    fp32_vecs = np.asarray(model.item_vecs, np.float32)
    rep["served_item_vectors_cosine"] = {"mean": float((vecs * fp32_vecs).sum(1).mean()),
                                         "min": float((vecs * fp32_vecs).sum(1).min())}
    (enc.path / "fidelity.json").write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
    model.st_fp32, model.item_vecs_fp32 = model.st, fp32_vecs
    model.st, model.item_vecs = enc, vecs
    model.report = {**(getattr(model, "report", None) or {}), "quantize": {k: v for k, v in rep.items() if k != "worst"}}
    log.info("int8 encoder: mean cosine %.4f (min %.4f) to fp32 over %d catalogue texts, %.0f%% of the fp32 size",
             rep["mean_cosine"], rep["min_cosine"], rep["n_texts"], 100 * rep.get("size_ratio", float("nan")))
    return model


def save_int8(model, target: str | Path) -> Path:
    """Copy a quantized model's int8 encoder (files + fidelity) and item vectors into ``target``."""
    src = Path(model.st.path)
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    np.save(out / "item_vectors.npy", np.asarray(model.item_vecs, np.float32))
    return out


def load_int8(d: str | Path, n_items: int, settings: dict[str, Any] | None = None) -> tuple[OnnxEncoder, np.ndarray]:
    """The int8 encoder and its catalogue vectors from ``<version>/encoder_int8``; clear errors."""
    s = quantize_settings(settings)
    d = Path(d)
    enc = OnnxEncoder(d, threads=s["intra_op_threads"], spinning=s["spinning"])
    f = d / "item_vectors.npy"
    if not f.is_file():
        raise ColdrecError(f"{f}: missing (re-run `coldrec quantize`)")
    try:
        vecs = np.load(f).astype(np.float32)
    except Exception as exc:  # noqa: BLE001
        raise ColdrecError(f"{f}: corrupt ({type(exc).__name__}: {exc})") from None
    if vecs.shape != (n_items, enc.get_sentence_embedding_dimension()):
        raise ColdrecError(f"{f}: shape {vecs.shape}, expected ({n_items}, {enc.get_sentence_embedding_dimension()})")
    return enc, vecs


def quantize_version(model_dir: str | Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage ``quantize``: write ``<version>/encoder_int8/`` (int8 encoder, int8 item vectors,
    fidelity report) beside the fp32 encoder. Below the fidelity gate nothing is installed and the
    report is left in ``<version>/encoder_int8.rejected/``."""
    from coldrec.dataset import atomic_dir
    from training.model.artifacts import load_model

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
            np.save(tmp / "item_vectors.npy", vecs)
    shutil.rmtree(d / f"{INT8_DIR}.rejected", ignore_errors=True)
    rep["out_dir"] = str(d / INT8_DIR)
    return rep


# ------------------------------------------------------------------- evaluation: fit once, two rows
_FITTED: dict[str, Any] = {}  # the last fitted fp32 ColdrecModel, shared by `coldrec` and `coldrec_fp32`


def _fitted_fp32(params: dict[str, Any], train: TrainData):
    from training.model.hybrid import ColdrecModel

    key = json.dumps({k: params.get(k) for k in ("seed", "encoder", "model")}, sort_keys=True, default=str)
    if _FITTED.get("train") is train and _FITTED.get("key") == key:
        return _FITTED["model"]
    _FITTED.clear()
    model = ColdrecModel(params).fit(train)
    _FITTED.update(train=train, key=key, model=model)
    return model


class ColdrecVariant(Recommender):
    """The evaluation's ``coldrec`` (as served: int8 encoder when ``quantize.enabled``) and
    ``coldrec_fp32`` (the same fitted model, torch fp32 encoder). The ColdrecModel is fitted once
    per training set and shared; the int8 variant is a shallow copy with the encoder and item
    vectors swapped. ``fit`` returns that model, not this placeholder."""

    name = "coldrec"
    uses_text = True

    def __init__(self, params: dict[str, Any] | None = None, quantized: bool = True):
        self.params = params or {}
        self.quantized = quantized

    def fit(self, train: TrainData):
        base = _fitted_fp32(self.params, train)
        s = quantize_settings(self.params)
        if not (self.quantized and s["enabled"]):
            return base
        model = copy.copy(base)
        work = tempfile.mkdtemp(prefix="coldrec-int8-")
        quantize_model(model, work, s)
        weakref.finalize(model.st, shutil.rmtree, work, True)  # the session holds the model in memory
        return model
