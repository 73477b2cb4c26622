"""The Bento: the service, the torch-free runtime and one model version, packed by ``bentoml build``.

Why a Bento: it is the unit a platform team ships (``bentoml serve coldrec:<tag>`` here,
``bentoml containerize`` where a Docker engine runs, BentoCloud or Kubernetes). The version's
serving files go into the BentoML model store as ``coldrec-<dataset>:<version>`` (the fp32
encoder stays behind: serving never loads it), and the bentofile names that model, so the Bento
carries it; inside the Bento, ``src/bento.json`` tells the service which model to serve (bentofile
``envs`` reach only container images, not ``bentoml serve``).
Python requirements are the serving subset of ``requirements.lock``, pinned, not re-resolved.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from coldrec.core.errors import ColdrecError
from coldrec.runtime.version import SERVING_FILES, check_files, read_metadata

# what serving imports (coldrec.runtime, coldrec.runtime.item_index, serving/, coldrec.feature_store for Feast)
SERVING_PACKAGES = ("bentoml", "pymilvus", "milvus-lite", "onnxruntime", "tokenizers", "numpy", "pandas", "scipy",
                    "pyarrow", "pyyaml", "platformdirs", "pydantic", "feast", "redis", "typer", "rich", "tqdm")
SOURCES = ("coldrec", "serving", "params.yaml", "pyproject.toml", "README.md")  # the Bento's src/
MARKER = "bento.json"  # in the Bento's src/: which model and dataset it serves (read by serving/service.py)


def model_tag(dataset: str, version: str) -> str:
    name = re.sub(r"[^a-z0-9_.-]", "-", f"coldrec-{dataset}".lower())
    return f"{name}:{re.sub(r'[^a-z0-9_.-]', '-', version.lower())}"


def pinned_requirements(lock: Path, packages: tuple[str, ...] = SERVING_PACKAGES) -> list[str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if "==" in line:
            name = line.split("==")[0].strip()
            pins[name.lower().replace("_", "-")] = line.strip()
    missing = [p for p in packages if p not in pins]
    if missing:
        raise ColdrecError(f"{lock}: no pin for {', '.join(missing)}")
    return [pins[p] for p in packages]


def save_model(version_dir: Path, dataset: str) -> str:
    """The version's serving files into the BentoML model store (once per version)."""
    import bentoml
    from bentoml.exceptions import NotFound

    check_files(version_dir, SERVING_FILES)
    meta = read_metadata(version_dir)
    tag = model_tag(dataset, version_dir.name)
    try:
        return str(bentoml.models.get(tag).tag)
    except NotFound:
        pass
    with bentoml.models.create(tag, labels={"dataset": dataset, "framework": "coldrec"},
                               metadata={"version": version_dir.name, "data_fingerprint": meta.get("data_fingerprint"),
                                         "code_version": meta.get("code_version")}) as m:
        for f in SERVING_FILES:
            src = version_dir / f
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, Path(m.path) / f)
    return tag


def build_bento(version_dir: Path, dataset: str, root: Path) -> dict[str, Any]:
    """``bentoml build`` of serving.service:Coldrec with the version's model; returns the Bento's tag."""
    tag = save_model(version_dir, dataset)
    spec = {
        "service": "serving.service:Coldrec",
        "name": "coldrec",
        "description": f"coldrec recommendations for {dataset}, model version {version_dir.name}",
        "labels": {"dataset": dataset, "model_version": version_dir.name},
        "include": ["**"],
        "exclude": ["**/__pycache__"],
        "models": [tag],
        "envs": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
        "python": {"packages": pinned_requirements(root / "requirements.lock"), "lock_packages": False},
    }
    # the build context is assembled (sources + marker), so nothing is written into the checkout
    with tempfile.TemporaryDirectory(prefix="coldrec-bento-") as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        for name in SOURCES:
            src = root / name
            if src.is_dir():
                shutil.copytree(src, ctx / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, ctx / name)
        (ctx / MARKER).write_text(json.dumps({"model": tag, "dataset": dataset, "version": version_dir.name}), encoding="utf-8")
        bentofile = Path(tmp) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        out = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", str(bentofile), "--output", "tag", str(ctx)],
                             capture_output=True, text=True, cwd=ctx)
    if out.returncode != 0:
        raise ColdrecError(f"bentoml build failed: {(out.stderr or out.stdout)[-2000:]}")
    bento = out.stdout.strip().splitlines()[-1].replace("__tag__:", "").strip()
    return {"bento": bento, "model": tag, "version": version_dir.name, "dataset": dataset,
            "serve": f"bentoml serve {bento}", "containerize": f"bentoml containerize {bento}",
            "spec": json.loads(json.dumps(spec))}


def find_bento(dataset: str, version: str) -> str | None:
    """The newest Bento built for this dataset's model version (labels set by :func:`build_bento`)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentos = bentoml.bentos.list("coldrec")
    except NotFound:
        return None
    found = [b for b in bentos
             if b.info.labels.get("dataset") == dataset and b.info.labels.get("model_version") == version]
    return str(max(found, key=lambda b: b.info.creation_time).tag) if found else None
