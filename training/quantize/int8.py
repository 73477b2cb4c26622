"""Quantize an exported ONNX encoder to int8 with ONNX Runtime, and serve a fitted model from it.

``dynamic`` (default): int8 per-channel weights, activations quantized per call; the word
embedding table is quantized too, which brings the file to ~1/4 of fp32. ``static``: QDQ, with
activation ranges calibrated on catalogue texts. Nodes named in ``quantize.exclude_nodes``
(substrings) stay fp32: by default layer 0's FFN output projection, the single most sensitive
MatMul (+0.0015 mean cosine for +1.8 MB). Measured in ``benchmarks/bench_quantize.py``.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core.errors import ColdrecError, ConfigError
from coldrec.core.params import typed
from coldrec.runtime.onnx_encoder import CONFIG_NAME, MODEL_NAME, OnnxEncoder
from training.quantize.export import export_onnx, quiet, torch_vectors, write_config
from training.quantize.fidelity import fidelity_report, file_size

log = logging.getLogger(__name__)


class FidelityError(ColdrecError):
    """The quantized encoder drifted too far from fp32: do not serve it."""

    exit_code = 1


def quantize_settings(params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's ``quantize:`` section (validated) plus the run's ``seed``, as one mapping."""
    p = typed(params)
    return {**{k: getattr(p.quantize, k) for k in p.quantize.__dataclass_fields__}, "seed": p.seed}


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


def quantize_onnx(fp32_dir: str | Path, out_dir: str | Path, settings: dict[str, Any],
                  calibration_texts: Sequence[str] | None = None) -> Path:
    """int8 ``out_dir/model.onnx`` (+ tokenizer, config) from an :func:`export_onnx` directory."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod

    s = settings
    src, out = Path(fp32_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / CONFIG_NAME).read_text(encoding="utf-8"))
    exclude = _excluded(src / MODEL_NAME, s["exclude_nodes"])
    common = dict(per_channel=bool(s["per_channel"]), reduce_range=bool(s["reduce_range"]), nodes_to_exclude=exclude,
                  weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    t0 = time.perf_counter()
    with quiet():
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
    write_config(out, {**{k: v for k, v in cfg.items() if k not in ("sha256", "created", "format")},
                        "precision": "int8",
                        "quantization": {"mode": s["mode"], "per_channel": bool(s["per_channel"]),
                                         "reduce_range": bool(s["reduce_range"]), "excluded_nodes": exclude,
                                         "seconds": round(time.perf_counter() - t0, 1)}})
    return out / MODEL_NAME


def quantize_encoder(st, texts: Sequence[str], out_dir: str | Path, settings: dict[str, Any],
                     workdir: str | Path | None = None, max_length: int | None = None) -> tuple[OnnxEncoder, dict[str, Any]]:
    """Export ``st``, quantize it into ``out_dir`` and write the fidelity report there.

    ``texts`` (the catalogue) calibrate static mode and are compared int8 vs fp32 (torch
    ``st.encode``, truncated at ``max_length`` like the int8 side)."""
    s = settings
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
        rep = fidelity_report(ref, got, sample, float(s["min_mean_cosine"]), out, sizes=sizes,
                              extra={"quantization": enc.config.get("quantization", {}), "fused": enc.config.get("fused"),
                                     "dense_head": enc.config.get("dense_head"), "max_length": max_length,
                                     "export_max_abs_err": enc.config.get("export_max_abs_err"),
                                     "seconds": {"export": round(t_export, 1), "quantize": round(t_quant, 1)}})
        return enc, rep
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def catalogue_texts(model) -> list[str]:
    from coldrec.runtime.text import item_texts

    return list(getattr(model, "texts", None) or item_texts(model.train.items, model.template, model.max_chars))


def item_max_length(model) -> int | None:
    """The token limit the fp32 item vectors were computed with (fine-tuning: ``finetune.max_len``)."""
    ft = (getattr(model, "report", None) or {}).get("finetune") or {}
    return int(model.ft_cfg.max_len) if ft.get("steps") and ft.get("stopped") != "fine-tuning off" else None


def quantize_model(model, workdir: str | Path, settings: dict[str, Any]):
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
