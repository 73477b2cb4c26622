"""The data validation on the real datasets: both shipped sets pass (online-retail at full size,
timed), and real data corrupted in each way the gate must catch fails the named expectation with
the right severity. Corruptions run on a 5,000-event slice of online-retail (real ids, real
catalogue and users) written as the user's own files, to keep the tier fast."""
from __future__ import annotations

import json
import shutil
import time

import pandas as pd
import pytest

from coldrec.core.config import load_params
from coldrec.quality import validate, validate_files
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def online_retail():
    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    from coldrec.data.datasets import build_named

    return build_named("online-retail", data_dir=SHARED, params=load_params())


@pytest.fixture(scope="module")
def slice_dir(online_retail, tmp_path_factory):
    """The first 5,000 events of online-retail (2010-12-01 .. 12-05) + the whole catalogue and
    users, as CSV files."""
    d = tmp_path_factory.mktemp("or-slice")
    online_retail.events.head(5000).to_csv(d / "events.csv", index=False)
    online_retail.items.to_csv(d / "items.csv", index=False)
    online_retail.users.to_csv(d / "users.csv", index=False)
    return d


def _events(slice_dir) -> pd.DataFrame:
    return pd.read_csv(slice_dir / "events.csv", dtype=str, keep_default_na=False)


def _check(slice_dir, tmp_path, events: pd.DataFrame | None = None, items: pd.DataFrame | None = None,
           run_date: str = "2010-12-06", out: str = "out", events_name: str = "events.csv"):
    ev_path, it_path = slice_dir / "events.csv", slice_dir / "items.csv"
    if events is not None:
        ev_path = tmp_path / events_name
        events.to_parquet(ev_path, index=False) if events_name.endswith(".parquet") else events.to_csv(ev_path, index=False)
    if items is not None:
        it_path = tmp_path / "items.csv"
        items.to_csv(it_path, index=False)
    return validate_files(ev_path, it_path, slice_dir / "users.csv", out_dir=tmp_path / out, params=load_params(),
                          run_date=run_date)


def _failed(result) -> dict[str, str]:
    return {o.name: o.severity for o in result.outcomes if o.failed}


def test_online_retail_passes_in_under_a_minute(online_retail, tmp_path):
    t0 = time.perf_counter()
    r = validate(online_retail, out_dir=tmp_path / "out", params=load_params())  # run date: now
    elapsed = time.perf_counter() - t0
    # the data end in 2011: the freshness warning is expected and reported; nothing else fails
    assert r.status == "passed_with_warnings" and _failed(r) == {"events.freshness": "warning"}
    assert r.outcome("events.duplicates").unexpected_count == 81  # same user+item+minute, two invoices: the repeats
    assert r.tables["events"]["rows"] == len(online_retail.events)
    assert elapsed < 60, f"validation took {elapsed:.1f} s"
    print(f"\nonline-retail: {r.summary_line()} in {elapsed:.1f} s")


def test_movielens_passes_through_the_cli(cli, shared_datasets, tmp_path):
    res = cli("validate", "--dataset", "movielens-small", "--run-date", "2018-09-25", "--out", tmp_path / "ml")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "ml" / "result.json").read_text())
    assert doc["status"] == "passed" and doc["tables"]["events"]["rows"] == 100_836
    skipped = {e["name"] for e in doc["expectations"] if e["status"] == "skipped"}
    assert skipped == {"events.user_id.in_users", "events.row_count.change", "items.row_count.change"}


def test_movielens_ratings_out_of_range(shared_datasets, tmp_path):
    from coldrec.data.datasets import build_named

    ds = build_named("movielens-small", data_dir=shared_datasets)
    ev = ds.events.head(5000).copy()
    ev.loc[[10, 11], "value"] = [6.0, 0.0]
    ds.events = ev
    r = validate(ds, out_dir=tmp_path / "out", params=load_params(), run_date="2018-09-25")
    o = r.outcome("events.value.range.rate")
    assert o.failed and o.severity == "warning" and o.unexpected_count == 2 and r.status == "passed_with_warnings"
    assert r.quarantine == {"events": 2}


def test_slice_is_clean(slice_dir, tmp_path):
    r = _check(slice_dir, tmp_path)
    assert r.status == "passed", _failed(r)


def test_row_level_critical_corruptions(slice_dir, tmp_path):
    ev = _events(slice_dir)
    ev.loc[[10, 20], "user_id"] = ""
    ev.loc[30, "item_id"] = ""
    ev.loc[40, "event_type"] = "refund"
    ev.loc[50, "timestamp"] = "31/12/2010 25:00"
    ev.loc[60, "value"] = "12 pcs"
    ev.loc[[70, 71, 72], "timestamp"] = "2030-01-01T00:00:00"
    r = _check(slice_dir, tmp_path, events=ev)
    counts = {o.name: o.unexpected_count for o in r.outcomes if o.failed}
    assert counts == {"events.user_id.not_null": 2, "events.item_id.not_null": 1, "events.event_type.allowed": 1,
                      "events.timestamp.parseable": 1, "events.value.numeric": 1, "events.timestamp.not_future": 3}
    assert set(_failed(r).values()) == {"critical"} and r.status == "failed"
    assert r.outcome("events.timestamp.not_future").samples[0]["_line"] == 72


def test_row_level_warning_corruptions_pass_and_are_quarantined(slice_dir, tmp_path):
    ev = _events(slice_dir)
    key = ["user_id", "item_id", "event_type", "timestamp"]
    real_dups = int(ev.duplicated(key, keep="first").sum())  # real data: a few same-minute re-orders (the repeats)
    ev.loc[80, "value"] = "0"
    ev.loc[90, "timestamp"] = "1970-01-01T00:00:00"
    ev.loc[100:104, "item_id"] = [f"9999{i}Z" for i in range(5)]  # 5 of 5,000 events: below the critical 5%
    ev = pd.concat([ev, ev.iloc[200:260]], ignore_index=True)  # 60 re-sent events: 60 repeats (1.2%, above 1%)
    items = pd.read_csv(slice_dir / "items.csv", dtype=str, keep_default_na=False)
    items.loc[0, "price"] = "-2.5"
    r = _check(slice_dir, tmp_path, events=ev, items=items)
    assert _failed(r) == {"events.value.range.purchase": "warning", "events.timestamp.in_window": "warning",
                          "events.item_id.in_catalogue_all": "warning", "events.duplicates": "warning",
                          "items.price.non_negative": "warning"}
    assert r.status == "passed_with_warnings"
    assert r.outcome("events.item_id.in_catalogue").status == "passed"
    assert r.outcome("events.duplicates").unexpected_count == 60 + real_dups
    q = pd.read_csv(tmp_path / "out" / "quarantine" / "events.csv", dtype=str)
    assert q["_reasons"].str.contains("events.duplicates").sum() == 60 + real_dups
    assert len(q) == 1 + 1 + 5 + 60 + real_dups
    assert list(q.loc[q["_reasons"] == "events.item_id.in_catalogue_all", "item_id"]) == [f"9999{i}Z" for i in range(5)]


def test_items_missing_from_catalogue_above_share(slice_dir, tmp_path):
    ev = _events(slice_dir)
    top = ev["item_id"].value_counts()
    gone = top.index[top.cumsum() <= 0.08 * len(ev)]  # the best sellers, ~8% of the events
    items = pd.read_csv(slice_dir / "items.csv", dtype=str, keep_default_na=False)
    r = _check(slice_dir, tmp_path, items=items[~items["item_id"].isin(gone)])
    o = r.outcome("events.item_id.in_catalogue")
    assert o.failed and o.severity == "critical" and o.unexpected_count == int(top[gone].sum())
    assert r.status == "failed"


def test_empty_file_exits_non_zero(cli, slice_dir, tmp_path):
    empty = tmp_path / "events.csv"
    empty.write_text("")
    res = cli("validate", "--events", empty, "--items", slice_dir / "items.csv", "--out", tmp_path / "out")
    assert res.exit_code == 1 and "events.not_empty" in res.output
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {e["name"]: e["severity"] for e in doc["expectations"] if e["status"] == "failed"} == {
        "events.columns": "critical", "events.not_empty": "critical"}


def test_wrong_column_types(slice_dir, tmp_path):
    ev = _events(slice_dir)
    ev["timestamp"] = ev.index % 2 == 0  # a boolean column where times belong
    ev["value"] = "qty:" + ev["value"]
    r = _check(slice_dir, tmp_path, events=ev, events_name="events.parquet")
    assert r.outcome("events.timestamp.parseable").unexpected_count == 5000
    assert r.outcome("events.value.numeric").unexpected_count == 5000
    assert _failed(r)["events.timestamp.parseable"] == "critical" and r.status == "failed"


def test_all_events_from_one_user_and_stale_data(slice_dir, tmp_path):
    ev = _events(slice_dir).assign(user_id="17850")
    r = _check(slice_dir, tmp_path, events=ev, run_date="2011-02-01")
    assert r.outcome("events.user_id.distinct").failed and r.outcome("events.user_id.distinct").severity == "warning"
    assert r.outcome("events.user_id.distinct").observed_value == 1
    assert r.outcome("events.freshness").failed and r.outcome("events.freshness").severity == "warning"


def test_duplicated_delivery_after_an_accepted_batch(slice_dir, tmp_path):
    assert _check(slice_dir, tmp_path).status == "passed"  # becomes the accepted baseline
    ev = _events(slice_dir)
    r = _check(slice_dir, tmp_path, events=pd.concat([ev, ev], ignore_index=True))
    failed = _failed(r)
    assert failed == {"events.duplicates.massive": "critical", "events.duplicates": "warning",
                      "events.row_count.change": "warning"}
    assert r.status == "failed" and r.baseline["rows"]["events"] == 5000
    assert json.loads((tmp_path / "out" / "accepted.json").read_text())["rows"]["events"] == 5000


def test_corrupt_shipped_raw_file_fails_the_gate(cli, shared_datasets, tmp_path):
    raw = tmp_path / "raw" / "movielens-latest-small"
    shutil.copytree(shared_datasets / "movielens-latest-small", raw)
    (raw / "ratings.csv").chmod(0o644)
    with open(raw / "ratings.csv", "a") as fh:
        fh.write("1,1,not-a-rating,964982703\n")
    res = cli("validate", "--dataset", "movielens-small", "--data-dir", tmp_path / "raw", "--out", tmp_path / "out")
    assert res.exit_code == 1 and "source.contract" in res.output
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["failing"] == ["source.contract"] and "sha256" in doc["expectations"][0]["details"]
