"""The batch feature tables: computed from a dataset's canonical events and catalogue, written
as Parquet. Plain functions, no Feast here.

Every table is a set of point-in-time snapshots, so that ``get_historical_features`` (which
joins, per entity row, the latest feature row stamped at or before the row's timestamp) never
sees the future:

- ``user_profile``     one row per (user, distinct event time t): the profile over the user's
                       events with timestamp <= t (recent items, counts, affinities, first/last seen);
- ``item_popularity``  per item, one row at each midnight T where a trailing count changes:
                       events in [T-7d, T) and [T-30d, T), all events before T, first event time;
                       rows stop at the data's as-of time (the midnight after its last event);
- ``item_attributes``  one row per catalogue item (static: stamped BEGIN): title, description,
                       category, brand, price, price band.

:func:`build_feature_tables` writes the three Parquet files and ``meta.json`` atomically.
The profile state update itself (:func:`coldrec.feature_store.user_state.apply_event`) and the stored
encoding of list features live in :mod:`coldrec.feature_store.user_state`, shared with the live push.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core.outputs import check, owned_dir
from coldrec.data.dataset import Dataset
from coldrec.feature_store.user_state import (
    COUNT_FIELDS,
    apply_event,
    empty_profile,
    encode_profile_table,
    set_top_categories,
    split_categories,
)

TABLES = ("user_profile", "item_popularity", "item_attributes")
POPULARITY_WINDOWS = (7, 30)


# Every entity in a table also gets a row at BEGIN holding its "nothing yet" values (the cold
# profile, zero popularity), and catalogue attributes are stamped BEGIN (static, known before
# any event). Besides being the right answer before an entity's first event, this works around
# Feast's file offline store, which *drops* an entity row whose key has feature rows only
# after the row's timestamp (left join, then a timestamp filter) instead of returning nulls.
BEGIN = pd.Timestamp("1970-01-02", tz="UTC")

def feature_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """The ``features:`` section of params.yaml (validated; ``None`` reads the file). No defaults here:
    params.yaml is the one source."""
    from coldrec.core.config import load_params
    from coldrec.core.params import section_dict

    return section_dict(load_params() if params is None else params, "features")


# --- catalogue price bands ------------------------------------------------------------------

def price_band_edges(prices: pd.Series, n_bands: int) -> list[float]:
    """Inner edges of ``n_bands`` catalogue price quantile bands (fewer when prices repeat)."""
    p = pd.to_numeric(prices, errors="coerce").dropna()
    if p.empty or n_bands < 2:
        return []
    edges = np.quantile(p.to_numpy(), np.linspace(0, 1, n_bands + 1)[1:-1])
    return sorted({float(e) for e in edges})


def price_band(prices: pd.Series | Iterable[float], edges: list[float]) -> np.ndarray:
    """Band index per price (0 = cheapest, ``len(edges)`` = dearest); missing price -> -1."""
    p = pd.to_numeric(pd.Series(list(prices) if not isinstance(prices, pd.Series) else prices), errors="coerce").to_numpy(dtype=float)
    bands = np.searchsorted(np.asarray(edges, dtype=float), p, side="right").astype("int64")
    bands[np.isnan(p)] = -1
    return bands


# --- the tables -----------------------------------------------------------------------------

def user_profiles(events: pd.DataFrame, item_categories: dict[str, list[str]], item_bands: dict[str, int],
                  n_bands: int, recent_n: int, top_k: int) -> pd.DataFrame:
    """One row per (user, distinct event time): the profile over events at or before that time
    (list features as Python lists; :func:`encode_profile_table` gives the stored form)."""
    ev = events.sort_values(["user_id", "timestamp"], kind="stable")
    users = ev["user_id"].to_numpy()
    items = ev["item_id"].to_numpy()
    types = ev["event_type"].to_numpy()
    stamps = ev["timestamp"].to_numpy()  # datetime64[ns], for comparisons
    times = [t.to_pydatetime() for t in ev["timestamp"].dt.tz_convert("UTC")]
    queries = ev["query"].to_numpy() if "query" in ev.columns else np.full(len(ev), None, dtype=object)
    rows: list[dict[str, Any]] = []
    prof: dict[str, Any] | None = None
    cat_counts: dict[str, int] = {}
    n = len(ev)
    for i in range(n):
        uid = users[i]
        if prof is None or prof["user_id"] != uid:
            prof, cat_counts = empty_profile(uid, n_bands), {}
        item = items[i]
        item = None if item is None or (isinstance(item, float) and np.isnan(item)) else str(item)
        q = queries[i]
        q = None if q is None or (isinstance(q, float) and np.isnan(q)) else q
        apply_event(
            prof,
            {"event_type": types[i], "timestamp": times[i], "item_id": item, "query": q},
            recent_n=recent_n, top_k=top_k,
            categories=item_categories.get(item) if item else None,
            band=item_bands.get(item, -1) if item else -1,
            cat_counts=cat_counts,
        )
        last_of_instant = i + 1 == n or users[i + 1] != uid or stamps[i + 1] != stamps[i]
        if last_of_instant:
            if cat_counts:
                set_top_categories(prof, cat_counts, top_k)
            row = dict(prof)  # apply_event replaces lists, never mutates them: a shallow copy is a snapshot
            row["event_timestamp"] = row["last_seen"]
            rows.append(row)
    for uid in pd.unique(users):  # the cold profile before each user's first event (see BEGIN)
        row = empty_profile(uid, n_bands)
        row["event_timestamp"] = BEGIN
        rows.append(row)
    cols = list(empty_profile("", n_bands)) + ["event_timestamp"]
    out = pd.DataFrame(rows, columns=cols).sort_values(["user_id", "event_timestamp"], kind="stable").reset_index(drop=True)
    for c in ("first_seen", "last_seen", "event_timestamp"):
        out[c] = pd.to_datetime(out[c], utc=True)
    for c in ("n_events",) + COUNT_FIELDS:
        out[c] = out[c].astype("int64")
    return out


def item_popularity(events: pd.DataFrame) -> pd.DataFrame:
    """Trailing event counts per item at each midnight where one of them changes."""
    ev = events[events["item_id"].notna()]
    cols = ["item_id", "event_timestamp", "events_7d", "events_30d", "events_total", "item_first_seen"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    day = ev["timestamp"].dt.floor("D")
    as_of = day.max() + pd.Timedelta(days=1)
    daily = ev.assign(day=day).groupby(["item_id", "day"], sort=True).size().rename("n").reset_index()
    daily["cum"] = daily.groupby("item_id")["n"].cumsum()
    # a day's events enter every window at the next midnight and leave each window w days later
    cand = pd.concat(
        [daily[["item_id"]].assign(T=daily["day"] + pd.Timedelta(days=s)) for s in (1,) + tuple(w + 1 for w in POPULARITY_WINDOWS)]
    )
    cand = cand[cand["T"] <= as_of].drop_duplicates()
    right = daily[["item_id", "day", "cum"]].sort_values("day")

    def cum_before(t: pd.Series) -> np.ndarray:
        q = cand.assign(k=t).reset_index(drop=True)
        q["_order"] = np.arange(len(q))
        m = pd.merge_asof(q.sort_values("k"), right, left_on="k", right_on="day", by="item_id", allow_exact_matches=False)
        return m.sort_values("_order")["cum"].fillna(0).to_numpy(dtype="int64")

    total = cum_before(cand["T"])
    out = cand.reset_index(drop=True).rename(columns={"T": "event_timestamp"})
    out["events_total"] = total
    for w in POPULARITY_WINDOWS:
        out[f"events_{w}d"] = total - cum_before(cand["T"] - pd.Timedelta(days=w))
    items_seen = out["item_id"].unique()
    out = pd.concat([out, pd.DataFrame({"item_id": items_seen, "event_timestamp": BEGIN, "events_total": 0,
                                        **{f"events_{w}d": 0 for w in POPULARITY_WINDOWS}})], ignore_index=True)
    first = ev.groupby("item_id")["timestamp"].min()
    out["item_first_seen"] = out["item_id"].map(first).where(out["event_timestamp"] > BEGIN)
    out = out.sort_values(["item_id", "event_timestamp"]).reset_index(drop=True)
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    out["item_first_seen"] = pd.to_datetime(out["item_first_seen"], utc=True)
    for c in ("events_total",) + tuple(f"events_{w}d" for w in POPULARITY_WINDOWS):
        out[c] = out[c].astype("int64")
    return out[cols]


def item_attributes(items: pd.DataFrame, edges: list[float]) -> pd.DataFrame:
    def text(col: str) -> pd.Series:
        if col in items.columns:
            return items[col].astype(object).where(items[col].notna(), None)
        return pd.Series([None] * len(items), dtype=object)

    out = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str).to_numpy(),
            "title": text("title").fillna("").to_numpy(),
            "description": text("description").to_numpy(),
            "category": text("category").to_numpy(),
            "brand": text("brand").to_numpy(),
            "price": (
                pd.to_numeric(items.get("price"), errors="coerce").astype("float64").to_numpy() if "price" in items.columns else np.nan
            ),
            "price_band": price_band(items["price"] if "price" in items.columns else pd.Series([np.nan] * len(items)), edges),
        }
    )
    out["event_timestamp"] = pd.to_datetime(pd.Series([BEGIN] * len(out)), utc=True)
    return out


# --- the stage ------------------------------------------------------------------------------

@dataclass
class FeatureTables:
    path: Path
    meta: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return self.meta


def compute_tables(ds: Dataset, params: dict[str, Any] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The three feature tables (as stored) and their metadata, in memory."""
    fp = feature_params(params)
    recent_n, top_k, n_bands = int(fp["recent_items"]), int(fp["top_categories"]), int(fp["price_bands"])
    items = ds.items
    edges = price_band_edges(items["price"] if "price" in items.columns else pd.Series(dtype=float), n_bands)
    bands_arr = price_band(items["price"] if "price" in items.columns else pd.Series([np.nan] * len(items)), edges)
    item_ids = items["item_id"].astype(str).tolist()
    item_bands = {i: int(b) for i, b in zip(item_ids, bands_arr) if b >= 0}
    cats = items["category"] if "category" in items.columns else pd.Series([None] * len(items))
    item_cats = {i: c for i, c in zip(item_ids, (split_categories(v) for v in cats)) if c}
    n_band_slots = len(edges) + 1 if edges else 0
    ev = ds.events
    tables = {
        "user_profile": encode_profile_table(user_profiles(ev, item_cats, item_bands, n_band_slots, recent_n, top_k)),
        "item_popularity": item_popularity(ev),
        "item_attributes": item_attributes(items, edges),
    }
    meta = {
        "dataset": ds.name,
        "events": int(len(ev)),
        "computed_at": datetime.now(UTC).isoformat(),
        "as_of": ev["timestamp"].max().isoformat(),
        "recent_items": recent_n,
        "top_categories": top_k,
        "price_band_edges": edges,
        "rows": {k: int(len(v)) for k, v in tables.items()},
        "users": int(ev["user_id"].nunique()),
        "items": int(len(items)),
    }
    return tables, meta


FEATURE_FILES = ("user_profile.parquet", "item_popularity.parquet", "item_attributes.parquet", "meta.json")


def build_feature_tables(ds: Dataset, out_dir: str | Path, params: dict[str, Any] | None = None,
                         inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> FeatureTables:
    """Compute the feature tables and write them atomically to ``out_dir`` (the output rule of
    :mod:`coldrec.core.outputs`: checked before computing)."""
    out_dir = check(out_dir, inputs=inputs, force=force, legacy=FEATURE_FILES)
    tables, meta = compute_tables(ds, params)
    with owned_dir(out_dir, stage="build_features", inputs=inputs, force=force, legacy=FEATURE_FILES) as tmp:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return FeatureTables(path=out_dir, meta=meta)


def read_meta(features_data: str | Path) -> dict[str, Any]:
    p = Path(features_data) / "meta.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
