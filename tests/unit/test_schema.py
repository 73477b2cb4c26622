"""The canonical contract: good files pass with the right types, each kind of bad input fails
with one message naming file, column and first bad row."""
from __future__ import annotations

import pandas as pd
import pytest

from coldrec.dataset import from_files
from coldrec.errors import DataError
from coldrec.schema import EVENT_TYPES, canonical_events, canonical_items, read_table
from tests.conftest import make_events, make_items


def _write(tmp_path, df, name="events.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_valid_files_are_coerced_to_the_contract(small_files):
    ds = from_files(**small_files)
    ev = ds.events
    assert list(ev.columns) == ["user_id", "item_id", "event_type", "timestamp", "value", "query"]
    assert str(ev["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert set(ev["event_type"]) <= set(EVENT_TYPES)
    assert ev["timestamp"].is_monotonic_increasing
    search = ev[ev["event_type"] == "search"]
    assert len(search) == 1 and search["item_id"].isna().all() and search["query"].iloc[0] == "red mug"
    assert ev.loc[ev["event_type"] == "purchase", "value"].eq(1.0).all()
    assert ds.items["price"].dtype == "float64"
    assert "colour" in ds.items.columns  # extra text columns are kept
    assert list(ds.users.columns) == ["user_id", "country"]


def test_naive_timestamps_are_utc_and_epoch_seconds_parse(tmp_path):
    df = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "event_type": ["view", "CLICK"],
                       "timestamp": ["2024-03-01 10:00:00", "1709287200"]})
    ev = canonical_events(read_table(_write(tmp_path, df)))
    assert ev["timestamp"].tolist() == [pd.Timestamp("2024-03-01 10:00:00", tz="UTC")] * 2
    assert ev["event_type"].tolist() == ["view", "click"]


def test_parquet_integer_ids_become_integer_strings(tmp_path):
    df = pd.DataFrame({"user_id": [17850.0, 13047.0], "item_id": [1, 2], "event_type": ["rate", "rate"],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]), "value": [4.5, 3.0]})
    p = tmp_path / "events.parquet"
    df.to_parquet(p)
    ev = canonical_events(read_table(p))
    assert ev["user_id"].tolist() == ["17850", "13047"]
    assert ev["item_id"].tolist() == ["1", "2"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda df: df.drop(columns=["event_type"]), r"events\.csv: missing required column\(s\) 'event_type'"),
        (lambda df: df.assign(timestamp=df["timestamp"].where(df.index != 3, "yesterday-ish")),
         r"events\.csv, column 'timestamp', row 4 \(line 5\): cannot parse 'yesterday-ish' as a timestamp"),
        (lambda df: df.assign(timestamp=df["timestamp"].where(df.index != 2, "")),
         r"events\.csv, column 'timestamp', row 3 \(line 4\): missing timestamp"),
        (lambda df: df.assign(event_type=df["event_type"].where(df.index != 5, "wishlist")),
         r"events\.csv, column 'event_type', row 6 \(line 7\): unknown event type 'wishlist'"),
        (lambda df: df.assign(user_id=df["user_id"].where(df.index != 1, "")),
         r"events\.csv, column 'user_id', row 2 \(line 3\): empty id"),
        (lambda df: df.assign(item_id=df["item_id"].where(df.index != 0, "")),
         r"events\.csv, column 'item_id', row 1 \(line 2\): empty id"),
        (lambda df: df.assign(value=df["value"].where(df.index != 7, "lots")),
         r"events\.csv, column 'value', row 8 \(line 9\): 'lots' is not a number"),
    ],
    ids=["missing-column", "bad-timestamp", "missing-timestamp", "unknown-event-type", "empty-user", "empty-item", "bad-value"],
)
def test_bad_events_name_file_column_and_row(tmp_path, mutate, expected):
    p = _write(tmp_path, mutate(make_events()))
    with pytest.raises(DataError, match=expected):
        canonical_events(read_table(p))


def test_empty_file(tmp_path):
    p = tmp_path / "events.csv"
    p.write_bytes(b"")
    with pytest.raises(DataError, match=r"events\.csv: file is empty"):
        read_table(p)


def test_header_only_file(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id,event_type,timestamp\n")
    with pytest.raises(DataError, match=r"events\.csv: has a header but no rows"):
        read_table(p)


def test_non_utf8_file_names_the_line(tmp_path):
    p = tmp_path / "items.csv"
    p.write_bytes(b"item_id,title\ni1,mug\ni2,caf" + b"\xe9 noir\n")  # latin-1 e-acute
    with pytest.raises(DataError, match=r"items\.csv: line 3: not valid UTF-8 \(byte 0xe9"):
        read_table(p)


def test_duplicate_item_ids_rejected(tmp_path):
    items = make_items()
    items.loc[4, "item_id"] = "i1"
    with pytest.raises(DataError, match=r"items\.csv, column 'item_id', row 5 \(line 6\): duplicate item id 'i1'"):
        canonical_items(read_table(_write(tmp_path, items, "items.csv")))


def test_unreadable_and_unsupported_files(tmp_path):
    bad = tmp_path / "events.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"events\.parquet: not a readable Parquet file"):
        read_table(bad)
    with pytest.raises(DataError, match=r"events\.json: unsupported file type"):
        (tmp_path / "events.json").write_text("{}")
        read_table(tmp_path / "events.json")
    (tmp_path / "events.csv.xz").write_bytes(b"not xz at all")
    with pytest.raises(DataError, match=r"events\.csv\.xz: not a valid compressed file"):
        read_table(tmp_path / "events.csv.xz")
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")
