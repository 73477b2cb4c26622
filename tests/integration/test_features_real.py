"""The feature store on real data: online-retail (its first two months, to stay fast), tables
computed from the canonical events, applied, materialised, read online and point-in-time."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pytest

from coldrec.data.dataset import Dataset
from coldrec.feature_store.compute import build_feature_tables
from coldrec.feature_store.historical import historical_features
from coldrec.feature_store.materialization import materialize
from coldrec.feature_store.online import get_item_features, get_user_profile
from coldrec.feature_store.repo import apply, render_repo
from tests.conftest import SHARED, params_with
from tests.integration.test_features_store import REDIS, redis_or_skip

CUTOFF = pd.Timestamp("2011-02-01", tz="UTC")


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    from coldrec.data.prepare import build

    full = build("online-retail")
    ds = Dataset("online-retail", full.events[full.events["timestamp"] < CUTOFF].reset_index(drop=True), full.items)
    d = tmp_path_factory.mktemp("retail")
    ft = build_feature_tables(ds, d / "features", params_with({"features": {"recent_items": 20, "price_bands": 5}}))
    return {"ds": ds, "features": ft.path, "dir": d, "meta": ft.meta}


@pytest.fixture(scope="module")
def retail_store(retail):
    st = apply(render_repo(retail["dir"] / "repo", project="crtest_retail", online="sqlite"), retail["features"])
    materialize(st)
    return st


def test_tables_from_real_events(retail):
    meta, ev = retail["meta"], retail["ds"].events
    assert meta["users"] == ev["user_id"].nunique() and meta["items"] == len(retail["ds"].items)
    assert meta["rows"]["user_profile"] == ev.groupby(["user_id", "timestamp"]).ngroups + meta["users"]
    assert len(meta["price_band_edges"]) == 4


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_online_profiles_of_real_users(retail, retail_store, online):
    ev = retail["ds"].events
    st = retail_store
    if online == "redis":
        redis_or_skip()
        st = apply(render_repo(retail["dir"] / "repo-redis", project=f"crtest_{uuid.uuid4().hex[:10]}", online="redis",
                               redis=REDIS), retail["features"])
        materialize(st, views=["user_profile"])
    try:
        mine = ev[ev["user_id"] == "17850"].sort_values("timestamp", kind="stable")
        prof = get_user_profile(st, "17850")
        assert prof["known"] and prof["n_purchase"] == len(mine) == prof["n_events"]
        assert prof["last_seen"] == mine["timestamp"].max() and prof["first_seen"] == mine["timestamp"].min()
        assert len(prof["recent_item_ids"]) == 20 and set(prof["recent_item_ids"]) <= set(mine["item_id"])
        assert prof["recent_timestamps"][0] == mine["timestamp"].max()
        assert sum(prof["price_band_counts"]) == len(mine) and len(prof["price_band_counts"]) == 5
        assert get_user_profile(st, "99999999")["known"] is False
    finally:
        if online == "redis":
            st.teardown()


def test_real_item_features(retail, retail_store):
    ev = retail["ds"].events
    heart = get_item_features(retail_store, ["85123A"])[0]
    assert "HANGING HEART" in heart["title"] and heart["price"] > 0
    as_of = ev["timestamp"].max().floor("D") + timedelta(days=1)
    on = ev[ev["item_id"] == "85123A"]["timestamp"]
    assert heart["events_total"] == len(on)
    assert heart["events_30d"] == int((on >= as_of - timedelta(days=30)).sum())
    assert heart["events_7d"] == int((on >= as_of - timedelta(days=7)).sum())


def test_real_training_rows_are_point_in_time(retail, retail_store):
    ev = retail["ds"].events
    sample = ev[ev["timestamp"] >= pd.Timestamp("2011-01-10", tz="UTC")].sample(25, random_state=7)
    edf = sample[["user_id", "item_id", "timestamp"]].rename(columns={"timestamp": "event_timestamp"})
    got = historical_features(retail_store, edf)
    assert len(got) == 25 and list(got["user_id"]) == list(edf["user_id"])
    for (_, row), (_, e) in zip(got.iterrows(), edf.iterrows()):
        before = ev[(ev["user_id"] == e["user_id"]) & (ev["timestamp"] < e["event_timestamp"])]
        assert row["n_events"] == len(before)
        assert row["recent_item_ids"] == before.iloc[::-1]["item_id"].head(20).tolist()  # newest first
        midnight = e["event_timestamp"].floor("D")
        on = ev[(ev["item_id"] == e["item_id"]) & (ev["timestamp"] < midnight)]["timestamp"]
        assert row["events_total"] == len(on)
        assert row["events_7d"] == int((on >= midnight - timedelta(days=7)).sum())
