"""Write a model version (and read one back with its fp32 encoder, for quantization and tests).

The layout is documented in :mod:`coldrec.runtime.version`, which reads it for serving. A
version is named by a fingerprint of data + params + code and written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core import paths
from coldrec.core.config import settings
from coldrec.core.errors import ColdrecError
from coldrec.core.outputs import owned_dir
from coldrec.core.progress import quiet_library_bars
from coldrec.runtime.version import (
    ENCODER_DIR,
    FILES,
    INT8_DIR,
    ITEM_VECTORS,
    attach_int8,
    check_files,
    read_into,
    read_metadata,
    version_params,
)

log = logging.getLogger(__name__)


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


def version_target(out_dir: str | Path | None, data_fingerprint: str, params: dict[str, Any],
                   models: str | Path | None = None) -> tuple[str, Path]:
    """(version name, directory): ``out_dir`` as given, else ``models/<version>``. Known before fitting,
    so the output location can be checked before minutes of work."""
    used = {k: params.get(k) for k in ("seed", "encoder", "model")}
    version = version_id(data_fingerprint, used, code_version())
    return version, Path(out_dir) if out_dir else Path(models or paths.models_root()) / version


VERSION_FILES = (*FILES, INT8_DIR, f"{INT8_DIR}.rejected")


def save_model(model, out_dir: str | Path | None, data_fingerprint: str, params: dict[str, Any],
               extra_metadata: dict[str, Any] | None = None, models: str | Path | None = None,
               inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> Path:
    """Write the version to ``out_dir``, else to ``models/<version>`` (default ``artifacts/models``),
    under the output rule of :mod:`coldrec.core.outputs`."""
    code = code_version()
    used = {k: params.get(k) for k in ("seed", "encoder", "model")}
    version, target = version_target(out_dir, data_fingerprint, params, models)
    with owned_dir(target, stage="train", inputs=inputs, force=force, legacy=VERSION_FILES, what="model version") as tmp:
        getattr(model, "st_fp32", model.st).save(str(tmp / ENCODER_DIR))  # quantized: fp32 here, int8 below
        np.save(tmp / ITEM_VECTORS, getattr(model, "item_vecs_fp32", model.item_vecs))
        if hasattr(model, "st_fp32"):
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
        meta = {"version": version, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_fingerprint": data_fingerprint, "code_version": code, "params": used,
                "metrics": model.report, "n_items": int(model.train.n_items), **(extra_metadata or {})}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return target


def save_int8(model, target: str | Path) -> Path:
    """Copy a quantized model's int8 encoder (files + fidelity) and item vectors into ``target``."""
    src = Path(model.st.path)
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    np.save(out / ITEM_VECTORS, np.asarray(model.item_vecs, np.float32))
    return out


def load_model(model_dir: str | Path, params: dict[str, Any] | None = None, quantized: bool | None = None):
    """A ColdrecModel with the version's fp32 encoder loaded (fit-time: quantization, experiments).

    ``quantized``: None (default) also swaps in the int8 encoder of ``encoder_int8/`` when the
    version has one (else fp32, with a warning); True requires it; False keeps fp32. Serving uses
    :func:`coldrec.runtime.version.load_version` instead, which never loads torch."""
    from sentence_transformers import SentenceTransformer

    from training.model.hybrid import ColdrecModel

    d = Path(model_dir)
    check_files(d)
    meta = read_metadata(d)
    model = read_into(ColdrecModel(version_params(meta, params)), d, meta)
    try:
        with quiet_library_bars():
            model.st = SentenceTransformer(str(d / ENCODER_DIR), device="cpu")
    except Exception as exc:  # many libraries, many error types: name the version and the cause
        raise ColdrecError(f"{d}: corrupt model version ({type(exc).__name__}: {exc})") from None
    if quantized is None and not (d / INT8_DIR).exists():
        log.warning("%s: no %s/ (run `coldrec quantize`); serving the fp32 encoder", d, INT8_DIR)
    elif quantized is None or quantized:
        attach_int8(model, d, params if params is not None else model.params)
    return model
