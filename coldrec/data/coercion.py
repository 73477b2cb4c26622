"""One value coercion for the canonical contract, shared by the strict and the lenient reader.

Why one module: the strict reader (:mod:`coldrec.data.contract`, raises on the first bad row) and the
validation's lenient reader (:mod:`coldrec.quality.lenient`, keeps every row so the expectations can
count the bad ones) must agree on what a value *is*. With two implementations they drifted
(a boolean was a number and a time to one of them and neither to the other). Here each kind of
value is coerced once; each function returns :class:`Coerced`: the coerced column (missing where
the input was missing or could not be coerced) and ``bad``, the values that were *present* but
could not be coerced. The strict reader raises on the first ``bad`` (or, where a value is
required, missing) row with its own message (:func:`why_not_an_id` / :func:`why_not_a_time`
say why a value was refused); the lenient reader keeps the missing values.

Rules (one place, both readers):

missing     NA / None / NaN / NaT, and text that is empty after stripping whitespace. Text such as
            ``'NULL'``, ``'None'``, ``'nan'`` or ``'NaT'`` is *present* (somebody wrote it, so it
            must coerce or it is bad) - except in an id column, see below.
null ids    in an id column (``user_id``, ``item_id``) the text markers :data:`NULL_TOKENS`
            (``NULL``, ``None``, ``NaN``, ``NaT``, ``NA``, ``N/A``, ``#N/A``, ``<NA>``, ``nil``; any
            case, whitespace around them ignored) are *missing* ids, not one user or item with that
            name: databases and pandas write them for an empty id. A missing required id is then
            the usual "empty id" error / ``*.not_null`` expectation. Text columns (titles, queries,
            attributes) keep these words as written.
booleans    a boolean (bool dtype, or a ``bool`` / ``numpy.bool_`` value in an object column) is
            never an id, a timestamp or a number: it is present and bad. Text columns write it as
            ``'True'`` / ``'False'``; the *text* ``'true'`` is text (a valid id, a bad number).
ids         ``str``, stripped, so an id joins whatever the file's type: an integer column (int64
            Parquet), its float form and the text ``'17850'`` all give ``'17850'``. A float that is
            a whole number is written as an integer (``'17850'``, not ``'17850.0'``: Parquet and
            pandas store integer ids with missing values as floats, and write them to CSV as
            ``17850.0``), and so is *text* of that shape (digits, a point and only zeros:
            ``'17850.0'`` -> ``'17850'``); other floats as Python writes them (``'1.5'``). Bad: an
            infinite float, and a float whose magnitude exceeds 2**53 (``1e20``: above 2**53 a
            float no longer holds every integer, so the id has lost digits - store such ids as
            text or int64). Other text is kept as written (``'007'`` stays ``'007'``).
text        ``str``, stripped; never bad.
labels      text, lower-cased (event types; the allowed set is the caller's business).
timestamps  ``datetime64[ns, UTC]``. datetime columns: naive = UTC, aware ones converted. Numeric
            columns: Unix seconds, except 13-digit values (10**12 <= x < 10**13), which are Unix
            *milliseconds* (what Java / JavaScript write: ``1709287200123``). Text: 9-11 digits
            (optional fraction) are Unix seconds, 13 digits (optional fraction) Unix milliseconds;
            any other text is ISO-8601 (naive = UTC, offsets converted) and must begin with a
            four-digit year, so ``'now'`` / ``'today'`` are bad rather than the wall clock. Bad:
            a negative Unix time (before 1970: usually a sentinel such as -1), 12 or 14+ digits
            (neither seconds nor milliseconds: microseconds and nanoseconds are not guessed), a
            time outside pandas' range 1677-09-21 .. 2262-04-11 (``'9999-12-31'``,
            ``'99999999999'``, an infinite float). Values of an object column are read as the
            text they write (a Python int ``17850`` there is not 9-11 digits, so it is bad; in an
            integer column it is Unix seconds).
numbers     ``float64``. Numeric columns as they are; text must be a decimal number (sign,
            digits, optional point and exponent, whitespace around it): :data:`NUMBER`, the same
            pattern the suites' ``*.numeric`` expectations apply. Infinite and NaN values
            (``'inf'``, ``'NaN'``, ``float('inf')``) are bad.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

EPOCH = r"\d{9,11}(\.\d+)?"  # Unix seconds, as text
EPOCH_MS = r"\d{13}(\.\d+)?"  # Unix milliseconds, as text
MS_MIN, MS_MAX = 10**12, 10**13  # a numeric time in [MS_MIN, MS_MAX) is in milliseconds (13 digits)
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"  # = expectations/*.json "*.numeric"
_YEAR_FIRST = r"\d{4}"
_WHOLE_TEXT = r"-?\d+\.0+"  # an id written from a float: '17850.0'
ID_FLOAT_MAX = 2**53  # above this a float does not hold every integer: an id stored so has lost digits
NULL_TOKENS: frozenset[str] = frozenset({"null", "none", "nan", "nat", "na", "n/a", "#n/a", "<na>", "nil"})
"""Lower-cased text that marks a missing *id* (compare stripped, case-insensitively)."""
TIME_RANGE = "1677-09-21 .. 2262-04-11"


class Coerced(NamedTuple):
    """A coerced column and the mask of values that were present but could not be coerced."""

    column: pd.Series
    bad: pd.Series


def _none_bad(col: pd.Series) -> pd.Series:
    return pd.Series(False, index=col.index, dtype=bool)


def _stripped(col: pd.Series) -> pd.Series:
    """Every value as stripped text (``pd.StringDtype``; missing stays missing)."""
    return col.astype("string").str.strip()


def _or_none(text: pd.Series) -> pd.Series:
    """Stripped text as an object column of ``str``, blanks and missing as ``None``."""
    return text.astype(object).where(text.notna() & (text != ""), None)


def null_token(col: pd.Series) -> pd.Series:
    """Where a value is text in :data:`NULL_TOKENS` (a missing id)."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        return _none_bad(col)
    txt = col.map(lambda v: v.strip().lower() if isinstance(v, str) else None)
    return txt.isin(NULL_TOKENS).astype(bool)


def present(col: pd.Series, ids: bool = False) -> pd.Series:
    """Where a value was given: not missing and, as text, not blank (``ids``: nor a null marker)."""
    given = (col.notna() & (_stripped(col).fillna("") != "")).astype(bool)
    return (given & ~null_token(col)).astype(bool) if ids else given


def text(col: pd.Series) -> Coerced:
    """Stripped ``str`` (blank -> None); never bad. Also the "value as written" of a number."""
    return Coerced(_or_none(_stripped(col)), _none_bad(col))


def labels(col: pd.Series) -> Coerced:
    """Stripped, lower-cased ``str`` (blank -> None); never bad (which labels are allowed is the caller's rule)."""
    return Coerced(_or_none(_stripped(col).str.lower()), _none_bad(col))


_NOT_AN_ID = object()


def _object_id(v: object) -> object:
    """One value of an object column, ready to be written as an id (``_NOT_AN_ID``: bad)."""
    if isinstance(v, (bool, np.bool_)):
        return _NOT_AN_ID
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if np.isnan(x):
            return None
        if not np.isfinite(x) or abs(x) > ID_FLOAT_MAX:
            return _NOT_AN_ID
        if x == round(x):
            return int(x)
    return v


def ids(col: pd.Series) -> Coerced:
    """Ids as ``str`` (object column, None where missing or a null marker); bad: booleans,
    infinite floats and floats too large to hold an exact integer."""
    if pd.api.types.is_bool_dtype(col):
        return Coerced(pd.Series([None] * len(col), index=col.index, dtype=object), col.notna().astype(bool))
    bad = _none_bad(col)
    if pd.api.types.is_float_dtype(col):
        f = col.astype("float64")
        bad = (f.notna() & ~(np.isfinite(f) & (f.abs() <= ID_FLOAT_MAX))).astype(bool)
        whole = (~bad & (f == f.round())).astype(bool)
        written = col.astype("string")
        written[whole] = f[whole].astype("int64").astype("string")
        col = written.where(~bad)
    elif col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        col = col.map(_object_id)
        bad = col.map(lambda v: v is _NOT_AN_ID).astype(bool)
        col = col.where(~bad, None)
    txt = _stripped(col)
    whole_text = txt.str.fullmatch(_WHOLE_TEXT).fillna(False).astype(bool)
    if whole_text.any():
        txt[whole_text] = txt[whole_text].map(lambda v: str(int(v.split(".", 1)[0])))
    txt = txt.where(~txt.str.lower().isin(NULL_TOKENS).fillna(False).astype(bool))
    return Coerced(_or_none(txt), bad)


def why_not_an_id(v: object) -> str | None:
    """Why :func:`ids` refused ``v`` (for the strict reader's message)."""
    if isinstance(v, (bool, np.bool_)):
        return "a boolean is not an id"
    if isinstance(v, (float, np.floating)) and not np.isfinite(v):
        return "not a finite number"
    if isinstance(v, (float, np.floating)):
        return ("a float id beyond 2**53 has lost digits (floats do not hold every integer that large);"
                " store ids as text or integers")
    return None


def _numeric_times(col: pd.Series) -> Coerced:
    """Numeric column -> UTC times: Unix seconds, 13-digit values milliseconds; negatives bad."""
    f = col.astype("float64")
    ok = f.notna() & np.isfinite(f) & (f >= 0)
    ms = ok & (f >= MS_MIN) & (f < MS_MAX)
    secs = ok & (f < 10**11)  # 12+ digits are no time in seconds (and would overflow the conversion)
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if secs.any():
        s = col[secs] if pd.api.types.is_integer_dtype(col) else f[secs]
        out[secs] = pd.to_datetime(s, unit="s", utc=True, errors="coerce")
    if ms.any():
        m = col[ms] if pd.api.types.is_integer_dtype(col) else f[ms]
        out[ms] = pd.to_datetime(m, unit="ms", utc=True, errors="coerce")
    return Coerced(out, (col.notna() & out.isna()).astype(bool))


def timestamps(col: pd.Series) -> Coerced:
    """``datetime64[ns, UTC]`` (NaT where missing or bad); bad: see the module's rules."""
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        return Coerced(ts.astype("datetime64[ns, UTC]"), _none_bad(col))
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if pd.api.types.is_bool_dtype(col):
        return Coerced(out, col.notna().astype(bool))
    if pd.api.types.is_numeric_dtype(col):
        return _numeric_times(col)
    txt = _stripped(col)
    given = txt.notna() & (txt != "")
    epoch = (given & txt.str.fullmatch(EPOCH)).fillna(False).astype(bool)
    if epoch.any():
        out[epoch] = pd.to_datetime(txt[epoch].astype(float), unit="s", utc=True, errors="coerce")
    epoch_ms = (given & txt.str.fullmatch(EPOCH_MS)).fillna(False).astype(bool)
    if epoch_ms.any():
        out[epoch_ms] = pd.to_datetime(txt[epoch_ms].astype(float), unit="ms", utc=True, errors="coerce")
    iso = (given & ~epoch & ~epoch_ms & txt.str.match(_YEAR_FIRST)).fillna(False).astype(bool)
    if iso.any():
        out[iso] = pd.to_datetime(txt[iso], utc=True, errors="coerce", format="ISO8601")
    return Coerced(out, (given & out.isna()).fillna(False).astype(bool))


def why_not_a_time(v: object) -> str | None:
    """A hint on why :func:`timestamps` refused ``v`` (for the strict reader's message), or None."""
    if isinstance(v, (bool, np.bool_)):
        return "a boolean is not a time"
    s = str(v).strip()
    m = re.fullmatch(r"([-+]?)(\d+)(\.\d+)?", s)
    if m:
        sign, digits = m.group(1), m.group(2).lstrip("0") or "0"
        if sign == "-" and digits != "0":
            return "a negative Unix time (before 1970)"
        n = len(digits)
        if n in (16, 19):
            unit = "microseconds" if n == 16 else "nanoseconds"
            return f"{n} digits look like Unix {unit}, which are not read: convert to seconds or ISO-8601"
        if n == 12 or n > 13:
            return f"{n} digits: neither Unix seconds (9-11 digits) nor Unix milliseconds (13 digits)"
        if n in (11, 13):
            return f"outside the supported time range {TIME_RANGE}"
        return None
    y = re.match(r"(\d{4,})-", s)
    if y and not 1677 <= int(y.group(1)) <= 2262:
        return f"year {int(y.group(1))} is outside the supported time range {TIME_RANGE}"
    return None


def numbers(col: pd.Series) -> Coerced:
    """``float64`` (NaN where missing or bad); bad: booleans, NaN / infinite values and text
    not shaped like :data:`NUMBER`."""
    if pd.api.types.is_bool_dtype(col):
        return Coerced(pd.Series(np.nan, index=col.index, dtype="float64"), col.notna().astype(bool))
    if pd.api.types.is_numeric_dtype(col):
        num = pd.to_numeric(col, errors="coerce").astype("float64")
        bad = (col.notna() & ~np.isfinite(num)).astype(bool)
    else:
        txt = _stripped(col)
        given = (txt.notna() & (txt != "")).fillna(False).astype(bool)
        shaped = (given & txt.str.match(NUMBER)).fillna(False).astype(bool)
        num = pd.to_numeric(txt.where(shaped), errors="coerce").astype("float64")
        bad = (given & ~np.isfinite(num)).astype(bool)
    return Coerced(num.where(~bad), bad)
