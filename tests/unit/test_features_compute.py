"""Feature computation (coldrec.feature_store.compute, coldrec.feature_store.user_state): plain pandas, no Feast."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from coldrec.core.errors import ConfigError
from coldrec.data.dataset import Dataset, from_files
from coldrec.feature_store.compute import (
    BEGIN,
    build_feature_tables,
    compute_tables,
    feature_params,
    item_popularity,
    price_band,
    price_band_edges,
)
from coldrec.feature_store.user_state import apply_event, decode_profile_table, empty_profile, split_categories
from tests.conftest import params_with

T0 = pd.Timestamp("2024-03-01T10:00:00Z")


def _events(rows):
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp", "value", "query"])
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    return ev.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)


def _items():
    return pd.DataFrame({
        "item_id": ["a", "b", "c", "d"],
        "title": ["A", "B", "C", "D"],
        "description": [None, "bee", None, None],
        "category": ["toys, kids", "garden", "toys", None],
        "brand": [None] * 4,
        "price": [1.0, 5.0, 10.0, np.nan],
    })


def _ds(rows) -> Dataset:
    return Dataset("t", _events(rows), _items())


def _params(**kw):
    return params_with({"features": {"recent_items": 3, "top_categories": 2, "price_bands": 2, **kw}})


def test_params_come_from_params_yaml_only():
    fp = feature_params(params_with())
    assert {k: fp[k] for k in ("recent_items", "top_categories", "price_bands")} == {
        "recent_items": 20, "top_categories": 5, "price_bands": 5}
    assert feature_params(params_with({"features": {"recent_items": 7}}))["recent_items"] == 7
    with pytest.raises(ConfigError, match="features.top_categories"):
        params_with({"features": {"top_categories": None}})  # null is not a count: no silent default


def test_catalogue_helpers():
    assert split_categories("Adventure, Animation|Kids") == ["Adventure", "Animation", "Kids"]
    assert split_categories(None) == [] and split_categories(float("nan")) == []
    edges = price_band_edges(pd.Series([1.0, 2.0, 3.0, 4.0, None]), 2)
    assert edges == [2.5]
    assert price_band(pd.Series([1.0, 2.5, 9.0, None]), edges).tolist() == [0, 1, 1, -1]
    assert price_band_edges(pd.Series([np.nan]), 5) == []


def test_user_profile_is_point_in_time():
    ds = _ds([
        ("u", "a", "view", T0, None, None),
        ("u", "a", "purchase", T0 + timedelta(minutes=1), 2, None),
        ("u", None, "search", T0 + timedelta(minutes=2), None, "red mug"),
        ("u", "b", "add_to_cart", T0 + timedelta(minutes=3), None, None),
        ("u", "c", "click", T0 + timedelta(minutes=3), None, None),  # same instant as the cart
        ("u", "d", "view", T0 + timedelta(days=2), None, None),
        ("v", "b", "view", T0 + timedelta(minutes=1), None, None),
    ])
    tables, meta = compute_tables(ds, _params())
    up = decode_profile_table(tables["user_profile"])
    u = up[up["user_id"] == "u"].reset_index(drop=True)
    # one row per distinct event time, plus the cold row at BEGIN
    assert u["event_timestamp"].tolist() == [BEGIN, T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2),
                                             T0 + timedelta(minutes=3), T0 + timedelta(days=2)]
    cold = u.iloc[0]
    assert cold["n_events"] == 0 and list(cold["recent_item_ids"]) == [] and pd.isna(cold["first_seen"])
    assert u["n_events"].tolist() == [0, 1, 2, 3, 5, 6]
    # every row counts only events at or before its own timestamp
    for _, row in u.iloc[1:].iterrows():
        assert row["last_seen"] == row["event_timestamp"]
        seen = ds.events[(ds.events["user_id"] == "u") & (ds.events["timestamp"] <= row["event_timestamp"])]
        assert row["n_events"] == len(seen)
        assert set(row["recent_item_ids"]) <= set(seen["item_id"].dropna())
    r = u.iloc[4]  # after the two events at +3 min
    assert list(r["recent_item_ids"]) == ["c", "b", "a"]  # newest first, capped at recent_items=3
    assert list(r["recent_event_types"]) == ["click", "add_to_cart", "purchase"]
    assert [pd.Timestamp(t) for t in r["recent_timestamps"]] == [T0 + timedelta(minutes=3)] * 2 + [T0 + timedelta(minutes=1)]
    assert list(r["recent_queries"]) == ["red mug"]
    assert (r["n_view"], r["n_purchase"], r["n_search"], r["n_add_to_cart"], r["n_click"]) == (1, 1, 1, 1, 1)
    # categories: a = toys+kids (x2 events), b = garden, c = toys -> toys 3, kids 2, garden 1; top 2 kept
    assert list(r["top_categories"]) == ["toys", "kids"] and list(r["top_category_counts"]) == [3, 2]
    # bands (median edge 5.0; a price on an edge goes up): a, a -> band 0; b, c -> band 1; d has no price
    assert meta["price_band_edges"] == [5.0] and list(r["price_band_counts"]) == [2, 2]
    last = u.iloc[5]
    assert list(last["price_band_counts"]) == [2, 2] and last["first_seen"] == T0


def test_item_popularity_windows_and_as_of():
    rows = [("u", "a", "view", T0 + timedelta(days=d), None, None) for d in (0, 0, 3, 20)]
    rows.append(("u", "b", "view", T0 + timedelta(days=40), None, None))
    pop = item_popularity(_events(rows))
    a = pop[pop["item_id"] == "a"].set_index("event_timestamp")
    day0 = T0.floor("D")
    assert a.loc[BEGIN, "events_total"] == 0 and pd.isna(a.loc[BEGIN, "item_first_seen"])
    at = lambda d: a.loc[day0 + timedelta(days=d)]  # noqa: E731
    assert (at(1)["events_7d"], at(1)["events_30d"], at(1)["events_total"]) == (2, 2, 2)
    assert (at(4)["events_7d"], at(4)["events_30d"]) == (3, 3)
    assert (at(8)["events_7d"], at(8)["events_30d"]) == (1, 3)  # day 0 left the 7-day window
    assert (at(21)["events_7d"], at(21)["events_30d"]) == (1, 4)
    assert (at(31)["events_7d"], at(31)["events_30d"], at(31)["events_total"]) == (0, 2, 4)
    assert at(1)["item_first_seen"] == T0
    assert (at(34)["events_7d"], at(34)["events_30d"]) == (0, 1)  # day 3 left the 30-day window
    # rows stop at the data's as-of time (the midnight after the last event: day 41), so the
    # latest row is the popularity as of the data's end, not "zero, years later"
    assert pop["event_timestamp"].max() == day0 + timedelta(days=41)
    assert a.index.max() == day0 + timedelta(days=34)  # day 20 leaves the 30-day window on day 51 > as-of


def test_apply_event_live_update_and_late_event():
    prof = empty_profile("u", 2)
    t = datetime(2024, 1, 1, tzinfo=UTC)
    apply_event(prof, {"event_type": "view", "item_id": "a", "timestamp": t}, recent_n=3, top_k=1, categories=["toys"], band=1)
    apply_event(prof, {"event_type": "click", "item_id": "b", "timestamp": t + timedelta(hours=2)}, recent_n=3, top_k=1,
                categories=["garden"], band=0)
    apply_event(prof, {"event_type": "purchase", "item_id": "c", "timestamp": "2024-01-01T01:00:00"}, recent_n=3, top_k=1,
                categories=["garden"])  # late, naive = UTC
    assert prof["recent_item_ids"] == ["b", "c", "a"]
    assert prof["top_categories"] == ["garden"] and prof["top_category_counts"] == [2]
    assert prof["price_band_counts"] == [1, 1]
    assert prof["first_seen"] == t and prof["last_seen"] == t + timedelta(hours=2)
    assert (prof["n_events"], prof["n_view"], prof["n_click"], prof["n_purchase"]) == (3, 1, 1, 1)
    apply_event(prof, {"event_type": "search", "item_id": None, "query": "lamp", "timestamp": t + timedelta(hours=3)}, recent_n=3, top_k=1)
    assert prof["recent_queries"] == ["lamp"] and prof["recent_item_ids"][0] == "b" and prof["n_search"] == 1


def test_build_writes_atomically(small_files, tmp_path, monkeypatch):
    ds = from_files(small_files["events"], small_files["items"], small_files["users"], name="byod")
    out = tmp_path / "ft"
    ft = build_feature_tables(ds, out, _params(recent_items=5))
    assert sorted(p.name for p in out.iterdir()) == [
        ".coldrec", "item_attributes.parquet", "item_popularity.parquet", "meta.json", "user_profile.parquet"
    ]
    meta = json.loads((out / "meta.json").read_text())
    assert meta == ft.meta and meta["recent_items"] == 5 and meta["users"] == 6 and meta["items"] == 8
    attrs = pd.read_parquet(out / "item_attributes.parquet")
    assert len(attrs) == 8 and (attrs["event_timestamp"] == BEGIN).all() and attrs["price_band"].between(0, 4).all()
    up = decode_profile_table(pd.read_parquet(out / "user_profile.parquet"))
    assert up["recent_item_ids"].map(len).max() == 5 and up.groupby("user_id").size().min() >= 2

    # a failure half-way through the writes leaves the previous tables in place
    to_parquet = pd.DataFrame.to_parquet

    def flaky(self, path, *a, **k):
        if "item_attributes" in str(path):
            raise RuntimeError("disk full")
        return to_parquet(self, path, *a, **k)

    before = (out / "meta.json").read_text()
    monkeypatch.setattr(pd.DataFrame, "to_parquet", flaky)
    with pytest.raises(RuntimeError):
        build_feature_tables(ds, out, _params(recent_items=5))
    monkeypatch.undo()
    assert (out / "meta.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ft")]
