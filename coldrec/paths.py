"""Where every stage writes by default: the one place default output paths are decided.

Why one module: the CLI, the Airflow tasks and the DVC stages must agree on where a prepared
dataset, a feature repo or a model version lives, or a stage run from one entry point would not
find what another wrote. Roots come from :class:`coldrec.config.Settings` (environment
overrides); the layout below them is fixed here.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from coldrec.config import settings
from coldrec.errors import ColdrecError

CURRENT = "current"  # file in a dataset's models folder naming its current version


def prepared_dir(dataset: str) -> Path:
    return settings().data_dir / dataset


def features_dir(dataset: str) -> Path:
    return settings().data_dir / "features" / dataset


def feast_repo_dir(dataset: str, online: str) -> Path:
    return settings().data_dir / "feast" / dataset / online


def validation_dir(dataset: str, out_dir: str) -> Path:
    """``quality.out_dir`` (relative to the checkout) / <dataset>."""
    base = Path(out_dir)
    return (base if base.is_absolute() else settings().root / base) / dataset


def evaluation_dir(dataset: str, split: str) -> Path:
    return settings().root / "reports" / "evaluation" / dataset / split


def milvus_uri() -> str:
    """The item index: ``$COLDREC_MILVUS_URI`` (a Milvus server ``http://host:19530`` or a Milvus
    Lite ``.db`` path), else Milvus Lite under the data dir."""
    return os.environ.get("COLDREC_MILVUS_URI") or str(settings().data_dir / "milvus" / "coldrec.db")


def models_root() -> Path:
    return settings().root / "artifacts" / "models"


def models_dir(dataset: str) -> Path:
    """A dataset's model versions: ``<models_root>/<dataset>/<version>/`` plus the ``current`` pointer."""
    return models_root() / dataset


def set_current(models: Path, version: str) -> Path:
    """Point ``models/current`` at ``version`` (atomically: a reader sees the old or the new name)."""
    models.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".current-", dir=models)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(version + "\n")
    os.replace(tmp, models / CURRENT)
    return models / version


def current_version(models: Path) -> Path:
    """The version directory ``models/current`` names; a clear error when there is none."""
    pointer = models / CURRENT
    if not pointer.is_file():
        raise ColdrecError(f"{models}: no current model version (no {CURRENT} file): run `coldrec train` first")
    version = pointer.read_text(encoding="utf-8").strip()
    if not version or "/" in version or not (models / version).is_dir():
        raise ColdrecError(f"{pointer}: names version {version!r}, which is not a directory in {models}")
    return models / version


def resolve_model(path: str | Path) -> Path:
    """A model version directory, or a dataset's models folder (its current version)."""
    p = Path(path)
    if (p / "metadata.json").is_file() or not (p / CURRENT).exists():
        return p
    return current_version(p)
