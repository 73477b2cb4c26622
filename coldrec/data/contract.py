"""The canonical data contract: three tables every stage reads, whatever the data's origin.

events  user_id (str), item_id (str; may be empty only for ``search``), event_type (one of
        EVENT_TYPES), timestamp (UTC), value (float, optional: quantity / rating),
        query (str, optional: the text of a search event)
items   item_id, title; optional description, category, brand, price; extra columns are kept
        as text (they feed the item text template)
users   user_id + any attributes (optional table)

Structural checks live here (columns, types, parseability) and fail fast with a message that
names file, column and first bad row. What counts as an id, a time or a number is decided in
:mod:`coldrec.data.coercion`, which validation's lenient reader uses too; this module only turns the
first value that does not coerce into its error message. Statistical quality (duplicates,
freshness, referential integrity) is the job of Great Expectations validation in ``expectations/``.
"""
from __future__ import annotations

import gzip
import io
import lzma
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from coldrec.data import coercion
from coldrec.core.errors import DataError

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "search", "rate")

EVENT_COLUMNS = ["user_id", "item_id", "event_type", "timestamp", "value", "query"]
EVENT_REQUIRED = ["user_id", "item_id", "event_type", "timestamp"]
ITEM_CORE = ["item_id", "title", "description", "category", "brand", "price"]
ITEM_REQUIRED = ["item_id", "title"]
USER_REQUIRED = ["user_id"]

_KNOWN_NAMES = set(EVENT_COLUMNS) | set(ITEM_CORE) | set(USER_REQUIRED)
NO_HEADER = "is the first line a header? Each file needs one naming its columns"

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


# magic bytes -> (what the data looks like, what to do); see sniff()
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b\x08", "gzip-compressed data", "name it .csv.gz"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "name it .csv.xz"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)", "extract the CSV from it, or export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook", "export the sheet as CSV (UTF-8)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "decompress it (unzstd), or recompress it as .csv.gz"),
    (b"\xff\xfe", "UTF-16 text", "re-encode it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "re-encode it as UTF-8"),
)


def sniff(head: bytes) -> tuple[str, str] | None:
    """(what, fix) when the first bytes are a known binary / compressed / UTF-16 signature, else None."""
    for magic, what, fix in _MAGIC:
        if head.startswith(magic):
            return what, fix
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bzip2-compressed data", "decompress it (bunzip2), or recompress it as .csv.gz"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut at the end of the sample
    return b"\x00" not in head


def _head(path: Path, n: int = 4096) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def _misnamed(src: str, head: bytes, kind: str) -> str:
    """The message for a file whose content is not the ``kind`` its name says."""
    found = sniff(head)
    if found:
        return "" if found[0] == kind else f"{src}: not {kind}: looks like {found[0]}: {found[1]}"
    if kind != "CSV text" and _looks_like_text(head):
        return f"{src}: not {kind}: looks like plain text: if it is CSV, name it .csv"
    return ""


def csv_text(path: Path) -> str:
    """A CSV file's text: decompressed (.gz / .xz) and decoded as UTF-8 (a BOM is dropped).

    A file whose bytes are something else (gzip data named ``.csv``, a Parquet or Excel file,
    UTF-16 text, plain text named ``.csv.gz``) is refused with what it looks like and the fix."""
    src = str(path)
    name = path.name.lower()
    head = _head(path)
    compressed = name.endswith((".gz", ".xz"))
    if not compressed and sniff(head):
        raise DataError(_misnamed(src, head, "CSV text"))
    try:
        raw = decompressed_bytes(path)
    except (lzma.LZMAError, EOFError, OSError) as exc:  # gzip.BadGzipFile is an OSError
        kind = "gzip" if name.endswith(".gz") else "xz"
        raise DataError(_misnamed(src, head, f"{kind}-compressed data")
                        or f"{src}: not a valid compressed file ({exc})") from None
    inner = sniff(raw[:16]) if compressed else None
    if inner:
        raise DataError(f"{src}: the decompressed data is not CSV text: it looks like {inner[0]}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{src}: line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start});"
            " re-encode the file as UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DataError(f"{src}: line {line}: holds NUL bytes (UTF-16 text without a byte-order mark?);"
                        " re-encode the file as UTF-8")
    return text


def csv_header(src: str, text: str) -> list[str]:
    """The header's column names as written (stripped; empty string where a name is empty)."""
    try:
        row = pd.read_csv(io.StringIO(text), header=None, nrows=1, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{src}: malformed CSV header: {exc}") from None
    return [str(v).strip() for v in row.iloc[0].tolist()] if len(row) else []


def duplicated_names(names: list[str]) -> str | None:
    """``'timestamp' (columns 4 and 5)`` for every name given more than once (empty names aside), or None."""
    where: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if n:
            where.setdefault(n, []).append(i + 1)
    dups = [f"{n!r} (columns {', '.join(map(str, pos[:-1]))} and {pos[-1]})" for n, pos in where.items() if len(pos) > 1]
    return ", ".join(dups) if dups else None


def _duplicate_header_error(src: str, names: list[str]) -> None:
    dups = duplicated_names(names)
    if dups:
        raise DataError(f"{src}: duplicated column name(s) in the header: {dups}; each column must appear"
                        " once (a second copy would silently lose its values)")


_TOKENIZING = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _read_csv(src: str, text: str) -> pd.DataFrame:
    """The CSV as text columns, with its header checked: unique names, one value per name."""
    names = csv_header(src, text)
    _duplicate_header_error(src, names)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        m = _TOKENIZING.search(str(exc))
        if m:
            expected, line, saw = m.groups()
            raise DataError(f"{src}: line {line} has {saw} fields, the header has {expected}"
                            " (a value holding a comma must be in double quotes)") from None
        raise DataError(f"{src}: malformed CSV: {exc}") from None
    if len(df) and not isinstance(df.index, pd.RangeIndex):  # pandas took the first column as an index: rows are longer
        raise DataError(f"{src}: line 2 has {len(names) + 1} fields, the header has {len(names)}: every row has"
                        " one more value than the header has names (a missing header name, or an unquoted comma?)")
    unnamed = [i for i, n in enumerate(names) if not n and i < len(df.columns)]
    for i in unnamed:
        col = df.iloc[:, i]
        if col.notna().any():
            row = int(np.flatnonzero(col.notna().to_numpy())[0])
            no_header = "" if set(names) & _KNOWN_NAMES else f"; {NO_HEADER}"
            raise DataError(f"{src}: column {i + 1} has no name in the header, but row {row + 1} (line {row + 2})"
                            f" holds {col.iloc[row]!r} in it: give the column a name{no_header}")
    if unnamed:  # empty and nameless: a trailing delimiter on every line
        df = df.drop(columns=[df.columns[i] for i in unnamed])
    df.columns = [names[i] for i in range(len(names)) if i not in unnamed][: len(df.columns)]
    return df


def _parquet_names(path: Path) -> list[str]:
    """The column names in a Parquet file's schema (stripped; empty when the schema is unreadable)."""
    import pyarrow.parquet as pq

    try:
        return [str(n).strip() for n in pq.read_schema(path).names]
    except Exception:  # noqa: BLE001 - not Parquet at all: the caller reports that
        return []


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally .gz/.xz) or Parquet file as-is; refuse empty or non-UTF-8 files.

    CSV values are read as text (nothing guessed); empty cells become missing values. Column
    names are stripped of surrounding whitespace and must be unique; a nameless column is
    dropped when it holds no value (a trailing delimiter), else refused. The frame carries
    ``attrs['source']`` and ``attrs['is_csv']`` so later checks can name the file.
    """
    path = check_input_path(path)
    src = str(path)
    name = path.name.lower()
    if path.stat().st_size == 0:
        raise DataError(f"{src}: file is empty")
    is_csv = ".csv" in name
    if is_csv:
        text = csv_text(path)
        if not text.strip():
            raise DataError(f"{src}: file is empty")
        df = _read_csv(src, text)
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            _duplicate_header_error(src, _parquet_names(path))
            hint = _misnamed(src, _head(path), "a Parquet file")
            raise DataError(hint or f"{src}: not a readable Parquet file: {exc}") from None
        df.columns = [str(c).strip() for c in df.columns]
        _duplicate_header_error(src, list(df.columns))
    df.attrs["source"] = src
    df.attrs["is_csv"] = is_csv
    if df.empty:
        raise DataError(f"{src}: has a header but no rows")
    return df


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def column_hint(columns: list[str], missing: list[str]) -> str:
    """Why required columns may look missing: a ';' / tab / '|' separated file, a renamed
    column (``UserID`` for ``user_id``) or no header line at all. Empty when nothing fits."""
    cols = [str(c) for c in columns]
    if len(cols) == 1:
        for sep, shown in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if sep in cols[0]:
                return (f"; the header is one column {cols[0]!r}: the file looks {shown}-separated, and coldrec"
                        " reads comma-separated CSV (save it with ',' as the delimiter)")
    near = [f"{c!r} for {m!r}" for m in missing for c in cols if c != m and _norm(c) == _norm(m)]
    if near:
        return f"; names are exact (lower case, underscores): rename {', '.join(near)}"
    if not set(cols) & _KNOWN_NAMES:
        return f"; {NO_HEADER}"
    return ""


def _require_columns(df: pd.DataFrame, required: list[str], table: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(df.columns)
        raise DataError(
            f"{df.attrs.get('source', table)}: missing required column(s) {', '.join(repr(m) for m in missing)}"
            f" for the {table} table (found: {have}){column_hint(list(df.columns), missing)}"
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
    """Ids as clean strings (:func:`coldrec.data.coercion.ids`); blanks and null markers (``NULL`` ...)
    are errors unless allowed."""
    ids, bad = coercion.ids(df[column])
    missing = ids.isna() & ~bad
    if allow_missing is not None:
        missing &= ~allow_missing
    raw = df[column]

    def message(i: int) -> str:
        v = raw.iloc[i]
        if missing.iloc[i]:
            return f"empty id ({v.strip()!r} is read as a missing id)" if isinstance(v, str) and v.strip() else "empty id"
        why = coercion.why_not_an_id(v)
        return f"{_shown(v)} is not an id" + (f" ({why})" if why else "")

    _raise_first(df, column, bad | missing, message)
    return ids


TIME_FORMATS = "expected ISO-8601, Unix seconds (9-11 digits) or Unix milliseconds (13 digits)"


def _timestamps(df: pd.DataFrame, column: str) -> pd.Series:
    """UTC timestamps (:func:`coldrec.data.coercion.timestamps`); a missing or unparseable one is an error."""
    ts, bad = coercion.timestamps(df[column])
    raw = df[column]

    def message(i: int) -> str:
        if not bad.iloc[i]:
            return f"missing timestamp ({TIME_FORMATS})"
        why = coercion.why_not_a_time(raw.iloc[i])
        return f"cannot parse {str(raw.iloc[i])!r} as a timestamp" + (f": {why}" if why else "") + f" ({TIME_FORMATS})"

    _raise_first(df, column, ts.isna(), message)
    return ts


def _numbers(df: pd.DataFrame, column: str) -> pd.Series:
    """Floats (:func:`coldrec.data.coercion.numbers`); missing is allowed, a value that is not a number is not."""
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


def _unique_ids(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    """A catalogue or user table's ids: clean, and each once (a repeated id names its first repeat)."""
    ids = _id_column(df, column)
    dup = ids.duplicated()
    if dup.any():
        i = _first_bad(dup)
        raise DataError(f"{_where(df.attrs['source'], column, i, df.attrs['is_csv'])}: duplicate {what} id {ids.iloc[i]!r}")
    return ids


def canonical_items(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    _require_columns(df, ITEM_REQUIRED, "items")
    ids = _unique_ids(df, "item_id", "item")
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
    ids = _unique_ids(df, "user_id", "user")
    out = pd.DataFrame({"user_id": ids})
    for col in df.columns:
        if col != "user_id":
            out[col] = _text(df[col])
    out.attrs.clear()
    return out
