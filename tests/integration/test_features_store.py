"""The Feast store on small generated data, for real: apply, materialise, online lookups and
pushes on both online stores (SQLite, and Redis where one answers), point-in-time historical
retrieval from the Parquet offline store, and the real `feast apply` CLI on a repo copy.

Every store is a throw-away copy of features/ under tmp_path; Redis tests use their own Feast
project (keys end with the project name) in db 5 and delete only those keys afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from coldrec.core.errors import DataError
from coldrec.data.dataset import from_files
from coldrec.feature_store.compute import BEGIN, build_feature_tables
from coldrec.feature_store.historical import historical_features
from coldrec.feature_store.materialization import materialize
from coldrec.feature_store.online import get_item_features, get_user_profile, get_user_profiles
from coldrec.feature_store.push import push_event
from coldrec.feature_store.repo import apply, render_repo
from coldrec.feature_store.user_state import decode_profile_table
from tests.conftest import ROOT, make_events, make_items, params_with

REDIS = os.environ.get("COLDREC_TEST_REDIS", "127.0.0.1:6379,db=5")
PARAMS = params_with({"features": {"recent_items": 6, "top_categories": 3, "price_bands": 4}})


def redis_or_skip() -> None:
    """Skip (visibly, with the reason) when no Redis answers at $COLDREC_TEST_REDIS."""
    host, port = REDIS.split(",")[0].split(":")
    try:
        import redis

        redis.Redis(host=host, port=int(port), socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except Exception as exc:  # no client, refused, timeout
        pytest.skip(f"no Redis answers at {host}:{port} ({type(exc).__name__}: {exc}); Redis online-store tests skipped")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Feature tables of the conftest dataset (6 users, 8 items, Jan-Feb 2024)."""
    d = tmp_path_factory.mktemp("tiny")
    make_events().to_csv(d / "events.csv", index=False)
    make_items().to_csv(d / "items.csv", index=False)
    ds = from_files(d / "events.csv", d / "items.csv", name="tiny")
    build_feature_tables(ds, d / "features", PARAMS)
    return {"ds": ds, "features": d / "features", "dir": d}


def _store(base: Path, features: Path, online: str):
    repo = render_repo(base / f"repo-{online}", project=f"crtest_{uuid.uuid4().hex[:10]}", online=online, redis=REDIS)
    return apply(repo, features)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store(request, tiny, tmp_path_factory):
    """The same online-feature suite runs on both online stores."""
    if request.param == "redis":
        redis_or_skip()
    st = _store(tmp_path_factory.mktemp("fs"), tiny["features"], request.param)
    assert set(materialize(st).values()) == {"full"}
    yield st
    if request.param == "redis":
        st.teardown()  # deletes this project's keys only


@pytest.fixture(scope="module")
def offline(tiny, tmp_path_factory):
    return _store(tmp_path_factory.mktemp("fs-offline"), tiny["features"], "sqlite")


def _last_batch_row(tiny, user_id: str) -> dict:
    up = decode_profile_table(pd.read_parquet(tiny["features"] / "user_profile.parquet"))
    return up[up["user_id"] == user_id].sort_values("event_timestamp").iloc[-1].to_dict()


# --- online: both stores -----------------------------------------------------------------------

def test_online_profile_matches_the_batch_table(store, tiny):
    prof = get_user_profile(store, "u2")
    row = _last_batch_row(tiny, "u2")
    assert prof["known"] is True and prof["user_id"] == "u2"
    for f in ("recent_item_ids", "recent_event_types", "recent_queries", "top_categories", "top_category_counts",
              "price_band_counts", "n_events", "n_view", "n_purchase"):
        assert prof[f] == (list(row[f]) if isinstance(row[f], list) else row[f]), f
    assert prof["recent_timestamps"] == list(row["recent_timestamps"])
    assert prof["last_seen"] == row["last_seen"] and prof["first_seen"] == row["first_seen"]
    assert len(prof["recent_item_ids"]) == 6 and prof["n_events"] == 8  # capped at recent_items=6
    assert prof["updated_at"] == row["event_timestamp"]


def test_unknown_user_gets_the_cold_profile(store):
    prof = get_user_profile(store, "never-seen-" + uuid.uuid4().hex)
    assert prof["known"] is False
    assert prof["recent_item_ids"] == [] and prof["recent_timestamps"] == [] and prof["top_categories"] == []
    assert prof["n_events"] == 0 and prof["n_purchase"] == 0
    assert prof["first_seen"] is None and prof["last_seen"] is None and prof["updated_at"] is None


def test_several_users_in_one_lookup(store):
    profs = get_user_profiles(store, ["u1", "nobody", "u3"])
    assert [p["user_id"] for p in profs] == ["u1", "nobody", "u3"]
    assert [p["known"] for p in profs] == [True, False, True]
    assert get_user_profiles(store, []) == []


def test_item_features(store, tiny):
    known, unknown = get_item_features(store, ["i1", "no-such-item"])
    items = make_items().set_index("item_id")
    assert known["title"] == items.loc["i1", "title"] and known["category"] == "garden"
    assert known["price"] == pytest.approx(items.loc["i1", "price"]) and 0 <= known["price_band"] <= 3
    ev = tiny["ds"].events
    assert known["events_total"] == int((ev["item_id"] == "i1").sum())
    assert known["item_first_seen"] == ev.loc[ev["item_id"] == "i1", "timestamp"].min()
    assert unknown["title"] is None and unknown["events_total"] is None


def test_pushed_event_is_visible_to_the_next_lookup(store):
    before = get_user_profile(store, "u0")
    now = datetime.now(UTC).replace(microsecond=0)  # UnixTimestamp features keep whole seconds
    returned = push_event(store, {"user_id": "u0", "item_id": "i3", "event_type": "add_to_cart", "timestamp": now})
    after = get_user_profile(store, "u0")
    assert after["recent_item_ids"][0] == "i3" and after["recent_event_types"][0] == "add_to_cart"
    assert after["recent_item_ids"][1:] == before["recent_item_ids"][:5]
    assert after["n_events"] == before["n_events"] + 1 and after["n_add_to_cart"] == before["n_add_to_cart"] + 1
    assert after["last_seen"] == now and after["first_seen"] == before["first_seen"]
    assert sum(after["price_band_counts"]) == sum(before["price_band_counts"]) + 1
    assert {k: v for k, v in returned.items() if k != "updated_at"} == {k: v for k, v in after.items() if k != "updated_at"}


def test_push_for_a_new_user_and_search_and_rapid_fire(store):
    uid = "live-" + uuid.uuid4().hex[:8]
    push_event(store, {"user_id": uid, "event_type": "search", "query": "red mug"})
    push_event(store, {"user_id": uid, "item_id": "i2", "event_type": "click"})
    push_event(store, {"user_id": uid, "item_id": "i5", "event_type": "view"})  # same second: still newer
    prof = get_user_profile(store, uid)
    assert prof["known"] and prof["recent_queries"] == ["red mug"]
    assert prof["recent_item_ids"] == ["i5", "i2"] and (prof["n_events"], prof["n_search"], prof["n_click"]) == (3, 1, 1)
    assert len(prof["price_band_counts"]) == 4 and sum(prof["price_band_counts"]) == 2
    assert prof["top_categories"]  # items carry categories


def test_late_event_goes_in_time_order_and_is_still_visible(store):
    before = get_user_profile(store, "u4")
    late = before["recent_timestamps"][1] - timedelta(seconds=1)  # older than the newest stored event
    push_event(store, {"user_id": "u4", "item_id": "i7", "event_type": "view", "timestamp": late})
    after = get_user_profile(store, "u4")
    assert after["recent_item_ids"][:3] == [before["recent_item_ids"][0], before["recent_item_ids"][1], "i7"]
    assert after["n_events"] == before["n_events"] + 1 and after["last_seen"] == before["last_seen"]
    assert after["updated_at"] >= before["updated_at"]  # stamped after the stored row (SQLite keeps seconds)


def test_incremental_materialisation_keeps_live_updates(store):
    push_event(store, {"user_id": "u5", "item_id": "i0", "event_type": "purchase"})
    assert set(materialize(store).values()) == {"incremental"}
    assert get_user_profile(store, "u5")["recent_item_ids"][0] == "i0"


def test_bad_events_are_refused(store):
    with pytest.raises(DataError, match="unknown event type"):
        push_event(store, {"user_id": "u1", "item_id": "i1", "event_type": "wishlist"})
    with pytest.raises(DataError, match="needs an item_id"):
        push_event(store, {"user_id": "u1", "event_type": "view"})
    with pytest.raises(DataError, match="user_id"):
        push_event(store, {"item_id": "i1", "event_type": "view"})


# --- offline: point-in-time correctness --------------------------------------------------------

def _expected(ev: pd.DataFrame, user: str, t: pd.Timestamp, inclusive: bool) -> pd.DataFrame:
    mine = ev[ev["user_id"] == user]
    return mine[mine["timestamp"] <= t] if inclusive else mine[mine["timestamp"] < t]


def test_historical_features_exclude_later_events(offline, tiny):
    ev = tiny["ds"].events
    u1 = ev[ev["user_id"] == "u1"].sort_values("timestamp")
    # between events, exactly at an event, and long after the last one
    times = [u1["timestamp"].iloc[1] + timedelta(minutes=30), u1["timestamp"].iloc[4], u1["timestamp"].max() + timedelta(days=30)]
    edf = pd.DataFrame({"user_id": "u1", "event_timestamp": times})
    got = historical_features(offline, edf, ["user_profile:n_events", "user_profile:recent_item_ids", "user_profile:last_seen"])
    assert len(got) == 3 and list(got["event_timestamp"]) == times
    for (_, row), t in zip(got.iterrows(), times):
        seen = _expected(ev, "u1", t, inclusive=False)
        assert row["n_events"] == len(seen)
        assert row["last_seen"] == seen["timestamp"].max() and row["last_seen"] < t
        later = set(ev[(ev["user_id"] == "u1") & (ev["timestamp"] >= t)]["item_id"]) - set(seen["item_id"])
        assert not later & set(row["recent_item_ids"]), "a later event leaked into the features"
    # the label event at exactly t is excluded by default, included on request
    incl = historical_features(offline, edf.iloc[[1]], ["user_profile:n_events"], strictly_before=False)
    assert incl["n_events"].iloc[0] == len(_expected(ev, "u1", times[1], inclusive=True)) == got["n_events"].iloc[1] + 1


def test_historical_rows_before_first_event_and_unknown_users_are_kept(offline, tiny):
    first = tiny["ds"].events.query("user_id == 'u3'")["timestamp"].min()
    edf = pd.DataFrame(
        {"user_id": ["u3", "ghost", "u3"], "event_timestamp": [first - timedelta(days=1), first, first + timedelta(hours=1)]}
    )
    got = historical_features(offline, edf, ["user_profile:n_events", "user_profile:recent_item_ids"])
    assert list(got["user_id"]) == ["u3", "ghost", "u3"]
    assert got["n_events"].iloc[0] == 0 and got["recent_item_ids"].iloc[0] == []  # cold profile (BEGIN row)
    assert pd.isna(got["n_events"].iloc[1])  # never seen at all: no features, row kept
    assert got["n_events"].iloc[2] == 2  # the view and the purchase 5 minutes later


def test_training_service_is_point_in_time_for_items(offline, tiny):
    ev = tiny["ds"].events
    rows = ev[ev["event_type"] == "purchase"].head(12)
    edf = rows[["user_id", "item_id", "timestamp"]].rename(columns={"timestamp": "event_timestamp"})
    got = historical_features(offline, edf)  # training_service: user profile + item popularity + attributes
    assert len(got) == len(edf) and got["title"].notna().all()
    for (_, row), (_, e) in zip(got.iterrows(), edf.iterrows()):
        midnight = e["event_timestamp"].floor("D")  # popularity rows are stamped at midnights
        assert row["events_total"] == int(((ev["item_id"] == e["item_id"]) & (ev["timestamp"] < midnight)).sum())
        assert row["n_events"] == len(_expected(ev, e["user_id"], e["event_timestamp"], inclusive=False))


def test_basket_rows_at_one_instant_all_come_back(offline, tiny):
    # Feast's file store alone keeps one row per (user_id, timestamp): a basket would lose items
    t = pd.Timestamp("2024-01-17T12:00:00Z")
    edf = pd.DataFrame({"user_id": ["u2", "u2", "u2", "u5"], "item_id": ["i1", "i2", "i1", "i1"], "event_timestamp": [t] * 4})
    got = historical_features(offline, edf, ["user_profile:n_events", "item_attributes:title"])
    assert list(got["item_id"]) == ["i1", "i2", "i1", "i1"]
    assert list(got["title"]) == ["item number 1", "item number 2", "item number 1", "item number 1"]
    assert list(got["n_events"]) == [8, 8, 8, 4]  # u2: all 8 by Jan 10; u5: 4 of 8 (Jan 16-19)
    with pytest.raises(DataError, match="item_id"):
        historical_features(offline, edf[["user_id", "event_timestamp"]], ["item_attributes:title"])


# --- the real `feast` CLI on a repo copy --------------------------------------------------------

def test_feast_cli_apply_on_a_temp_repo(tiny, tmp_path):
    repo = render_repo(tmp_path / "repo", project="coldrec_cli_test", online="sqlite")
    (repo / "scratch_notes.py").write_text("raise SystemExit('.feastignore should keep this file out')\n")
    env = {**os.environ, "COLDREC_FEATURES_DATA": str(tiny["features"])}
    res = subprocess.run([str(Path(sys.executable).parent / "feast"), "-c", str(repo), "apply"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for name in ("user_profile", "item_popularity", "item_attributes", "training_service", "user_profile_service"):
        assert name in out
    from coldrec.feature_store.repo import open_store

    st = open_store(repo)
    assert sorted(fv.name for fv in st.list_feature_views()) == ["item_attributes", "item_popularity", "user_profile"]
    assert Path(st.get_data_source("user_profile_source").path).parent == tiny["features"].resolve()
    materialize(st, views=["user_profile"])
    assert get_user_profile(st, "u1")["n_events"] == 8


def test_declarations_are_the_checkout_repo():
    src = ROOT / "features"
    assert (src / "feature_store.yaml").exists() and (src / "feature_store.redis.yaml").exists()
    assert "data/" in (src / ".feastignore").read_text()
    assert BEGIN < pd.Timestamp("1971-01-01", tz="UTC")
