"""Read tables for validation *without* failing on the first broken row.

The canonical loader (:mod:`coldrec.data.contract`) stops at the first structural error with a
:class:`~coldrec.core.errors.DataError`. Validation must instead *measure* every problem, so here each
table is read as it is (:func:`read_raw`) and coerced by the very functions the contract uses
(:mod:`coldrec.data.coercion`), but leniently (:func:`typed`): a value that cannot be coerced becomes
missing instead of raising, and the expectations then count and sample those rows. Coercion is
idempotent, so canonical tables (already typed) go through the same function unchanged.

Typed columns per table (all others are kept as they are):

events  user_id, item_id (str or None), event_type (stripped, lower case), timestamp
        (datetime64[ns, UTC], NaT when missing or unparseable), value (float, NaN when missing or
        not a number), value_raw (the value as written, for the "is a number" expectation), query;
        plus repeat_of (the first row an event repeats, see :func:`repeat_of`; the duplicates
        expectations)
items   item_id, title (str or None), price (float), price_raw
users   user_id
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from coldrec.core.errors import DataError
from coldrec.data import coercion
from coldrec.data.contract import (
    EVENT_REQUIRED,
    ITEM_REQUIRED,
    USER_REQUIRED,
    check_input_path,
    csv_header,
    csv_text,
    duplicated_names,
    read_table,
)

REQUIRED = {"events": EVENT_REQUIRED, "items": ITEM_REQUIRED, "users": USER_REQUIRED}


@dataclass
class RawTable:
    """One input table as delivered: ``frame`` as read (``None`` when unreadable) and why not."""

    table: str
    source: str
    frame: pd.DataFrame | None
    is_csv: bool = False
    unreadable: str | None = None  # the reader's message when the file could not be parsed at all


def _empty_frame(path: Path, is_csv: bool) -> pd.DataFrame | None:
    """A zero-row frame (with the header's columns, if any) when the file holds no rows, else None
    (also when it cannot be read: :func:`~coldrec.data.contract.read_table` then says why)."""
    if path.stat().st_size == 0:
        return pd.DataFrame()
    if is_csv:
        try:
            text = csv_text(path)
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if not lines:
                return pd.DataFrame()
            if len(lines) > 1:
                return None
            names = csv_header(str(path), text)
        except DataError:
            return None
        if duplicated_names(names):
            return None
        return pd.DataFrame(columns=[n for n in names if n], dtype=object)
    try:
        df = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - a corrupt file is reported as unreadable by read_table
        return None
    return df if df.empty else None


def read_raw(path: str | Path, table: str) -> RawTable:
    """Read one file as-is. A wrong path is the user's mistake (DataError, exit 2); a file that
    exists but is empty or cannot be parsed is *data* and is returned for validation to report."""
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

def _number_and_written(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float values, NaN where missing or not a number; the value as written, for ``*.numeric``)."""
    return coercion.numbers(col).column, coercion.text(col).column


EVENT_KEY = ["user_id", "item_id", "event_type", "timestamp"]  # what makes two events the same event


def repeat_of(events: pd.DataFrame) -> pd.Series:
    """Per row of a typed events frame: the row number (1-based, as in samples) of the *first*
    event with the same (user_id, item_id, event_type, timestamp) when this row repeats it, else
    NaN. So a group of k identical events counts k - 1 duplicates, and ``events.duplicates``'
    percentage is "events that repeat an earlier one, of all events". Rows missing a user,
    type or time are not compared (they fail their own expectation); a missing item (a search)
    is compared as a value."""
    out = pd.Series(float("nan"), index=events.index, dtype="float64")
    comparable = events[["user_id", "event_type", "timestamp"]].notna().all(axis=1)
    key = events.loc[comparable, EVENT_KEY]
    if key.empty:
        return out
    rows = pd.Series(range(len(key)), index=key.index)
    first = rows.groupby([key[c] for c in EVENT_KEY], dropna=False, sort=False).transform("first")
    repeats = first != rows
    out[repeats[repeats].index] = key.index[first[repeats].to_numpy()].to_numpy() + 1.0
    return out


def typed(raw: RawTable) -> pd.DataFrame:
    """The frame the expectations run on; same index as ``raw.frame`` (its row numbers)."""
    df = raw.frame if raw.frame is not None else pd.DataFrame()
    out = pd.DataFrame(index=df.index)
    if raw.table == "events":
        for c in ("user_id", "item_id"):
            if c in df.columns:
                out[c] = coercion.ids(df[c]).column
        if "event_type" in df.columns:
            out["event_type"] = coercion.labels(df["event_type"]).column
        if "timestamp" in df.columns:
            out["timestamp"] = coercion.timestamps(df["timestamp"]).column
        if "value" in df.columns:
            out["value"], out["value_raw"] = _number_and_written(df["value"])
        if "query" in df.columns:
            out["query"] = coercion.text(df["query"]).column
        if set(EVENT_KEY) <= set(out.columns):
            out["repeat_of"] = repeat_of(out)
    elif raw.table == "items":
        if "item_id" in df.columns:
            out["item_id"] = coercion.ids(df["item_id"]).column
        if "title" in df.columns:
            out["title"] = coercion.text(df["title"]).column
        if "price" in df.columns:
            out["price"], out["price_raw"] = _number_and_written(df["price"])
    elif raw.table == "users":
        if "user_id" in df.columns:
            out["user_id"] = coercion.ids(df["user_id"]).column
    for c in df.columns:  # anything else is kept as it is (not validated beyond presence)
        if c not in out.columns and f"{c}_raw" not in out.columns:
            out[c] = df[c]
    return out
