"""Where every stage writes by default: the one place default output paths are decided.

Why one module: the CLI, the Airflow tasks and the DVC stages must agree on where a prepared
dataset, a feature repo or a model version lives, or a stage run from one entry point would not
find what another wrote. Roots come from :class:`coldrec.core.config.Settings` (environment
overrides); the layout below them is fixed here.
"""
from __future__ import annotations

import os
from pathlib import Path

from coldrec.core.config import settings
from coldrec.core.errors import ColdrecError

CURRENT = "current"  # file in a dataset's models folder naming its production version (serving follows it)
LATEST = "latest"  # file naming the newest trained version (the candidate the pipeline works on)


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


def evaluation_dir(dataset: str, split: str | None = None) -> Path:
    """``reports/evaluation/<dataset>/<split>`` (no split: the dataset's folder of all splits)."""
    base = settings().root / "reports" / "evaluation" / dataset
    return base / split if split else base


def pipeline_report_dir(dataset: str) -> Path:
    """The retrain runs' reports (``<run_id>.json|.html``, ``latest.json``)."""
    return settings().root / "reports" / "pipeline" / dataset


def catalogue_log(dataset: str) -> Path:
    """Catalogue changes made through the service since training (replayed on every load, so a
    restart or a promotion keeps them; the next training reads the catalogue from the data)."""
    return settings().data_dir / "catalogue" / dataset / "changes.jsonl"


def serve_run_dir() -> Path:
    """A detached service's pid file and logs."""
    return settings().data_dir / "serve"


def airflow_home() -> Path:
    """The embedded Airflow's home: SQLite metadata DB and JWT secret (``coldrec pipeline run``)."""
    return settings().data_dir / "airflow"


def dags_dir() -> Path:
    return settings().root / "dags"


def expectations_dir() -> Path:
    """The Great Expectations suites (``expectations/*.json``)."""
    return settings().root / "expectations"


def feature_declarations_dir() -> Path:
    """The checkout's Feast repository (declarations only)."""
    return settings().root / "features"


def milvus_uri() -> str:
    """The item index: ``$COLDREC_MILVUS_URI`` (a Milvus server ``http://host:19530`` or a Milvus
    Lite ``.db`` path), else Milvus Lite under the data dir. A Milvus Lite file is held by one
    process only: while ``coldrec serve`` runs its ``milvus-lite server`` on it, that server's
    address (``<db>.server``) is the URI, so a pipeline run or a promotion reaches the same index."""
    uri = os.environ.get("COLDREC_MILVUS_URI") or str(settings().data_dir / "milvus" / "coldrec.db")
    if uri.endswith(".db"):
        server = Path(uri + ".server")
        if server.is_file():
            url = server.read_text(encoding="utf-8").strip()
            if _answers(url):
                return url
    return uri


def _answers(url: str) -> bool:
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 19530), timeout=0.5):
            return True
    except OSError:
        return False


def models_root() -> Path:
    return settings().root / "artifacts" / "models"


def models_dir(dataset: str) -> Path:
    """A dataset's model versions: ``<models_root>/<dataset>/<version>/`` plus the ``current`` pointer."""
    return models_root() / dataset


def _set_pointer(models: Path, name: str, version: str) -> Path:
    from coldrec.core.outputs import write_atomic

    write_atomic(models / name, version + "\n")
    return models / version


def set_current(models: Path, version: str) -> Path:
    """Point ``models/current`` (production: what serving answers with) at ``version``, atomically
    (a reader sees the old or the new name). Only promotion and rollback call it."""
    return _set_pointer(models, CURRENT, version)


def set_latest(models: Path, version: str) -> Path:
    """Point ``models/latest`` at a newly trained version: the candidate quantize, index, bundle and
    the gate work on, which is not served until it is promoted."""
    return _set_pointer(models, LATEST, version)


def _pointed(models: Path, name: str, hint: str) -> Path:
    pointer = models / name
    if not pointer.is_file():
        raise ColdrecError(f"{models}: no {name} model version (no {name} file): {hint}")
    version = pointer.read_text(encoding="utf-8").strip()
    if not version or "/" in version or not (models / version).is_dir():
        raise ColdrecError(f"{pointer}: names version {version!r}, which is not a directory in {models}")
    return models / version


def current_version(models: Path) -> Path:
    """The production version directory ``models/current`` names; a clear error when there is none."""
    return _pointed(models, CURRENT, "promote one first (`coldrec models promote V`, or `coldrec pipeline run`)")


def latest_version(models: Path) -> Path:
    """The newest trained version (``models/latest``); before any pointer was written by this code,
    the production one."""
    if not (models / LATEST).is_file() and (models / CURRENT).is_file():
        return current_version(models)
    return _pointed(models, LATEST, "run `coldrec train` first")


def registry_dir() -> Path:
    """The model registry's git repository (GTO tags; one artifact per dataset)."""
    return Path(os.environ.get("COLDREC_REGISTRY") or settings().root / "artifacts" / "registry")


def gate_dir(dataset: str) -> Path:
    return settings().root / "reports" / "gate" / dataset


def resolve_model(path: str | Path, pointer: str = CURRENT) -> Path:
    """A model version directory, or a dataset's models folder (the version its ``pointer`` names)."""
    p = Path(path)
    if (p / "metadata.json").is_file() or not ((p / CURRENT).exists() or (p / LATEST).exists()):
        return p
    return latest_version(p) if pointer == LATEST else current_version(p)
