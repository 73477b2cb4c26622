"""The canonical contract: good files pass with the right types, each kind of bad input fails
with one message naming file, column and first bad row."""
from __future__ import annotations

import gzip
import lzma

import pandas as pd
import pytest

from coldrec.core.errors import DataError
from coldrec.data.contract import EVENT_REQUIRED, EVENT_TYPES, canonical_events, canonical_items, read_table
from coldrec.data.dataset import from_files
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
    with pytest.raises(DataError, match=r"events\.parquet: not a Parquet file: looks like plain text: if it is CSV, name it \.csv"):
        read_table(bad)
    bad.write_bytes(b"PAR1 but truncated")
    with pytest.raises(DataError, match=r"events\.parquet: not a readable Parquet file"):
        read_table(bad)
    with pytest.raises(DataError, match=r"events\.json: unsupported file type"):
        (tmp_path / "events.json").write_text("{}")
        read_table(tmp_path / "events.json")
    (tmp_path / "events.csv.xz").write_bytes(b"not xz at all")
    with pytest.raises(DataError, match=r"events\.csv\.xz: not xz-compressed data: looks like plain text"):
        read_table(tmp_path / "events.csv.xz")
    (tmp_path / "events.csv.xz").write_bytes(lzma.compress(b"user_id,item_id\n" * 100)[:40])  # truncated
    with pytest.raises(DataError, match=r"events\.csv\.xz: not a valid compressed file"):
        read_table(tmp_path / "events.csv.xz")
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")



# -- what a file's bytes and header may hide (issue 15) ----------------------------------------

GOOD_CSV = b"user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01\n"


@pytest.mark.parametrize("name, data, expected", [
    ("events.csv", gzip.compress(GOOD_CSV), r"events\.csv: not CSV text: looks like gzip-compressed data: name it \.csv\.gz"),
    ("events.csv", lzma.compress(GOOD_CSV), r"events\.csv: not CSV text: looks like xz-compressed data: name it \.csv\.xz"),
    ("events.csv", b"PAR1\x15\x04\x15", r"events\.csv: not CSV text: looks like a Parquet file: name it \.parquet"),
    ("events.csv", b"PK\x03\x04\x14\x00", r"events\.csv: not CSV text: looks like a zip archive \(an Excel \.xlsx"),
    ("events.csv", GOOD_CSV.decode().encode("utf-16"), r"events\.csv: not CSV text: looks like UTF-16 text: re-encode it as UTF-8"),
    ("events.csv", GOOD_CSV.decode().encode("utf-16-le"), r"events\.csv: line 1: holds NUL bytes"),
    ("events.csv.gz", GOOD_CSV, r"events\.csv\.gz: not gzip-compressed data: looks like plain text: if it is CSV, name it \.csv"),
    ("events.csv.gz", lzma.compress(GOOD_CSV),
     r"events\.csv\.gz: not gzip-compressed data: looks like xz-compressed data: name it \.csv\.xz"),
    ("events.csv.xz", gzip.compress(GOOD_CSV),
     r"events\.csv\.xz: not xz-compressed data: looks like gzip-compressed data: name it \.csv\.gz"),
    ("events.csv.gz", gzip.compress(gzip.compress(GOOD_CSV)),
     r"events\.csv\.gz: the decompressed data is not CSV text: it looks like gzip"),
], ids=["gzip-as-csv", "xz-as-csv", "parquet-as-csv", "zip-as-csv", "utf16-bom", "utf16-no-bom", "text-as-gz",
        "xz-as-gz", "gz-as-xz", "gz-in-gz"])
def test_file_content_that_does_not_match_its_name(tmp_path, name, data, expected):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(DataError, match=expected):
        read_table(p)


@pytest.mark.parametrize("header, expected", [
    ("user_id,item_id,event_type,timestamp,timestamp", r"duplicated column name\(s\) in the header: 'timestamp' \(columns 4 and 5\)"),
    ("user_id,item_id, user_id ,event_type,timestamp", r"duplicated column name\(s\) in the header: 'user_id' \(columns 1 and 3\)"),
])
def test_duplicated_header_names_are_refused(tmp_path, header, expected):
    p = tmp_path / "events.csv"
    p.write_text(header + "\n" + ",".join(["a"] * len(header.split(","))) + "\n")
    with pytest.raises(DataError, match=r"events\.csv: " + expected):
        read_table(p)


def test_duplicated_parquet_columns_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "events.parquet"
    pq.write_table(pa.table([pa.array(["u1"]), pa.array(["i1"]), pa.array(["i2"])], names=["user_id", "item_id", "item_id "]), p)
    with pytest.raises(DataError, match=r"events\.parquet: duplicated column name\(s\) in the header: 'item_id' \(columns 2 and 3\)"):
        read_table(p)


def test_row_length_and_nameless_columns(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01,x\nu2,i2,view,2024-01-01,y\n")
    with pytest.raises(DataError, match=r"events\.csv: line 2 has 5 fields, the header has 4"):
        read_table(p)  # pandas would silently take the first column as the index
    p.write_text("user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01\nu2,i2,view,2024-01-01,x\n")
    with pytest.raises(DataError, match=r"events\.csv: line 3 has 5 fields, the header has 4 \(a value holding a comma"):
        read_table(p)
    p.write_text("user_id,,event_type,timestamp\nu1,i1,view,2024-01-01\n")
    with pytest.raises(DataError, match=r"events\.csv: column 2 has no name in the header, but row 1 \(line 2\) holds 'i1'"):
        read_table(p)
    p.write_text("user_id,item_id,event_type,timestamp,\r\nu1,i1,view,2024-01-01,\r\n")  # trailing delimiter, CRLF
    df = read_table(p)
    assert list(df.columns) == EVENT_REQUIRED and df.iloc[0].tolist() == ["u1", "i1", "view", "2024-01-01"]


@pytest.mark.parametrize("header, expected", [
    ("user_id;item_id;event_type;timestamp", r"the file looks ';'-separated, and coldrec reads comma-separated CSV"),
    ("user_id\titem_id\tevent_type\ttimestamp", r"the file looks tab-separated"),
    ("UserID,item_id,Event Type,timestamp",
     r"names are exact \(lower case, underscores\): rename 'UserID' for 'user_id', 'Event Type' for 'event_type'"),
    ("u1,i1,view,2024-01-01", r"is the first line a header\?"),
])
def test_missing_columns_say_why(tmp_path, header, expected):
    p = tmp_path / "events.csv"
    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    p.write_text(header + "\n" + sep.join(["u2", "i2", "view", "2024-01-02"]) + "\n")
    with pytest.raises(DataError, match=r"missing required column.*" + expected):
        canonical_events(read_table(p))


def test_int64_parquet_events_join_a_text_catalogue(tmp_path):
    ev = pd.DataFrame({"user_id": [17850, 13047], "item_id": pd.Series([85123, 71053], dtype="int64"),
                       "event_type": ["view", "view"], "timestamp": [1709287200123, 1709287260000]})
    ev.to_parquet(tmp_path / "events.parquet", index=False)
    (tmp_path / "items.csv").write_text("item_id,title\n85123,mug\n71053.0,lamp\n")
    ds = from_files(tmp_path / "events.parquet", tmp_path / "items.csv")
    assert set(ds.events["item_id"]) == set(ds.items["item_id"]) == {"85123", "71053"}
    assert ds.events["user_id"].tolist() == ["17850", "13047"]
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 10:00:00.123", tz="UTC")  # 13 digits = ms


def test_null_markers_are_missing_ids(tmp_path):
    df = pd.DataFrame({"user_id": ["u1", "NULL"], "item_id": ["i1", "i2"], "event_type": ["view", "view"],
                       "timestamp": ["2024-01-01", "2024-01-02"]})
    with pytest.raises(DataError, match=r"events\.csv, column 'user_id', row 2 \(line 3\): empty id \('NULL' is read as a missing id\)"):
        canonical_events(read_table(_write(tmp_path, df)))
    df.loc[1, ["user_id", "item_id", "event_type"]] = ["u2", "n/a", "search"]  # a search may lack its item
    assert canonical_events(read_table(_write(tmp_path, df)))["item_id"].tolist() == ["i1", None]
