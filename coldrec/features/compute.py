"""Feature computation from canonical events: plain functions, no Feast here.

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
The same state update (:func:`apply_event`) drives the batch computation and the live push.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from coldrec.dataset import Dataset, atomic_dir
from coldrec.schema import EVENT_TYPES

TABLES = ("user_profile", "item_popularity", "item_attributes")
COUNT_FIELDS = tuple(f"n_{t}" for t in EVENT_TYPES)
# List-valued profile features, stored as JSON text (timestamps as ISO-8601 UTC). Feast's Array
# types work in both online stores, but the file offline store's Dask engine tokenises object
# columns holding arrays by pickling them at every step: materialising online-retail's profiles
# took ~40 s with Array columns, and about 1 s as JSON strings.
LIST_FIELDS = ("recent_item_ids", "recent_event_types", "recent_timestamps", "recent_queries",
               "top_categories", "top_category_counts", "price_band_counts")
POPULARITY_WINDOWS = (7, 30)
_SPLIT = re.compile(r"\s*[,|;]\s*")

# Every entity in a table also gets a row at BEGIN holding its "nothing yet" values (the cold
# profile, zero popularity), and catalogue attributes are stamped BEGIN (static, known before
# any event). Besides being the right answer before an entity's first event, this works around
# Feast's file offline store, which *drops* an entity row whose key has feature rows only
# after the row's timestamp (left join, then a timestamp filter) instead of returning nulls.
BEGIN = pd.Timestamp("1970-01-02", tz="UTC")

DEFAULTS = {"recent_items": 20, "top_categories": 5, "price_bands": 5}


def feature_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """The ``features:`` section of params.yaml over the defaults."""
    section = (params or {}).get("features") or {}
    return {**DEFAULTS, **{k: v for k, v in section.items() if v is not None}}


# --- catalogue helpers ----------------------------------------------------------------------

def split_categories(value: Any) -> list[str]:
    """``"Adventure, Animation|Kids"`` -> ``["Adventure", "Animation", "Kids"]``; missing -> ``[]``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [c for c in _SPLIT.split(str(value).strip()) if c]


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


# --- the user profile state (shared by the batch computation and the live push) -------------

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
    if isinstance(ts, datetime) and not isinstance(ts, pd.Timestamp) and ts.tzinfo is timezone.utc:
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
    cand = pd.concat([daily[["item_id"]].assign(T=daily["day"] + pd.Timedelta(days=s)) for s in (1,) + tuple(w + 1 for w in POPULARITY_WINDOWS)])
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
        return items[col].astype(object).where(items[col].notna(), None) if col in items.columns else pd.Series([None] * len(items), dtype=object)

    out = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(str).to_numpy(),
            "title": text("title").fillna("").to_numpy(),
            "description": text("description").to_numpy(),
            "category": text("category").to_numpy(),
            "brand": text("brand").to_numpy(),
            "price": pd.to_numeric(items.get("price"), errors="coerce").astype("float64").to_numpy() if "price" in items.columns else np.nan,
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
        "computed_at": datetime.now(timezone.utc).isoformat(),
        "as_of": ev["timestamp"].max().isoformat(),
        "recent_items": recent_n,
        "top_categories": top_k,
        "price_band_edges": edges,
        "rows": {k: int(len(v)) for k, v in tables.items()},
        "users": int(ev["user_id"].nunique()),
        "items": int(len(items)),
    }
    return tables, meta


def build_feature_tables(ds: Dataset, out_dir: str | Path, params: dict[str, Any] | None = None) -> FeatureTables:
    """Compute the feature tables and write them atomically to ``out_dir``."""
    tables, meta = compute_tables(ds, params)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return FeatureTables(path=out_dir, meta=meta)


def read_meta(features_data: str | Path) -> dict[str, Any]:
    p = Path(features_data) / "meta.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
