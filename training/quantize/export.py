"""Export a sentence-transformers encoder to ONNX (fp32), fused and checked against torch.

The whole forward (transformer -> pooling -> Dense head if fine-tuned with one -> Normalize) is
exported with dynamic batch and sequence axes (TorchScript exporter; eager attention so ONNX
Runtime can fuse it). BERT-family graphs are fused by ONNX Runtime's transformer optimizer
(EmbedLayerNormalization / Attention / SkipLayerNormalization / BiasGelu); the fp32 graph is
checked against ``SentenceTransformer.encode`` before anything is quantized, and a fused graph
that drifts is replaced by the unfused one.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core.errors import ColdrecError
from coldrec.data.datasets.fetch import sha256_of
from coldrec.runtime.onnx_encoder import CONFIG_NAME, MODEL_NAME, session

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _input_names(tokenizer) -> list[str]:
    sample = tokenizer(["a"], return_tensors="np")
    return [k for k in INPUTS if k in sample]


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

    with quiet():
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
        def __init__(self, modules):
            super().__init__()
            self.mods = torch.nn.ModuleList(modules)

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
        torch.onnx.export(Forward(list(model)).eval(), tuple(sample[n] for n in names), str(raw), dynamo=False,
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
    if not (out / "tokenizer.json").is_file():  # the runtime reads only the fast (Rust) tokenizer file
        raise ColdrecError(f"{out}: the encoder's tokenizer has no fast version (tokenizer.json); the torch-free "
                           "runtime cannot tokenize for it")
    has_norm = any(type(m).__name__ == "Normalize" for m in st)
    write_config(out, {"precision": "fp32", "inputs": names, "dim": int(ref.shape[1]),
                        "max_seq_length": int(st.max_seq_length or 512), "normalized_in_graph": has_norm,
                        "pad_token": tok.pad_token, "pad_token_id": tok.pad_token_id,
                        "padding_side": getattr(tok, "padding_side", "right"),
                        "fused": fused, "dense_head": any(type(m).__name__ == "Dense" for m in st),
                        "export_max_abs_err": float(err), "opset": int(opset)})
    return out / MODEL_NAME


def _max_err(path: Path, tok, names, texts, ref) -> float:
    """Largest |ONNX - torch| over the texts, run one at a time and as one padded batch."""
    sess = session(path)
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
def quiet():
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


def write_config(out: Path, cfg: dict[str, Any]) -> None:
    cfg = {"format": 1, **cfg, "sha256": sha256_of(out / MODEL_NAME),
           "created": datetime.now(UTC).isoformat(timespec="seconds")}
    (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
