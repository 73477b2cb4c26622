"""Feast store operations as plain functions: render a repo copy, apply, materialise, read
online and historical features, push live events.

The declarations live in ``features/`` (checkout root). Each working store is a *copy* of that
repository (``<data_dir>/feast/<dataset>/<online store>/`` by default) with a rendered
``feature_store.yaml`` whose registry and SQLite paths point inside the copy, so the
checkout's own ``features/`` never holds state and tests use throw-away copies.

Online stores: ``sqlite`` (embedded default) or ``redis`` (connection string from
``$COLDREC_FEAST_REDIS``, else ``features.redis`` in params.yaml, else ``127.0.0.1:6379``).
Offline store: Feast's file (Parquet/Dask) store in both cases.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sqlite3
import uuid
import weakref
from contextlib import contextmanager, nullcontext, redirect_stdout
from datetime import datetime, timedelta, timezone
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

import pandas as pd
import yaml

from coldrec.config import settings
from coldrec.errors import ColdrecError, ConfigError, DataError
from coldrec.features.compute import (
    COUNT_FIELDS,
    LIST_FIELDS,
    apply_event,
    decode_list,
    decode_profile_table,
    empty_profile,
    encode_list,
    read_meta,
    split_categories,
)
from coldrec.schema import EVENT_TYPES

if TYPE_CHECKING:  # feast takes ~10 s to import: only the functions that need it import it
    from feast import FeatureStore

T = TypeVar("T")
ONLINE_STORES = ("sqlite", "redis")
DATA_ENV = "COLDREC_FEATURES_DATA"  # read by features/*.py: where the feature tables are
REDIS_ENV = "COLDREC_FEAST_REDIS"
DEFAULT_REDIS = "127.0.0.1:6379"
PUSH_SOURCE = "user_profile_push"

USER_FIELDS = (
    "recent_item_ids", "recent_event_types", "recent_timestamps", "recent_queries", "n_events", *COUNT_FIELDS,
    "top_categories", "top_category_counts", "price_band_counts", "first_seen", "last_seen",
)
ITEM_FIELDS = {
    "item_attributes": ("title", "description", "category", "brand", "price", "price_band"),
    "item_popularity": ("events_7d", "events_30d", "events_total", "item_first_seen"),
}
USER_REFS = [f"user_profile:{f}" for f in USER_FIELDS]
ITEM_REFS = [f"{v}:{f}" for v, fs in ITEM_FIELDS.items() for f in fs]


class FeatureStoreError(ColdrecError):
    """The feature store is not set up (tables not built, repo not applied) or unreachable."""


def _online_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """An unreachable Redis or a never-applied store becomes a one-line FeatureStoreError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except ColdrecError:
            raise
        except Exception as exc:
            kind = f"{type(exc).__module__}.{type(exc).__name__}"
            if kind.startswith("redis.") and ("Connection" in kind or "Timeout" in kind):
                raise FeatureStoreError(f"Redis online store unreachable: {exc}") from None
            if isinstance(exc, sqlite3.OperationalError) or type(exc).__name__ in ("FeatureViewNotFoundException", "FeatureServiceNotFoundException"):
                raise FeatureStoreError(f"feature store not set up ({exc}); run `coldrec features apply` first") from None
            raise

    return wrapper


# --- locations ------------------------------------------------------------------------------

def declarations_dir() -> Path:
    """The checkout's Feast repository (declarations only)."""
    return settings().root / "features"


def default_features_data(dataset: str) -> Path:
    return settings().data_dir / "features" / dataset


def default_repo_dir(dataset: str, online: str) -> Path:
    return settings().data_dir / "feast" / dataset / online


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
        "# Rendered by coldrec.features.store.render_repo from features/ -- edit features/ instead.\n"
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


def open_store(repo: str | Path) -> "FeatureStore":
    """A FeatureStore on an applied repo copy."""
    repo = Path(repo)
    if not (repo / "feature_store.yaml").exists():
        raise FeatureStoreError(f"{repo}: no feature_store.yaml (run `coldrec features apply` first)")
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def apply(repo: str | Path, features_data: str | Path, quiet: bool = True) -> "FeatureStore":
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
        _online_errors(apply_total_with_repo_instance)(store, store.project, store.registry, contents, skip_source_validation=False)
    store.refresh_registry()
    return store


def setup_store(dataset: str, *, online: str = "sqlite", features_data: str | Path | None = None,
                repo: str | Path | None = None, redis: str | None = None, project: str | None = None,
                params: dict[str, Any] | None = None) -> "FeatureStore":
    """Render (or refresh) the repo copy for ``dataset`` and apply it."""
    features_data = Path(features_data) if features_data else default_features_data(dataset)
    repo = Path(repo) if repo else default_repo_dir(dataset, online)
    render_repo(repo, project=project or project_name(dataset), online=online,
                redis=redis or (redis_connection(params) if online == "redis" else None))
    return apply(repo, features_data)


# --- materialisation ------------------------------------------------------------------------

@_online_errors
def materialize(store: "FeatureStore", end: datetime | None = None, views: Sequence[str] | None = None) -> dict[str, str]:
    """Load the latest feature rows up to ``end`` (default now) into the online store.

    Views materialised before go through ``materialize_incremental`` (from their last end time);
    a view never materialised is loaded from the beginning of its data (Feast's incremental
    start would otherwise be now - ttl, which skips historical datasets). Returns what ran.
    """
    end = end or datetime.now(timezone.utc)
    fvs = [fv for fv in store.list_feature_views() if views is None or fv.name in views]
    fresh = [fv.name for fv in fvs if fv.most_recent_end_time is None]
    known = [fv.name for fv in fvs if fv.most_recent_end_time is not None]
    out = StringIO()
    with redirect_stdout(out):
        if fresh:
            store.materialize(start_date=datetime(1970, 1, 1, tzinfo=timezone.utc), end_date=end, feature_views=fresh)
        if known:
            store.materialize_incremental(end_date=end, feature_views=known)
    return {**{n: "full" for n in fresh}, **{n: "incremental" for n in known}}


# --- online reads ---------------------------------------------------------------------------

def _as_utc(v: Any) -> datetime | None:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    t = pd.Timestamp(v)
    if pd.isna(t):
        return None
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).to_pydatetime()


def _profile_from_row(user_id: str, row: dict[str, Any], updated_at: datetime | None = None) -> dict[str, Any]:
    known = row.get("n_events") is not None
    prof = empty_profile(user_id, 0)
    if known:
        for f in USER_FIELDS:
            v = row.get(f)
            if f in LIST_FIELDS:
                prof[f] = decode_list(f, v)
            elif f in ("first_seen", "last_seen"):
                prof[f] = _as_utc(v)
            else:
                prof[f] = int(v) if v is not None else 0
    prof["known"] = known
    prof["updated_at"] = updated_at if known else None
    return prof


@_online_errors
def get_user_profiles(store: "FeatureStore", user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Online profiles for several users; unknown users get the cold profile (``known: False``)."""
    ids = [str(u) for u in user_ids]
    if not ids:
        return []
    online = store.get_online_features(features=USER_REFS, entity_rows=[{"user_id": u} for u in ids])
    resp = online.to_dict()
    # the stored row's own timestamp (full precision), from the response proto
    names = list(online.proto.metadata.feature_names.val)
    stamps = online.proto.results[names.index("n_events")].event_timestamps
    return [
        _profile_from_row(u, {f: resp[f][i] for f in USER_FIELDS}, stamps[i].ToDatetime(tzinfo=timezone.utc) if i < len(stamps) else None)
        for i, u in enumerate(ids)
    ]


def get_user_profile(store: "FeatureStore", user_id: str) -> dict[str, Any]:
    """The online profile of one user, as a plain dict of the ``user_profile`` features plus
    ``user_id``, ``known`` and ``updated_at`` (the stored row's timestamp). An unknown user is
    not an error: empty lists, zero counts, ``first_seen``/``last_seen``/``updated_at`` None,
    ``known`` False."""
    return get_user_profiles(store, [user_id])[0]


@_online_errors
def get_item_features(store: "FeatureStore", item_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Online attributes and popularity per item (None values for unknown items)."""
    ids = [str(i) for i in item_ids]
    if not ids:
        return []
    resp = store.get_online_features(features=ITEM_REFS, entity_rows=[{"item_id": i} for i in ids]).to_dict()
    names = [f for fs in ITEM_FIELDS.values() for f in fs]
    out = []
    for k, i in enumerate(ids):
        row = {"item_id": i, **{f: resp[f][k] for f in names}}
        row["item_first_seen"] = _as_utc(row["item_first_seen"])
        out.append(row)
    return out


# --- offline (training) reads ---------------------------------------------------------------

def _feature_refs(store: "FeatureStore", features: str | Sequence[str]) -> dict[str, list[str]]:
    """``{view: [view:feature, ...]}`` from a feature service name or a list of references."""
    if isinstance(features, str):
        service = store.get_feature_service(features)
        refs = [f"{p.name_to_use()}:{f.name}" for p in service.feature_view_projections for f in p.features]
    else:
        refs = list(features)
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        by_view.setdefault(ref.split(":", 1)[0], []).append(ref)
    return by_view


@_online_errors
def historical_features(store: "FeatureStore", entity_df: pd.DataFrame, features: str | Sequence[str] = "training_service",
                        strictly_before: bool = True) -> pd.DataFrame:
    """Point-in-time correct features for each row of ``entity_df`` (``user_id`` and/or
    ``item_id`` plus ``event_timestamp``) through ``get_historical_features``.

    A feature row stamped t summarises events at or before t. With ``strictly_before`` (the
    default, for training examples whose timestamp is the label event's) rows are joined as of
    just before each timestamp, so the label event and anything at the same instant stay out.
    ``features``: a feature service name or a list of ``view:feature`` references. Every entity
    row comes back, in order; JSON list features are decoded to lists.

    Feast is asked once per feature view, with that view's distinct (join keys, timestamp)
    rows: its file offline store keeps only one entity row per (first view's join keys,
    timestamp), which would silently drop e.g. the other items of a basket bought at once.
    """
    if "event_timestamp" not in entity_df.columns:
        raise DataError("entity_df: missing column 'event_timestamp'")
    out = entity_df.reset_index(drop=True).copy()
    ts = pd.to_datetime(out["event_timestamp"], utc=True)
    out["event_timestamp"] = ts
    asof = ts - pd.Timedelta(microseconds=1) if strictly_before else ts
    for view, refs in _feature_refs(store, features).items():
        keys = store.get_feature_view(view).join_keys
        missing = [k for k in keys if k not in out.columns]
        if missing:
            raise DataError(f"entity_df: missing column(s) {', '.join(missing)} for feature view {view!r}")
        rows = out[keys].assign(event_timestamp=asof)
        uniq = rows.drop_duplicates().reset_index(drop=True)
        uniq["_k"] = range(len(uniq))
        got = store.get_historical_features(entity_df=uniq, features=refs).to_df()
        got = got.drop(columns=[c for c in got.columns if c in keys or c == "event_timestamp"])
        k = rows.merge(uniq, on=keys + ["event_timestamp"], how="left")["_k"].to_numpy()
        feats = got.set_index("_k").reindex(k).reset_index(drop=True)  # rows Feast dropped: nulls
        out = pd.concat([out, feats], axis=1)
    return decode_profile_table(out)


# --- live updates ---------------------------------------------------------------------------

def _item_facts(store: "FeatureStore", item_id: str) -> tuple[list[str], int]:
    resp = store.get_online_features(features=["item_attributes:category", "item_attributes:price_band"],
                                     entity_rows=[{"item_id": item_id}]).to_dict()
    band = resp["price_band"][0]
    return split_categories(resp["category"][0]), int(band) if band is not None else -1


@_online_errors
def push_event(store: "FeatureStore", event: dict[str, Any], *, recent_n: int | None = None,
               top_k: int | None = None, offline: bool = False) -> dict[str, Any]:
    """Fold one event (``user_id``, ``event_type``, optional ``item_id``, ``timestamp`` (default
    now), ``query``) into that user's online profile and push it (Feast PushSource
    ``user_profile_push``), so the next online lookup sees it. Returns the new profile.

    Read-modify-write on one user's row: concurrent pushes for the *same* user may lose one
    update until the next materialisation. The pushed row is stamped after the stored one
    (Redis ignores rows older than what it holds). ``offline=True`` also appends the row to
    the offline source (off by default: the nightly build recomputes from the event log).
    """
    from feast.data_source import PushMode

    user_id = str(event.get("user_id") or "").strip()
    if not user_id:
        raise DataError("event: missing user_id")
    etype = str(event.get("event_type") or "").strip().lower()
    if etype not in EVENT_TYPES:
        raise DataError(f"event: unknown event type {event.get('event_type')!r} (allowed: {', '.join(EVENT_TYPES)})")
    item_id = str(event.get("item_id") or "").strip() or None
    if item_id is None and etype != "search":
        raise DataError(f"event: a {etype} event needs an item_id")
    ts = _as_utc(event.get("timestamp")) or datetime.now(timezone.utc)

    prof = get_user_profile(store, user_id)
    previous_stamp = prof.pop("updated_at") if prof.pop("known") else None
    meta: dict[str, Any] = {}
    if previous_stamp is None or recent_n is None or top_k is None:
        meta = _meta(store)
    if previous_stamp is None:  # a new user: band slots as in the batch tables
        edges = meta.get("price_band_edges") or []
        prof["price_band_counts"] = [0] * (len(edges) + 1 if edges else 0)
    recent_n = recent_n or int(meta.get("recent_items", 20))
    top_k = top_k or int(meta.get("top_categories", 5))
    cats, band = _item_facts(store, item_id) if item_id else ([], -1)
    apply_event(prof, {"event_type": etype, "timestamp": ts, "item_id": item_id, "query": event.get("query")},
                recent_n=recent_n, top_k=top_k, categories=cats, band=band)
    stamp = prof["last_seen"]
    if previous_stamp is not None and stamp <= previous_stamp:  # a late event: keep the row newest
        stamp = previous_stamp + timedelta(microseconds=1)
    # Feast stores UnixTimestamp features in whole seconds: return what the next lookup will read
    for f in ("first_seen", "last_seen"):
        prof[f] = prof[f].replace(microsecond=0)
    row = {"user_id": user_id, **{f: encode_list(f, prof[f]) if f in LIST_FIELDS else prof[f] for f in USER_FIELDS},
           "event_timestamp": stamp}
    df = pd.DataFrame([row])
    for c in ("first_seen", "last_seen", "event_timestamp"):
        df[c] = pd.to_datetime(df[c], utc=True)
    if offline:
        store.push(PUSH_SOURCE, df, to=PushMode.ONLINE_AND_OFFLINE)
    else:
        # What FeatureStore.push(..., to=PushMode.ONLINE) does, minus its per-call registry
        # reload (its feature-service precompute step), which also empties Feast's
        # request-context cache and made the next lookup ~10x slower.
        for view in _store_info(store)["push_views"]:
            store.write_to_online_store(view, df, allow_registry_cache=True)
    prof["known"], prof["updated_at"] = True, stamp
    return prof


_STORE_INFO: "weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]]" = weakref.WeakKeyDictionary()


def _store_info(store: "FeatureStore") -> dict[str, Any]:
    """What push_event needs from the registry, read from Feast's cached registry once per
    registry version: the views fed by the push source and the feature tables' directory.
    (Registry getters without a cache flag reload the registry, which also empties Feast's
    request-context cache: the next lookup would pay ~10 ms.)"""
    from feast.data_source import PushSource

    stamp = getattr(store.registry, "cached_registry_proto_created", None)
    hit = _STORE_INFO.get(store)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    fvs = store.list_feature_views(allow_cache=True)
    views = [fv.name for fv in fvs if isinstance(fv.stream_source, PushSource) and fv.stream_source.name == PUSH_SOURCE]
    if not views:
        raise FeatureStoreError(f"no feature view reads the push source {PUSH_SOURCE!r}; re-run `coldrec features apply`")
    source = next(fv.batch_source for fv in fvs if fv.name == views[0])
    info = {"push_views": views, "features_data": Path(getattr(source, "path")).parent}
    _STORE_INFO[store] = (stamp, info)
    return info


def _features_data_of(store: "FeatureStore") -> Path:
    """The feature tables directory the applied repo reads (from the registry's source path)."""
    return _store_info(store)["features_data"]


def _meta(store: "FeatureStore") -> dict[str, Any]:
    path = _features_data_of(store) / "meta.json"
    return _read_meta_cached(str(path), path.stat().st_mtime if path.exists() else 0.0)


@functools.lru_cache(maxsize=16)
def _read_meta_cached(path: str, mtime: float) -> dict[str, Any]:
    return read_meta(Path(path).parent)
