"""The Feast repository copy a store lives in: where it is, how it is rendered, applied and opened.

The declarations live in ``features/`` (checkout root). Each working store is a *copy* of that
repository (``<data_dir>/feast/<dataset>/<online store>/`` by default) with a rendered
``feature_store.yaml`` whose registry and SQLite paths point inside the copy, so the
checkout's own ``features/`` never holds state and tests use throw-away copies. This module
owns that copy: its location, its configuration, ``feast apply`` on it and opening it; the
operations on an opened store (materialisation, reads, pushes) live in their own modules.

Online stores: ``sqlite`` (embedded default) or ``redis`` (connection string from
``$COLDREC_FEAST_REDIS``, else ``features.redis`` in params.yaml, else ``127.0.0.1:6379``).
Offline store: Feast's file (Parquet/Dask) store in both cases.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from coldrec.core import paths
from coldrec.core.errors import ConfigError
from coldrec.core.params import Params
from coldrec.feature_store.errors import FeatureStoreError, store_errors

if TYPE_CHECKING:  # feast takes ~10 s to import: only the functions that need it import it
    from feast import FeatureStore

ONLINE_STORES = ("sqlite", "redis")
DATA_ENV = "COLDREC_FEATURES_DATA"  # read by features/*.py: where the feature tables are
REDIS_ENV = "COLDREC_FEAST_REDIS"
DEFAULT_REDIS = "127.0.0.1:6379"


# --- locations ------------------------------------------------------------------------------

def declarations_dir() -> Path:
    """The checkout's Feast repository (declarations only)."""
    return paths.feature_declarations_dir()


def default_features_data(dataset: str) -> Path:
    return paths.features_dir(dataset)


def default_repo_dir(dataset: str, online: str) -> Path:
    return paths.feast_repo_dir(dataset, online)


def resolve_repo(dataset: str | None, params: Params, online: str | None = None,
                 repo: str | Path | None = None) -> tuple[str, str, Path]:
    """(dataset, online store, Feast repo copy) a feature command works on: the arguments given,
    else ``params.yaml``'s default dataset and online store and the default repo location."""
    name = dataset or params.data.default_dataset
    online = online or params.features.online_store  # an unknown store is the store module's error
    return name, online, Path(repo) if repo else paths.feast_repo_dir(name, online)


def project_name(dataset: str) -> str:
    """One Feast project per dataset, so that two datasets never share online keys."""
    return "coldrec_" + "".join(c if c.isalnum() else "_" for c in dataset)


def redis_connection(params: dict[str, Any] | None = None) -> str:
    return os.environ.get(REDIS_ENV) or ((params or {}).get("features") or {}).get("redis") or DEFAULT_REDIS


# --- rendering a repo copy ------------------------------------------------------------------

def store_config(repo: Path, project: str, online: str, redis: str | None = None) -> dict[str, Any]:
    """The ``feature_store.yaml`` content for a repo copy at ``repo``."""
    if online not in ONLINE_STORES:
        raise ConfigError(f"unknown online store {online!r} (expected one of: {', '.join(ONLINE_STORES)})")
    repo = Path(repo).resolve()
    if online == "sqlite":
        online_store: dict[str, Any] = {"type": "sqlite", "path": str(repo / "online_store.db")}
    else:
        online_store = {"type": "redis", "connection_string": redis or DEFAULT_REDIS}
    return {
        "project": project,
        "provider": "local",
        # serving reads the registry from memory; `apply` refreshes it in the same process
        "registry": {"registry_type": "file", "path": str(repo / "registry.db"), "cache_ttl_seconds": 600},
        "online_store": online_store,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
        "auth": {"type": "no_auth"},
    }


def render_repo(target: str | Path, *, project: str, online: str = "sqlite", redis: str | None = None,
                source: str | Path | None = None) -> Path:
    """Copy the declarations (``*.py`` and ``.feastignore``) to ``target`` and write its
    ``feature_store.yaml``. State already in ``target`` (registry, SQLite file) is kept."""
    src = Path(source) if source else declarations_dir()
    if not (src / "definitions.py").exists():
        raise FeatureStoreError(f"{src}: no Feast declarations here (expected definitions.py)")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for f in list(src.glob("*.py")) + [src / ".feastignore"]:
        if f.exists():
            shutil.copy2(f, target / f.name)
    cfg = store_config(target, project, online, redis)
    (target / "feature_store.yaml").write_text(
        "# Rendered by coldrec.feature_store.store.render_repo from features/ -- edit features/ instead.\n"
        + yaml.safe_dump(cfg, sort_keys=False),
        encoding="utf-8",
    )
    return target


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _repo_contents(repo: Path, features_data: Path):
    """What ``feast apply`` would collect from ``repo`` (honouring ``.feastignore``), with the
    declarations reading their tables from ``features_data``. Each call executes the files
    afresh under unique module names, so two repos in one process never share objects."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource, PushSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.repo_contents import RepoContents
    from feast.repo_operations import get_repo_files

    res = RepoContents(projects=[], data_sources=[], feature_views=[], on_demand_feature_views=[],
                       stream_feature_views=[], label_views=[], entities=[], feature_services=[], permissions=[])

    def add(bucket: list, obj: Any) -> None:
        if obj is not None and not any(obj is o for o in bucket):
            bucket.append(obj)

    with _env(DATA_ENV, str(features_data)):
        for path in get_repo_files(repo):
            spec = importlib.util.spec_from_file_location(f"_coldrec_feast_{path.stem}_{uuid.uuid4().hex}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for obj in vars(module).values():
                if isinstance(obj, Entity):
                    add(res.entities, obj)
                elif isinstance(obj, FeatureService):
                    add(res.feature_services, obj)
                elif isinstance(obj, FeatureView):
                    add(res.feature_views, obj)
                    add(res.data_sources, obj.batch_source)
                    add(res.data_sources, obj.stream_source)
                elif isinstance(obj, DataSource):
                    add(res.data_sources, obj)
                    if isinstance(obj, PushSource):
                        add(res.data_sources, obj.batch_source)
    res.entities.append(DUMMY_ENTITY)
    return res


def open_store(repo: str | Path) -> FeatureStore:
    """A FeatureStore on an applied repo copy."""
    repo = Path(repo)
    if not (repo / "feature_store.yaml").exists():
        raise FeatureStoreError(f"{repo}: no feature_store.yaml (run `coldrec features apply` first)")
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def apply(repo: str | Path, features_data: str | Path, quiet: bool = True) -> FeatureStore:
    """``feast apply`` on a rendered repo copy: register the declarations (sources pointing at
    ``features_data``) and create the online tables. Idempotent."""
    features_data = Path(features_data).resolve()
    missing = [t for t in ("user_profile", "item_popularity", "item_attributes") if not (features_data / f"{t}.parquet").exists()]
    if missing:
        raise FeatureStoreError(f"{features_data}: feature tables missing ({', '.join(missing)}); run `coldrec features build` first")
    from feast.repo_operations import apply_total_with_repo_instance

    store = open_store(repo)
    contents = _repo_contents(Path(repo), features_data)
    with redirect_stdout(StringIO()) if quiet else nullcontext():
        store_errors(apply_total_with_repo_instance)(store, store.project, store.registry, contents, skip_source_validation=False)
    store.refresh_registry()
    return store


def setup_store(dataset: str, *, online: str = "sqlite", features_data: str | Path | None = None,
                repo: str | Path | None = None, redis: str | None = None, project: str | None = None,
                params: dict[str, Any] | None = None) -> FeatureStore:
    """Render (or refresh) the repo copy for ``dataset`` and apply it."""
    features_data = Path(features_data) if features_data else default_features_data(dataset)
    repo = Path(repo) if repo else default_repo_dir(dataset, online)
    render_repo(repo, project=project or project_name(dataset), online=online,
                redis=redis or (redis_connection(params) if online == "redis" else None))
    return apply(repo, features_data)
