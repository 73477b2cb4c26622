"""Offline (training) reads: point-in-time correct features from the Parquet offline store.

Training examples must only see features computed from events before the labelled one; this
module wraps ``get_historical_features`` to guarantee that, and to work around the file
offline store dropping entity rows (see :func:`historical_features`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from coldrec.core.errors import DataError
from coldrec.feature_store.errors import store_errors
from coldrec.feature_store.user_state import decode_profile_table

if TYPE_CHECKING:  # feast takes ~10 s to import: callers pass an opened store
    from feast import FeatureStore


def _feature_refs(store: FeatureStore, features: str | Sequence[str]) -> dict[str, list[str]]:
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


@store_errors
def historical_features(store: FeatureStore, entity_df: pd.DataFrame, features: str | Sequence[str] = "training_service",
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
