"""The user profile state: the update that folds one event into it, and its stored encoding.

Shared by the batch table builder (:mod:`coldrec.feature_store.compute`, one event at a time
over the log) and the store side (:mod:`coldrec.feature_store.push` folds a live event the same
way; online and offline reads decode what was stored), so that a profile updated live is
the one the nightly build would compute. Plain functions, no Feast, no I/O.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from coldrec.data.contract import EVENT_TYPES

COUNT_FIELDS = tuple(f"n_{t}" for t in EVENT_TYPES)
# List-valued profile features, stored as JSON text (timestamps as ISO-8601 UTC). Feast's Array
# types work in both online stores, but the file offline store's Dask engine tokenises object
# columns holding arrays by pickling them at every step: materialising online-retail's profiles
# took ~40 s with Array columns, and about 1 s as JSON strings.
LIST_FIELDS = ("recent_item_ids", "recent_event_types", "recent_timestamps", "recent_queries",
               "top_categories", "top_category_counts", "price_band_counts")
_SPLIT = re.compile(r"\s*[,|;]\s*")


def split_categories(value: Any) -> list[str]:
    """``"Adventure, Animation|Kids"`` -> ``["Adventure", "Animation", "Kids"]``; missing -> ``[]``.

    An item's catalogue category field as the profile's category affinities count it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [c for c in _SPLIT.split(str(value).strip()) if c]


def empty_profile(user_id: str, n_bands: int) -> dict[str, Any]:
    """The cold profile: what a user with no events looks like."""
    prof: dict[str, Any] = {
        "user_id": user_id,
        "recent_item_ids": [],
        "recent_event_types": [],
        "recent_timestamps": [],
        "recent_queries": [],
        "n_events": 0,
    }
    prof.update({f: 0 for f in COUNT_FIELDS})
    prof.update(
        {
            "top_categories": [],
            "top_category_counts": [],
            "price_band_counts": [0] * n_bands,
            "first_seen": None,
            "last_seen": None,
        }
    )
    return prof


def _utc(ts: Any) -> datetime:
    if isinstance(ts, datetime) and not isinstance(ts, pd.Timestamp) and ts.tzinfo is UTC:
        return ts
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.to_pydatetime()


def set_top_categories(prof: dict[str, Any], counts: dict[str, int], top_k: int | None) -> None:
    """The ``top_k`` most frequent categories (ties by name) and their counts."""
    top = sorted(sorted(counts.items()), key=itemgetter(1), reverse=True)[: top_k or None]  # stable: ties by name
    prof["top_categories"] = [c for c, _ in top]
    prof["top_category_counts"] = [int(n) for _, n in top]


def apply_event(
    prof: dict[str, Any],
    event: dict[str, Any],
    *,
    recent_n: int,
    top_k: int | None,
    categories: list[str] | None = None,
    band: int = -1,
    cat_counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Fold one event into a profile (in place) and return it.

    ``categories``/``band`` describe the event's item. ``cat_counts`` is the full category
    count map when the caller keeps one (batch); without it (live push) the stored top-k
    categories are the starting point, so a category outside the top k restarts from 1.
    """
    etype = str(event["event_type"]).lower()
    ts = _utc(event["timestamp"])
    item = event.get("item_id") or None
    query = event.get("query") or None
    prof["n_events"] += 1
    prof[f"n_{etype}"] = prof.get(f"n_{etype}", 0) + 1
    if item:
        # newest first; a late event goes to its place by time (ties: the newest arrival first)
        times = prof["recent_timestamps"]  # tz-aware UTC datetimes, newest first
        if not times or times[0] <= ts:  # the usual case: the newest event
            keep = recent_n - 1
            prof["recent_item_ids"] = [str(item)] + prof["recent_item_ids"][:keep]
            prof["recent_event_types"] = [etype] + prof["recent_event_types"][:keep]
            prof["recent_timestamps"] = [ts] + times[:keep]
        else:
            pos = next((i for i, t in enumerate(times) if t <= ts), len(times))
            prof["recent_item_ids"] = (prof["recent_item_ids"][:pos] + [str(item)] + prof["recent_item_ids"][pos:])[:recent_n]
            prof["recent_event_types"] = (prof["recent_event_types"][:pos] + [etype] + prof["recent_event_types"][pos:])[:recent_n]
            prof["recent_timestamps"] = (times[:pos] + [ts] + times[pos:])[:recent_n]
        if categories:
            if cat_counts is not None:  # batch: the caller ranks at snapshot time
                for c in categories:
                    cat_counts[c] = cat_counts.get(c, 0) + 1
            else:
                counts = dict(zip(prof["top_categories"], prof["top_category_counts"]))
                for c in categories:
                    counts[c] = counts.get(c, 0) + 1
                set_top_categories(prof, counts, top_k)
        if 0 <= band < len(prof["price_band_counts"]):
            prof["price_band_counts"] = list(prof["price_band_counts"])
            prof["price_band_counts"][band] += 1
    if query:
        prof["recent_queries"] = ([str(query)] + list(prof["recent_queries"]))[:recent_n]
    first, last = prof["first_seen"], prof["last_seen"]
    prof["first_seen"] = ts if first is None or ts < first else first
    prof["last_seen"] = ts if last is None or ts > last else last
    return prof


def encode_list(field: str, values: Any) -> str:
    """A list feature as stored: compact JSON; ``recent_timestamps`` as ISO-8601 UTC strings."""
    vals = list(values) if values is not None else []
    if field == "recent_timestamps":
        vals = [_utc(t).isoformat() for t in vals]
    return json.dumps(vals, separators=(",", ":"))


def decode_list(field: str, text: Any) -> list:
    """Inverse of :func:`encode_list`; missing -> ``[]``."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    vals = json.loads(text) if isinstance(text, str) else list(text)
    if field == "recent_timestamps":
        return [_utc(datetime.fromisoformat(t)) if isinstance(t, str) else _utc(t) for t in vals]
    return vals


def encode_profile_table(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for f in LIST_FIELDS:
        out[f] = [encode_list(f, v) for v in df[f]]
    return out


def decode_profile_table(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for f in LIST_FIELDS:
        if f in out.columns:
            out[f] = [decode_list(f, v) for v in df[f]]
    return out
