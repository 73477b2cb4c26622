"""One value coercion for the canonical contract, shared by the strict and the lenient reader.

Why one module: the strict reader (:mod:`coldrec.schema`, raises on the first bad row) and the
gate's lenient reader (:mod:`coldrec.quality.lenient`, keeps every row so the expectations can
count the bad ones) must agree on what a value *is*. With two implementations they drifted
(a boolean was a number and a time to one of them and neither to the other). Here each kind of
value is coerced once; each function returns :class:`Coerced`: the coerced column (missing where
the input was missing or could not be coerced) and ``bad``, the values that were *present* but
could not be coerced. The strict reader raises on the first ``bad`` (or, where a value is
required, missing) row with its own message; the lenient reader keeps the missing values.

Rules (one place, both readers):

missing     NA / None / NaN / NaT, and text that is empty after stripping whitespace. Text such as
            ``'NULL'``, ``'None'``, ``'nan'`` or ``'NaT'`` is *present*: somebody wrote it, so it
            must coerce or it is bad.
booleans    a boolean (bool dtype, or a ``bool`` / ``numpy.bool_`` value in an object column) is
            never an id, a timestamp or a number: it is present and bad. Text columns write it as
            ``'True'`` / ``'False'``; the *text* ``'true'`` is text (a valid id, a bad number).
ids         ``str``, stripped. A float that is a whole number is written as an integer
            (``'17850'``, not ``'17850.0'``: Parquet and pandas store integer ids with missing
            values as floats); other floats as Python writes them (``'1.5'``). An infinite float
            is not an id (bad).
text        ``str``, stripped; never bad.
labels      text, lower-cased (event types; the allowed set is the caller's business).
timestamps  ``datetime64[ns, UTC]``. datetime columns: naive = UTC, aware ones converted. Numeric
            columns: Unix seconds. Text: 9-11 digits (optional fraction) are Unix seconds, any
            other text is ISO-8601 (naive = UTC, offsets converted) and must begin with a
            four-digit year, so ``'now'`` / ``'today'`` are bad rather than the wall clock. A
            time outside pandas' range (``'99999999999'``, an infinite float) is bad. Values of
            an object column are read as the text they write (a Python int ``17850`` there is
            not 9-11 digits, so it is bad; in an integer column it is Unix seconds).
numbers     ``float64``. Numeric columns as they are; text must be a decimal number (sign,
            digits, optional point and exponent, whitespace around it): :data:`NUMBER`, the same
            pattern the suites' ``*.numeric`` expectations apply. Infinite and NaN values
            (``'inf'``, ``'NaN'``, ``float('inf')``) are bad.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

EPOCH = r"\d{9,11}(\.\d+)?"
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"  # = expectations/*.json "*.numeric"
_YEAR_FIRST = r"\d{4}"


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


def present(col: pd.Series) -> pd.Series:
    """Where a value was given: not missing and, as text, not blank."""
    return (col.notna() & (_stripped(col).fillna("") != "")).astype(bool)


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
        if not np.isfinite(x):
            return _NOT_AN_ID
        if x == round(x) and abs(x) < 2**63:
            return int(x)
    return v


def ids(col: pd.Series) -> Coerced:
    """Ids as ``str`` (object column, None where missing); bad: booleans and infinite floats."""
    if pd.api.types.is_bool_dtype(col):
        return Coerced(pd.Series([None] * len(col), index=col.index, dtype=object), col.notna().astype(bool))
    bad = _none_bad(col)
    if pd.api.types.is_float_dtype(col):
        f = col.astype("float64")
        bad = (f.notna() & ~np.isfinite(f)).astype(bool)
        whole = (np.isfinite(f) & (f == f.round()) & (f.abs() < 2**63)).astype(bool)
        written = col.astype("string")
        written[whole] = f[whole].astype("int64").astype("string")
        col = written.where(~bad)
    elif col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        col = col.map(_object_id)
        bad = col.map(lambda v: v is _NOT_AN_ID).astype(bool)
        col = col.where(~bad, None)
    out = _or_none(_stripped(col))
    return Coerced(out, bad)


def timestamps(col: pd.Series) -> Coerced:
    """``datetime64[ns, UTC]`` (NaT where missing or bad); bad: see the module's rules."""
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        return Coerced(ts.astype("datetime64[ns, UTC]"), _none_bad(col))
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if pd.api.types.is_bool_dtype(col):
        return Coerced(out, col.notna().astype(bool))
    if pd.api.types.is_numeric_dtype(col):
        secs = col.where(np.isfinite(col.astype("float64"))) if pd.api.types.is_float_dtype(col) else col
        out = pd.to_datetime(secs, unit="s", utc=True, errors="coerce").astype("datetime64[ns, UTC]")
        return Coerced(out, (col.notna() & out.isna()).astype(bool))
    txt = _stripped(col)
    given = txt.notna() & (txt != "")
    epoch = (given & txt.str.fullmatch(EPOCH)).fillna(False).astype(bool)
    if epoch.any():
        out[epoch] = pd.to_datetime(txt[epoch].astype(float), unit="s", utc=True, errors="coerce")
    iso = (given & ~epoch & txt.str.match(_YEAR_FIRST)).fillna(False).astype(bool)
    if iso.any():
        out[iso] = pd.to_datetime(txt[iso], utc=True, errors="coerce", format="ISO8601")
    return Coerced(out, (given & out.isna()).fillna(False).astype(bool))


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
