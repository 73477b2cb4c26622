"""Read tables for the quality gate *without* failing on the first broken row.

The canonical loader (:mod:`coldrec.schema`) stops at the first structural error with a
:class:`~coldrec.errors.DataError`. The gate must instead *measure* every problem, so here each
table is read as it is (:func:`read_raw`) and coerced with the same rules as the contract, but
leniently (:func:`typed`): a value that cannot be coerced becomes missing instead of raising, and
the expectations then count and sample those rows. Coercion is idempotent, so canonical tables
(already typed) go through the same function unchanged.

Typed columns per table (all others are kept as they are):

events  user_id, item_id (str or None), event_type (stripped, lower case), timestamp
        (datetime64[ns, UTC], NaT when missing or unparseable), value (float, NaN when missing or
        not a number), value_raw (the value as written, for the "is a number" expectation), query
items   item_id, title (str or None), price (float), price_raw
users   user_id
"""
from __future__ import annotations

import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from coldrec.errors import DataError
from coldrec.schema import EVENT_REQUIRED, ITEM_REQUIRED, USER_REQUIRED, check_input_path, decompressed_bytes, read_table

REQUIRED = {"events": EVENT_REQUIRED, "items": ITEM_REQUIRED, "users": USER_REQUIRED}
_EPOCH = r"\d{9,11}(\.\d+)?"


@dataclass
class RawTable:
    """One input table as delivered: ``frame`` as read (``None`` when unreadable) and why not."""

    table: str
    source: str
    frame: pd.DataFrame | None
    is_csv: bool = False
    unreadable: str | None = None  # the reader's message when the file could not be parsed at all


def _empty_frame(path: Path, is_csv: bool) -> pd.DataFrame | None:
    """A zero-row frame (with the header's columns, if any) when the file holds no rows, else None."""
    if path.stat().st_size == 0:
        return pd.DataFrame()
    if is_csv:
        try:
            lines = [ln for ln in decompressed_bytes(path).decode("utf-8-sig").splitlines() if ln.strip()]
        except (UnicodeDecodeError, OSError, EOFError, lzma.LZMAError):
            return None
        if not lines:
            return pd.DataFrame()
        if len(lines) == 1:
            return pd.DataFrame(columns=[c.strip() for c in lines[0].split(",")], dtype=object)
        return None
    try:
        df = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - a corrupt file is reported as unreadable by read_table
        return None
    return df if df.empty else None


def read_raw(path: str | Path, table: str) -> RawTable:
    """Read one file as-is. A wrong path is the user's mistake (DataError, exit 2); a file that
    exists but is empty or cannot be parsed is *data* and is returned for the gate to report."""
    path = check_input_path(path)
    src = str(path)
    is_csv = ".csv" in path.name.lower()
    empty = _empty_frame(path, is_csv)
    if empty is not None:
        empty.columns = [str(c).strip() for c in empty.columns]
        return RawTable(table, src, empty, is_csv)
    try:
        df = read_table(path)
    except DataError as exc:
        return RawTable(table, src, None, is_csv, unreadable=str(exc))
    df = df.reset_index(drop=True)
    df.attrs.clear()
    return RawTable(table, src, df, is_csv)


def raw_from_frame(df: pd.DataFrame | None, table: str, source: str) -> RawTable | None:
    """Wrap an in-memory (e.g. canonical) table."""
    if df is None:
        return None
    df = df.reset_index(drop=True)
    return RawTable(table, source, df, is_csv=False)


# -- lenient coercion -------------------------------------------------------------------------

def _ids(col: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(col):
        ints = col.dropna()
        if (ints == ints.round()).all():
            col = col.astype("Int64")
    out = col.astype("string").str.strip()
    return out.astype(object).where(out.notna() & (out != ""), None)


def _text(col: pd.Series) -> pd.Series:
    out = col.astype("string").str.strip()
    return out.astype(object).where(out.notna() & (out != ""), None)


def _timestamps(col: pd.Series) -> pd.Series:
    """Same rules as the contract (datetimes, ISO-8601 text with naive = UTC, Unix seconds); NaT
    where a value is missing or cannot be parsed. Booleans are not timestamps."""
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        return ts.astype("datetime64[ns, UTC]")
    if pd.api.types.is_bool_dtype(col):
        return out
    if pd.api.types.is_numeric_dtype(col):
        return pd.to_datetime(col, unit="s", utc=True, errors="coerce").astype("datetime64[ns, UTC]")
    text = col.astype("string").str.strip()
    numeric = text.str.fullmatch(_EPOCH).fillna(False).astype(bool)
    if numeric.any():
        out[numeric] = pd.to_datetime(text[numeric].astype(float), unit="s", utc=True, errors="coerce")
    rest = ~numeric & text.notna() & (text != "")
    if rest.any():
        out[rest] = pd.to_datetime(text[rest], utc=True, errors="coerce", format="ISO8601")
    return out


def _numbers(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float values with NaN where missing or not a number, the values as written)."""
    if pd.api.types.is_bool_dtype(col):
        num = pd.Series(np.nan, index=col.index, dtype="float64")
    else:
        num = pd.to_numeric(col, errors="coerce").astype("float64")
    raw = col.astype("string").str.strip()
    raw = raw.astype(object).where(raw.notna() & (raw != ""), None)
    return num, raw


def typed(raw: RawTable) -> pd.DataFrame:
    """The frame the expectations run on; same index as ``raw.frame`` (its row numbers)."""
    df = raw.frame if raw.frame is not None else pd.DataFrame()
    out = pd.DataFrame(index=df.index)
    if raw.table == "events":
        for c in ("user_id", "item_id"):
            if c in df.columns:
                out[c] = _ids(df[c])
        if "event_type" in df.columns:
            et = df["event_type"].astype("string").str.strip().str.lower()
            out["event_type"] = et.astype(object).where(et.notna() & (et != ""), None)
        if "timestamp" in df.columns:
            out["timestamp"] = _timestamps(df["timestamp"])
        if "value" in df.columns:
            out["value"], out["value_raw"] = _numbers(df["value"])
        if "query" in df.columns:
            out["query"] = _text(df["query"])
    elif raw.table == "items":
        if "item_id" in df.columns:
            out["item_id"] = _ids(df["item_id"])
        if "title" in df.columns:
            out["title"] = _text(df["title"])
        if "price" in df.columns:
            out["price"], out["price_raw"] = _numbers(df["price"])
    elif raw.table == "users":
        if "user_id" in df.columns:
            out["user_id"] = _ids(df["user_id"])
    for c in df.columns:  # anything else is kept as it is (not validated beyond presence)
        if c not in out.columns and f"{c}_raw" not in out.columns:
            out[c] = df[c]
    return out
