"""Malformed inputs as a new user delivers them, through the real CLI (``coldrec data prepare``).

One row per case: the files, the exit code, what the message must say (file, column, row), and,
for the documented normalisations that succeed, the values in the written Parquet. Every case
also checks that no traceback reaches the user and that the input files are left byte for byte
as they were (issue 15: never destroy a user's files, never call an empty result a success).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

HEADER = "user_id,item_id,event_type,timestamp,value"
ROWS = ["u1,i1,view,2024-03-01T10:00:00,", "u2,i2,purchase,2024-03-01T11:00:00,2", "u1,i2,view,2024-03-02T09:00:00,"]
ITEMS = "item_id,title,price\ni1,mug,3.5\ni2,lamp,12\n"


def csv(header: str = HEADER, rows: list[str] | None = None, nl: str = "\n") -> bytes:
    return nl.join([header, *(ROWS if rows is None else rows)]).encode() + nl.encode()


def events_with(**row0: str) -> bytes:
    """The good events with some fields of the first row replaced."""
    cols = HEADER.split(",")
    first = dict(zip(cols, ROWS[0].split(",")))
    first.update(row0)
    return csv(rows=[",".join(first[c] for c in cols), *ROWS[1:]])


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data)
    return buf.getvalue()


def parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


GOOD_EVENTS_DF = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "event_type": ["view", "view"],
                               "timestamp": ["2024-03-01T10:00:00", "2024-03-01T11:00:00"]})


@dataclass
class Case:
    id: str
    events: bytes
    items: bytes = ITEMS.encode()
    code: int = 2
    says: list[str] = field(default_factory=list)  # substrings of stdout + stderr
    check: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None  # (events, items) as written
    events_name: str = "events.csv"
    items_name: str = "items.csv"
    marks: tuple = ()


def _ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def _ok_bom_crlf(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert list(ev.columns[:5]) == HEADER.split(",")
    assert ev["user_id"].tolist() == ["u1", "u2", "u1"]
    assert ev["value"].tolist()[1] == 2.0 and it["price"].tolist() == [3.5, 12.0]  # no '\r' left on the last column


def _ok_spaced_header(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert ev["user_id"].tolist() == ["u1", "u2", "u1"] and it["title"].tolist() == ["mug", "lamp"]


def _ok_ms(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert ev["timestamp"].tolist() == [_ts("2024-03-01 10:00:00.123"), _ts("2024-03-01 11:00"), _ts("2024-03-02 09:00")]


def _ok_joined(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert ev["item_id"].tolist() == ["85123", "71053"] and set(ev["item_id"]) <= set(it["item_id"])
    assert ev["user_id"].tolist() == ["17850", "17850"]


def _ok_one_user(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert ev["user_id"].tolist() == ["17850", "17850", "17850"]


def _ok_trailing_delimiter(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert list(it.columns) == ["item_id", "title", "description", "category", "brand", "price"]
    assert ev["user_id"].tolist() == ["u1", "u2", "u1"]


def _ok_search_without_item(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    search = ev[ev["event_type"] == "search"]
    assert search["item_id"].isna().all() and search["query"].tolist() == ["red mug"]


def _ok_long_text_id(ev: pd.DataFrame, it: pd.DataFrame) -> None:
    assert ev["user_id"].iloc[0] == "100000000000000000000"


CASES = [
    # -- the header ----------------------------------------------------------------------------
    Case("duplicated-header", csv("user_id,item_id,event_type,timestamp,timestamp",
                                  ["u1,i1,view,2024-03-01,2024-03-02"]),
         says=["events.csv: duplicated column name(s) in the header: 'timestamp' (columns 4 and 5)"]),
    Case("duplicated-header-after-strip", csv(), items=b"item_id,title, title \ni1,mug,cup\n",
         says=["items.csv: duplicated column name(s) in the header: 'title' (columns 2 and 3)"]),
    Case("nameless-column-with-values", csv("user_id,,event_type,timestamp,value"),
         says=["events.csv: column 2 has no name in the header, but row 1 (line 2) holds 'i1'"]),
    Case("wrong-delimiter", csv().replace(b",", b";"),
         says=["events.csv: missing required column(s) 'user_id', 'item_id', 'event_type', 'timestamp'",
               "the file looks ';'-separated"]),
    Case("renamed-columns", csv("UserID,item_id,Event_Type,timestamp,value"),
         says=["events.csv: missing required column(s) 'user_id', 'event_type'",
               "rename 'UserID' for 'user_id', 'Event_Type' for 'event_type'"]),
    Case("no-header", csv(ROWS[1], ROWS[:1]), says=["events.csv: missing required column(s)", "is the first line a header?"]),
    Case("no-header-blank-field", csv(ROWS[0], ROWS[1:]),
         says=["events.csv: column 5 has no name in the header, but row 1 (line 2) holds '2'", "is the first line a header?"]),
    Case("only-header", csv(rows=[]), says=["events.csv: has a header but no rows"]),
    Case("empty-file", b"", says=["events.csv: file is empty"]),
    Case("blank-lines-only", b"\n  \n\r\n", says=["events.csv: file is empty"]),
    Case("every-row-one-field-more", csv(rows=[r + ",x" for r in ROWS]),
         says=["events.csv: line 2 has 6 fields, the header has 5"]),
    Case("one-row-one-field-more", csv(rows=[ROWS[0], ROWS[1] + ",x"]),
         says=["events.csv: line 3 has 6 fields, the header has 5 (a value holding a comma must be in double quotes)"]),
    # -- the bytes -----------------------------------------------------------------------------
    Case("gzip-named-csv", gzip.compress(csv()), says=["events.csv: not CSV text: looks like gzip-compressed data: name it .csv.gz"]),
    Case("xlsx-named-csv", csv(), items=zipped("xl/workbook.xml", b"<workbook/>"),
         says=["items.csv: not CSV text: looks like a zip archive (an Excel .xlsx workbook is one)"]),
    Case("parquet-named-csv", parquet(GOOD_EVENTS_DF), says=["events.csv: not CSV text: looks like a Parquet file: name it .parquet"]),
    Case("csv-named-gz", csv(), events_name="events.csv.gz",
         says=["events.csv.gz: not gzip-compressed data: looks like plain text: if it is CSV, name it .csv"]),
    Case("csv-named-parquet", csv(), events_name="events.parquet",
         says=["events.parquet: not a Parquet file: looks like plain text: if it is CSV, name it .csv"]),
    Case("utf16", csv().decode().encode("utf-16"), says=["events.csv: not CSV text: looks like UTF-16 text: re-encode it as UTF-8"]),
    Case("latin1", csv(rows=[ROWS[0], "u\xe9,i2,view,2024-03-01T11:00:00,"]).decode().encode("latin-1"),
         says=["events.csv: line 3: not valid UTF-8 (byte 0xe9"]),
    # -- ids -----------------------------------------------------------------------------------
    Case("NULL-user-id", csv(rows=[ROWS[0], "NULL,i2,purchase,2024-03-01T11:00:00,2"]),
         says=["events.csv, column 'user_id', row 2 (line 3): empty id ('NULL' is read as a missing id)"]),
    Case("None-item-id", events_with(item_id="None"),
         says=["events.csv, column 'item_id', row 1 (line 2): empty id ('None' is read as a missing id)"]),
    Case("NA-catalogue-id", csv(), items=b"item_id,title\ni1,mug\nN/A,lamp\n",
         says=["items.csv, column 'item_id', row 2 (line 3): empty id ('N/A' is read as a missing id)"]),
    Case("huge-float-id", parquet(GOOD_EVENTS_DF.assign(user_id=[1e20, 2.0])), events_name="events.parquet",
         says=["events.parquet, column 'user_id', row 1: 1e+20 is not an id (a float id beyond 2**53 has lost digits"]),
    Case("boolean-id", parquet(GOOD_EVENTS_DF.assign(item_id=[True, False])), events_name="events.parquet",
         says=["events.parquet, column 'item_id', row 1: True is not an id (a boolean is not an id)"]),
    Case("same-id-spelled-twice-in-catalogue", csv(), items=b"item_id,title\n17850,mug\n17850.0,lamp\n",
         says=["items.csv, column 'item_id', row 2 (line 3): duplicate item id '17850'"]),
    # -- times ---------------------------------------------------------------------------------
    Case("12-digit-time", events_with(timestamp="170928720012"),
         says=["events.csv, column 'timestamp', row 1 (line 2): cannot parse '170928720012' as a timestamp: 12 digits:"
               " neither Unix seconds (9-11 digits) nor Unix milliseconds (13 digits)"]),
    Case("microseconds", events_with(timestamp="1709287200123456"),
         says=["row 1 (line 2): cannot parse '1709287200123456' as a timestamp: 16 digits look like Unix microseconds"]),
    Case("negative-epoch", events_with(timestamp="-86400"),
         says=["events.csv, column 'timestamp', row 1 (line 2): cannot parse '-86400' as a timestamp: a negative Unix time (before 1970)"]),
    Case("negative-epoch-parquet", parquet(GOOD_EVENTS_DF.assign(timestamp=[-1, 1709287200])), events_name="events.parquet",
         says=["events.parquet, column 'timestamp', row 1: cannot parse '-1' as a timestamp: a negative Unix time (before 1970)"]),
    Case("year-9999", events_with(timestamp="9999-12-31"),
         says=["events.csv, column 'timestamp', row 1 (line 2): cannot parse '9999-12-31' as a timestamp: year 9999 is"
               " outside the supported time range 1677-09-21 .. 2262-04-11"]),
    Case("day-first-date", events_with(timestamp="31/12/2023 10:00"),
         says=["events.csv, column 'timestamp', row 1 (line 2): cannot parse '31/12/2023 10:00' as a timestamp (expected"
               " ISO-8601, Unix seconds (9-11 digits) or Unix milliseconds (13 digits))"]),
    # -- numbers -------------------------------------------------------------------------------
    Case("inf-value", csv(rows=[ROWS[0], "u2,i2,purchase,2024-03-01T11:00:00,inf"]),
         says=["events.csv, column 'value', row 2 (line 3): 'inf' is not a number"]),
    Case("inf-price", csv(), items=b"item_id,title,price\ni1,mug,Infinity\n",
         says=["items.csv, column 'price', row 1 (line 2): 'Infinity' is not a number"]),
    Case("NULL-value", csv(rows=[ROWS[0], "u2,i2,purchase,2024-03-01T11:00:00,NULL"]),  # markers are missing ids only
         says=["events.csv, column 'value', row 2 (line 3): 'NULL' is not a number"]),
    Case("unknown-event-type", events_with(event_type="wishlist"),
         says=["events.csv, column 'event_type', row 1 (line 2): unknown event type 'wishlist'"]),
    Case("markup-like-value", events_with(event_type="[/b]"),
         says=["events.csv, column 'event_type', row 1 (line 2): unknown event type '[/b]'"]),
    # -- documented normalisations: exit 0, values as the contract writes them -------------------
    Case("bom-and-crlf", b"\xef\xbb\xbf" + csv(nl="\r\n"), items=b"\xef\xbb\xbf" + ITEMS.replace("\n", "\r\n").encode(),
         code=0, check=_ok_bom_crlf),
    Case("spaces-around-names", csv(" user_id , item_id ,event_type,timestamp,value"),
         items=b" item_id ,title ,price\ni1,mug,3.5\ni2,lamp,12\n", code=0, check=_ok_spaced_header),
    Case("millisecond-times", csv(rows=["u1,i1,view,1709287200123,", "u2,i2,purchase,1709290800000,2",
                                        "u1,i2,view,2024-03-02T09:00:00,"]), code=0, check=_ok_ms),
    Case("int64-parquet-ids-join-text-catalogue",
         parquet(pd.DataFrame({"user_id": [17850, 17850], "item_id": np.array([85123, 71053], dtype="int64"),
                               "event_type": ["view", "view"], "timestamp": [1709287200, 1709290800]})),
         events_name="events.parquet", items=b"item_id,title\n85123,mug\n71053,lamp\n", code=0, check=_ok_joined),
    Case("mixed-id-spellings", csv(rows=["17850,i1,view,2024-03-01T10:00:00,", "17850.0,i2,view,2024-03-01T11:00:00,",
                                         " 17850 ,i2,purchase,2024-03-02T09:00:00,1"]), code=0, check=_ok_one_user),
    Case("trailing-delimiter", csv(HEADER + ",", [r + "," for r in ROWS]),
         items=b"item_id,title,price,\ni1,mug,3.5,\ni2,lamp,12,\n", code=0, check=_ok_trailing_delimiter),
    Case("null-item-on-search", csv(HEADER + ",query", [r + "," for r in ROWS] + ["u2,NULL,search,2024-03-02T10:00:00,,red mug"]),
         code=0, check=_ok_search_without_item),
    Case("long-integer-id-as-text", events_with(user_id="100000000000000000000"), code=0, check=_ok_long_text_id),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_prepare_on_a_malformed_input(tmp_path: Path, case: Case) -> None:
    src = tmp_path / "in"
    src.mkdir()
    events, items = src / case.events_name, src / case.items_name
    events.write_bytes(case.events)
    items.write_bytes(case.items)
    before = {p: _digest(p) for p in (events, items)}
    out = tmp_path / "out"
    env = {**os.environ, "COLDREC_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "coldrec.cli", "data", "prepare", "--events", str(events),
                          "--items", str(items), "--out", str(out)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    said = res.stdout + res.stderr
    assert "Traceback" not in said, said
    assert res.returncode == case.code, said
    for text in case.says:
        assert text in said, said
    assert {p: _digest(p) for p in (events, items)} == before  # the user's files are untouched
    if case.code == 0:
        ev, it = pd.read_parquet(out / "events.parquet"), pd.read_parquet(out / "items.parquet")
        assert case.check is not None
        case.check(ev, it)
    else:
        assert not out.exists() and not (tmp_path / "data").exists()  # nothing written for a refused input
        assert said.count("\n") <= 2, said  # one line, not a wall of text
