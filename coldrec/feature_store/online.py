"""Online reads: a user's profile and items' features from the online store, as plain dicts.

This is the serving path (one lookup per request, latency-sensitive). It turns Feast's
response into the same profile dict the batch computation produces
(:mod:`coldrec.feature_store.user_state`), with the cold profile for users the store does not know.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from coldrec.feature_store.errors import store_errors
from coldrec.feature_store.user_state import COUNT_FIELDS, LIST_FIELDS, decode_list, empty_profile

if TYPE_CHECKING:  # feast takes ~10 s to import: callers pass an opened store
    from feast import FeatureStore

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


def as_utc(v: Any) -> datetime | None:
    """A stored timestamp (naive = UTC, tz-aware, pandas or missing) as a UTC datetime or None."""
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
                prof[f] = as_utc(v)
            else:
                prof[f] = int(v) if v is not None else 0
    prof["known"] = known
    prof["updated_at"] = updated_at if known else None
    return prof


@store_errors
def get_user_profiles(store: FeatureStore, user_ids: Sequence[str]) -> list[dict[str, Any]]:
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
        _profile_from_row(u, {f: resp[f][i] for f in USER_FIELDS}, stamps[i].ToDatetime(tzinfo=UTC) if i < len(stamps) else None)
        for i, u in enumerate(ids)
    ]


def get_user_profile(store: FeatureStore, user_id: str) -> dict[str, Any]:
    """The online profile of one user, as a plain dict of the ``user_profile`` features plus
    ``user_id``, ``known`` and ``updated_at`` (the stored row's timestamp). An unknown user is
    not an error: empty lists, zero counts, ``first_seen``/``last_seen``/``updated_at`` None,
    ``known`` False."""
    return get_user_profiles(store, [user_id])[0]


@store_errors
def get_item_features(store: FeatureStore, item_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Online attributes and popularity per item (None values for unknown items)."""
    ids = [str(i) for i in item_ids]
    if not ids:
        return []
    resp = store.get_online_features(features=ITEM_REFS, entity_rows=[{"item_id": i} for i in ids]).to_dict()
    names = [f for fs in ITEM_FIELDS.values() for f in fs]
    out = []
    for k, i in enumerate(ids):
        row = {"item_id": i, **{f: resp[f][k] for f in names}}
        row["item_first_seen"] = as_utc(row["item_first_seen"])
        out.append(row)
    return out
