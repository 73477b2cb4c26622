"""The canonical data contract: three tables every stage reads, whatever the data's origin.

events  user_id (str), item_id (str; may be empty only for ``search``), event_type (one of
        EVENT_TYPES), timestamp (UTC), value (float, optional: quantity / rating),
        query (str, optional: the text of a search event)
items   item_id, title; optional description, category, brand, price; extra columns are kept
        as text (they feed the item text template)
users   user_id + any attributes (optional table)

Structural checks live here (columns, types, parseability) and fail fast with a message that
names file, column and first bad row. What counts as an id, a time or a number is decided in
:mod:`coldrec.coercion`, which the gate's lenient reader uses too; this module only turns the
first value that does not coerce into its error message. Statistical quality (duplicates,
freshness, referential integrity) is the job of the Great Expectations gate in ``expectations/``.
"""
from __future__ import annotations

import gzip
import io
import lzma
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from coldrec import coercion
from coldrec.errors import DataError

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "search", "rate")

EVENT_COLUMNS = ["user_id", "item_id", "event_type", "timestamp", "value", "query"]
EVENT_REQUIRED = ["user_id", "item_id", "event_type", "timestamp"]
ITEM_CORE = ["item_id", "title", "description", "category", "brand", "price"]
ITEM_REQUIRED = ["item_id", "title"]
USER_REQUIRED = ["user_id"]

SUFFIXES = (".csv", ".csv.gz", ".csv.xz", ".parquet", ".pq")


def decompressed_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed when it ends in .xz or .gz."""
    name = path.name.lower()
    if name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    return path.read_bytes()


def _where(source: str, column: str | None, row: int | None, is_csv: bool) -> str:
    """``file: column 'x', row 3 (line 4)``; rows count data rows from 1, lines include the header."""
    parts = [source]
    if column is not None:
        parts.append(f"column '{column}'")
    if row is not None:
        parts.append(f"row {row + 1}" + (f" (line {row + 2})" if is_csv else ""))
    return ", ".join(parts)


def check_input_path(path: str | Path) -> Path:
    """An input file must exist, be a file, and be CSV (optionally .gz/.xz) or Parquet."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV or Parquet file")
    if not path.name.lower().endswith(SUFFIXES):
        raise DataError(f"{path}: unsupported file type (expected one of {', '.join(SUFFIXES)})")
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally .gz/.xz) or Parquet file as-is; refuse empty or non-UTF-8 files.

    CSV values are read as text (nothing guessed); empty cells become missing values. The
    frame carries ``attrs['source']`` and ``attrs['is_csv']`` so later checks can name the file.
    """
    path = check_input_path(path)
    src = str(path)
    name = path.name.lower()
    if path.stat().st_size == 0:
        raise DataError(f"{src}: file is empty")
    is_csv = ".csv" in name
    if is_csv:
        try:
            raw = decompressed_bytes(path)
        except (lzma.LZMAError, EOFError, OSError) as exc:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{src}: not a valid compressed file ({exc})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                f"{src}: line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start});"
                " re-encode the file as UTF-8"
            ) from None
        if not text.strip():
            raise DataError(f"{src}: file is empty")
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
        except pd.errors.ParserError as exc:
            raise DataError(f"{src}: malformed CSV: {exc}") from None
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise DataError(f"{src}: not a readable Parquet file: {exc}") from None
    df.attrs["source"] = src
    df.attrs["is_csv"] = is_csv
    if df.empty:
        raise DataError(f"{src}: has a header but no rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _require_columns(df: pd.DataFrame, required: list[str], table: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(df.columns)
        raise DataError(
            f"{df.attrs.get('source', table)}: missing required column(s) {', '.join(repr(m) for m in missing)}"
            f" for the {table} table (found: {have})"
        )


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _shown(v: object) -> str:
    """A value for an error message: as written (``'lots'``, ``True``, ``inf``), numpy scalars as Python."""
    return repr(v.item() if isinstance(v, np.generic) else v)


def _raise_first(df: pd.DataFrame, column: str, wrong: pd.Series, message: Callable[[int], str]) -> None:
    """Raise the contract's DataError for the first row of ``wrong`` (``message(row) -> str``)."""
    if wrong.any():
        i = _first_bad(wrong)
        raise DataError(f"{_where(df.attrs['source'], column, i, df.attrs['is_csv'])}: {message(i)}")


def _id_column(df: pd.DataFrame, column: str, allow_missing: pd.Series | None = None) -> pd.Series:
    """Ids as clean strings (:func:`coldrec.coercion.ids`); blanks are errors unless allowed."""
    ids, bad = coercion.ids(df[column])
    missing = ids.isna() & ~bad
    if allow_missing is not None:
        missing &= ~allow_missing
    raw = df[column]
    _raise_first(df, column, bad | missing,
                 lambda i: "empty id" if missing.iloc[i] else f"{_shown(raw.iloc[i])} is not an id")
    return ids


def _timestamps(df: pd.DataFrame, column: str) -> pd.Series:
    """UTC timestamps (:func:`coldrec.coercion.timestamps`); a missing or unparseable one is an error."""
    ts, bad = coercion.timestamps(df[column])
    raw = df[column]

    def message(i: int) -> str:
        what = f"cannot parse {str(raw.iloc[i])!r} as a timestamp" if bad.iloc[i] else "missing timestamp"
        return f"{what} (expected ISO-8601 or Unix seconds)"

    _raise_first(df, column, ts.isna(), message)
    return ts


def _numbers(df: pd.DataFrame, column: str) -> pd.Series:
    """Floats (:func:`coldrec.coercion.numbers`); missing is allowed, a value that is not a number is not."""
    num, bad = coercion.numbers(df[column])
    raw = df[column]
    _raise_first(df, column, bad, lambda i: f"{_shown(raw.iloc[i])} is not a number")
    return num


def _text(col: pd.Series) -> pd.Series:
    return coercion.text(col).column


def canonical_events(df: pd.DataFrame) -> pd.DataFrame:
    """Check and coerce an events table to the contract; first violation raises DataError."""
    df = df.reset_index(drop=True)
    _require_columns(df, EVENT_REQUIRED, "events")
    src, is_csv = df.attrs["source"], df.attrs["is_csv"]
    etype = coercion.labels(df["event_type"]).column
    unknown = ~etype.isin(EVENT_TYPES)
    if unknown.any():
        i = _first_bad(unknown)
        raise DataError(
            f"{_where(src, 'event_type', i, is_csv)}: unknown event type {df['event_type'].iloc[i]!r}"
            f" (allowed: {', '.join(EVENT_TYPES)})"
        )
    is_search = (etype == "search").to_numpy()
    out = pd.DataFrame(
        {
            "user_id": _id_column(df, "user_id"),
            "item_id": _id_column(df, "item_id", allow_missing=pd.Series(is_search, index=df.index)),
            "event_type": etype,
            "timestamp": _timestamps(df, "timestamp"),
            "value": _numbers(df, "value") if "value" in df.columns else np.nan,
            "query": _text(df["query"]) if "query" in df.columns else None,
        }
    )
    out["value"] = out["value"].astype("float64")
    out["query"] = out["query"].astype(object)
    out = out.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    out.attrs.clear()
    return out


def canonical_items(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    _require_columns(df, ITEM_REQUIRED, "items")
    src, is_csv = df.attrs["source"], df.attrs["is_csv"]
    ids = _id_column(df, "item_id")
    dup = ids.duplicated()
    if dup.any():
        i = _first_bad(dup)
        raise DataError(f"{_where(src, 'item_id', i, is_csv)}: duplicate item id {ids.iloc[i]!r}")
    out = pd.DataFrame({"item_id": ids})
    title = _text(df["title"])
    out["title"] = title.fillna("")
    for col in ("description", "category", "brand"):
        out[col] = _text(df[col]) if col in df.columns else None
    out["price"] = _numbers(df, "price") if "price" in df.columns else np.nan
    for col in df.columns:
        if col not in out.columns:
            out[col] = _text(df[col])  # extra text columns, kept for the item text template
    out.attrs.clear()
    return out


def canonical_users(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    _require_columns(df, USER_REQUIRED, "users")
    ids = _id_column(df, "user_id")
    dup = ids.duplicated()
    if dup.any():
        i = _first_bad(dup)
        raise DataError(f"{_where(df.attrs['source'], 'user_id', i, df.attrs['is_csv'])}: duplicate user id {ids.iloc[i]!r}")
    out = pd.DataFrame({"user_id": ids})
    for col in df.columns:
        if col != "user_id":
            out[col] = _text(df[col])
    out.attrs.clear()
    return out
