"""Live updates: fold one event into a user's online profile and push it.

The write side of the online store, between two materialisations: it reads the stored
profile (:mod:`coldrec.feature_store.online`), applies the same state update as the batch
computation (:func:`coldrec.feature_store.user_state.apply_event`) and writes the row back through
the ``user_profile_push`` source, caching what it needs from the registry and ``meta.json``.
"""
from __future__ import annotations

import functools
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from coldrec.core.errors import DataError
from coldrec.data.contract import EVENT_TYPES
from coldrec.feature_store.compute import read_meta
from coldrec.feature_store.errors import FeatureStoreError, store_errors
from coldrec.feature_store.online import USER_FIELDS, as_utc, get_user_profile
from coldrec.feature_store.user_state import LIST_FIELDS, apply_event, encode_list, split_categories

if TYPE_CHECKING:  # feast takes ~10 s to import: only the functions that need it import it
    from feast import FeatureStore

PUSH_SOURCE = "user_profile_push"


def _item_facts(store: FeatureStore, item_id: str) -> tuple[list[str], int]:
    resp = store.get_online_features(features=["item_attributes:category", "item_attributes:price_band"],
                                     entity_rows=[{"item_id": item_id}]).to_dict()
    band = resp["price_band"][0]
    return split_categories(resp["category"][0]), int(band) if band is not None else -1


@store_errors
def push_event(store: FeatureStore, event: dict[str, Any], *, recent_n: int | None = None,
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
    ts = as_utc(event.get("timestamp")) or datetime.now(UTC)

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


_STORE_INFO: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _store_info(store: FeatureStore) -> dict[str, Any]:
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
    info = {"push_views": views, "features_data": Path(source.path).parent}
    _STORE_INFO[store] = (stamp, info)
    return info


def _features_data_of(store: FeatureStore) -> Path:
    """The feature tables directory the applied repo reads (from the registry's source path)."""
    return _store_info(store)["features_data"]


def _meta(store: FeatureStore) -> dict[str, Any]:
    path = _features_data_of(store) / "meta.json"
    return _read_meta_cached(str(path), path.stat().st_mtime if path.exists() else 0.0)


@functools.lru_cache(maxsize=16)
def _read_meta_cached(path: str, mtime: float) -> dict[str, Any]:
    return read_meta(Path(path).parent)
