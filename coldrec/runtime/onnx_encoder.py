"""The int8 (or fp32) ONNX encoder, run with ONNX Runtime and the Rust ``tokenizers`` library.

Why it is in the runtime: it is what turns a shopper's query or stated interests into a vector
at request time, so it must load without torch, transformers or sentence-transformers. The
files it reads (``model.onnx``, ``tokenizer.json``, ``coldrec_onnx.json``) are written at fit
time by ``training.quantize``; it is a drop-in for the ``SentenceTransformer.encode`` calls the
scorer makes (same tokenisation, pooling, head and normalisation, checked there).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coldrec.core.errors import ColdrecError
from coldrec.data.datasets.fetch import sha256_of

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

CONFIG_NAME = "coldrec_onnx.json"
MODEL_NAME = "model.onnx"


def session(path: Path, threads: int | None = None, spinning: bool = False) -> InferenceSession:
    """An ONNX Runtime CPU session; spinning off (far faster when the CPU is shared)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


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
            self.session = session(d / MODEL_NAME, threads, spinning)
        except Exception as exc:  # noqa: BLE001 - ORT raises several types for unreadable models
            raise ColdrecError(f"{d / MODEL_NAME}: corrupt ONNX model ({type(exc).__name__}: {exc})") from None
        self._fast = None
        tok_file = d / "tokenizer.json"
        if not tok_file.is_file() or self.config.get("pad_token_id") is None:
            raise ColdrecError(f"{tok_file}: missing (or no pad token in {CONFIG_NAME}): the runtime reads a fast "
                               "tokenizer file only; re-run `coldrec quantize` with a fast tokenizer")
        try:
            from tokenizers import Tokenizer  # the Rust tokenizer alone: serving needs neither torch nor transformers

            self._fast = Tokenizer.from_file(str(tok_file))
            self._fast.enable_padding(pad_id=int(self.config["pad_token_id"]), pad_token=str(self.config["pad_token"]),
                                      direction=self.config.get("padding_side", "right"))
            self._fast.no_truncation()
            self._limit: int | None = None
        except Exception as exc:  # noqa: BLE001
            raise ColdrecError(f"{tok_file}: corrupt ({type(exc).__name__}: {exc})") from None
        self.max_seq_length = int(self.config.get("max_seq_length") or 512)
        self.precision = self.config.get("precision", "?")
        # Dynamic int8 quantizes each MatMul's input with a scale taken from the whole input tensor:
        # in a batch, a text's vector then depends on its batch-mates (and their padding), by up to
        # 0.03 per coordinate on catalogue titles. Served recommendations must not depend on who else
        # asked at the same moment, so such a model encodes each text in a call of its own.
        self.per_text = self.precision == "int8" and (self.config.get("quantization") or {}).get("mode") == "dynamic"

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, np.ndarray]:
        """The model's inputs (int64 arrays, padded to the longest text) exactly as ST tokenizes."""
        limit = int(max_length or self.max_seq_length)
        assert self._fast is not None  # __init__ sets it or raises
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
        Texts are batched longest-first (as sentence-transformers does) and returned in input order;
        a dynamically quantized model encodes one text per call (see ``per_text``)."""
        single = isinstance(texts, str)
        items = [texts] if single else [str(t) for t in texts]
        dim = self.get_sentence_embedding_dimension()
        out = np.zeros((len(items), dim), np.float32)
        order = np.argsort([-len(t) for t in items], kind="stable")
        step = 1 if self.per_text else int(batch_size)
        for s in range(0, len(items), step):
            idx = order[s:s + step]
            out[idx] = self.session.run(None, self.tokenize([items[i] for i in idx], max_length))[0]
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.path}, {self.precision})"
