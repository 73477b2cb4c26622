"""One coercion, two readers: the same inputs through the strict contract (coldrec.data.contract) and the
gate's lenient reader (coldrec.quality.lenient) give the same values, and the strict reader
raises exactly where the lenient one turns a *present* value into a missing one."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from coldrec.core.errors import DataError
from coldrec.data import coercion
from coldrec.data.contract import canonical_events
from coldrec.quality.lenient import RawTable, typed
from coldrec.quality.suites import suites_dir

BAD = "<bad>"  # present but cannot be coerced: strict raises, lenient gives missing
MISSING = "<missing>"  # not given: lenient gives missing; strict raises only where a value is required
UTC = "UTC"
T0 = pd.Timestamp("2024-03-01 10:00", tz=UTC)  # = Unix 1709287200
T17850 = pd.Timestamp("1970-01-01 04:57:30", tz=UTC)  # = Unix 17850

# kind -> (column of the events table it is read through, strict message when bad, when missing)
KINDS = {
    "id": ("user_id", r"is not an id", r"empty id"),
    "timestamp": ("timestamp", r"cannot parse .* as a timestamp", r"missing timestamp"),
    "number": ("value", r"is not a number", None),  # value is optional
    "text": ("query", None, None),  # text never fails; query is optional
}

# one value in an object column (as an in-memory frame or a Parquet object column delivers it)
#   name                         value                                  id              timestamp             number          text
CASES = [
    ("int epoch", 1709287200, "1709287200", T0, 1709287200.0, "1709287200"),
    ("int small", 17850, "17850", BAD, 17850.0, "17850"),
    ("int-valued float", 17850.0, "17850", BAD, 17850.0, "17850.0"),
    ("float", 1.5, "1.5", BAD, 1.5, "1.5"),
    ("float epoch", 1709287200.0, "1709287200", T0, 1709287200.0, "1709287200.0"),
    ("bool True", True, BAD, BAD, BAD, "True"),
    ("bool False", False, BAD, BAD, BAD, "False"),
    ("numpy bool", np.True_, BAD, BAD, BAD, "True"),
    ("None", None, MISSING, MISSING, MISSING, MISSING),
    ("NaN", np.nan, MISSING, MISSING, MISSING, MISSING),
    ("blank", "", MISSING, MISSING, MISSING, MISSING),
    ("whitespace", "  \t ", MISSING, MISSING, MISSING, MISSING),
    ("padded text", " x ", "x", BAD, BAD, "x"),
    # null markers (coercion.NULL_TOKENS) are missing *ids*; elsewhere they are text as written
    ("NULL text", "NULL", MISSING, BAD, BAD, "NULL"),
    ("None text", "None", MISSING, BAD, BAD, "None"),
    ("nan text", "nan", MISSING, BAD, BAD, "nan"),
    ("NaT text", "NaT", MISSING, BAD, BAD, "NaT"),
    ("null text", " null ", MISSING, BAD, BAD, "null"),
    ("NA text", "NA", MISSING, BAD, BAD, "NA"),
    ("N/A text", "n/a", MISSING, BAD, BAD, "n/a"),
    ("#N/A text", "#N/A", MISSING, BAD, BAD, "#N/A"),
    ("<NA> text", "<NA>", MISSING, BAD, BAD, "<NA>"),
    ("nil text", "NIL", MISSING, BAD, BAD, "NIL"),
    ("not a marker", "NAN-7", "NAN-7", BAD, BAD, "NAN-7"),
    # an id written from a float is the integer id, as text or as a float
    ("float-written id text", "17850.0", "17850", BAD, 17850.0, "17850.0"),
    ("float-written id text, zeros", "-3.00", "-3", BAD, -3.0, "-3.00"),
    ("leading zeros kept", "007", "007", BAD, 7.0, "007"),
    ("huge float", 1e20, BAD, BAD, 1e20, "1e+20"),
    ("float at 2**53", float(2**53), "9007199254740992", BAD, float(2**53), "9007199254740992.0"),
    ("true text", "true", "true", BAD, BAD, "true"),
    ("inf text", "inf", "inf", BAD, BAD, "inf"),
    ("inf float", float("inf"), BAD, BAD, BAD, "inf"),
    ("epoch text", "1709287200", "1709287200", T0, 1709287200.0, "1709287200"),
    ("epoch text, fraction", "1709287200.5", "1709287200.5", T0 + pd.Timedelta(milliseconds=500), 1709287200.5,
     "1709287200.5"),
    ("epoch text, out of range", "99999999999", "99999999999", BAD, 99999999999.0, "99999999999"),
    ("epoch ms text", "1709287200123", "1709287200123", T0 + pd.Timedelta(milliseconds=123), 1709287200123.0,
     "1709287200123"),
    ("epoch ms text, fraction", "1709287200123.5", "1709287200123.5", T0 + pd.Timedelta(microseconds=123500),
     1709287200123.5, "1709287200123.5"),
    ("int ms", 1709287200123, "1709287200123", T0 + pd.Timedelta(milliseconds=123), 1709287200123.0, "1709287200123"),
    ("12 digits", "170928720012", "170928720012", BAD, 170928720012.0, "170928720012"),
    ("16 digits (microseconds)", "1709287200123456", "1709287200123456", BAD, 1709287200123456.0, "1709287200123456"),
    ("negative epoch text", "-86400", "-86400", BAD, -86400.0, "-86400"),
    ("year 9999", "9999-12-31", "9999-12-31", BAD, BAD, "9999-12-31"),
    ("padded number", " 3 ", "3", BAD, 3.0, "3"),
    ("exponent", "1e3", "1e3", BAD, 1000.0, "1e3"),
    ("signed", "-2.5", "-2.5", BAD, -2.5, "-2.5"),
    ("ISO naive = UTC", "2024-03-01T10:00:00", "2024-03-01T10:00:00", T0, BAD, "2024-03-01T10:00:00"),
    ("ISO date", "2024-03-01", "2024-03-01", pd.Timestamp("2024-03-01", tz=UTC), BAD, "2024-03-01"),
    ("ISO with offset", "2024-03-01T12:00:00+02:00", "2024-03-01T12:00:00+02:00", T0, BAD,
     "2024-03-01T12:00:00+02:00"),
    ("ISO Z", "2024-03-01 10:00:00Z", "2024-03-01 10:00:00Z", T0, BAD, "2024-03-01 10:00:00Z"),
    ("datetime naive", pd.Timestamp("2024-03-01 10:00"), "2024-03-01 10:00:00", T0, BAD, "2024-03-01 10:00:00"),
    ("datetime aware", pd.Timestamp("2024-03-01 11:00", tz="Europe/Paris"), "2024-03-01 11:00:00+01:00", T0, BAD,
     "2024-03-01 11:00:00+01:00"),
    ("now", "now", "now", BAD, BAD, "now"),
    ("day-first date", "31/12/2010 25:00", "31/12/2010 25:00", BAD, BAD, "31/12/2010 25:00"),
    ("garbage", "lots", "lots", BAD, BAD, "lots"),
]

# whole typed columns (as Parquet delivers them): values, then per kind the expected list
TYPED = [
    ("bool column", pd.Series([True, False]), [BAD, BAD], [BAD, BAD], [BAD, BAD], ["True", "False"]),
    ("int column", pd.Series([1709287200, 17850]), ["1709287200", "17850"], [T0, T17850], [1709287200.0, 17850.0],
     ["1709287200", "17850"]),
    ("float column, whole", pd.Series([17850.0, np.nan]), ["17850", MISSING], [T17850, MISSING], [17850.0, MISSING],
     ["17850.0", MISSING]),
    ("float column", pd.Series([1.5, np.inf]), ["1.5", BAD],
     [pd.Timestamp("1970-01-01 00:00:01.5", tz=UTC), BAD], [1.5, BAD], ["1.5", "inf"]),
    ("nullable int column", pd.Series([17850, None], dtype="Int64"), ["17850", MISSING], [T17850, MISSING],
     [17850.0, MISSING], ["17850", MISSING]),
    ("int column, ms and negative", pd.Series([1709287200123, -1]), ["1709287200123", "-1"],
     [T0 + pd.Timedelta(milliseconds=123), BAD], [1709287200123.0, -1.0], ["1709287200123", "-1"]),
    ("float column, huge", pd.Series([1e20, 1709287200123.0]), [BAD, "1709287200123"],
     [BAD, T0 + pd.Timedelta(milliseconds=123)], [1e20, 1709287200123.0], ["1e+20", "1709287200123.0"]),
    ("datetime column", pd.Series(pd.to_datetime(["2024-03-01 10:00", None])), ["2024-03-01 10:00:00", MISSING],
     [T0, MISSING], [BAD, MISSING], ["2024-03-01 10:00:00", MISSING]),
    ("string column", pd.Series([" 7 ", None], dtype="string"), ["7", MISSING], [BAD, MISSING], [7.0, MISSING],
     ["7", MISSING]),
]


def _rows() -> list[tuple[str, str, pd.Series, object]]:
    """(case id, kind, a one-row column, expected) for every case and kind."""
    out = []
    for name, value, *expected in CASES:
        for kind, exp in zip(KINDS, expected):
            out.append((f"{kind}:{name}", kind, pd.Series([value], dtype=object), exp))
    for name, col, *expected in TYPED:
        for kind, exps in zip(KINDS, expected):
            for i, exp in enumerate(exps):
                out.append((f"{kind}:{name}[{i}]", kind, col.iloc[[i]].reset_index(drop=True), exp))
    return out


ROWS = _rows()


def _events(column: str, col: pd.Series) -> pd.DataFrame:
    df = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "event_type": ["view"],
                       "timestamp": ["2024-03-01T10:00:00"], "value": ["1"], "query": ["q"]}, dtype=object)
    df[column] = col
    return df


def _strict(df: pd.DataFrame) -> pd.DataFrame | DataError:
    df = df.copy()
    df.attrs.update(source="t.parquet", is_csv=False)
    try:
        return canonical_events(df)
    except DataError as exc:
        return exc


def _missing(v: object) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


@pytest.mark.parametrize("kind, col, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_strict_and_lenient_agree(kind, col, expected):
    column, bad_message, missing_message = KINDS[kind]
    df = _events(column, col)
    given = bool(coercion.present(col, ids=kind == "id").iloc[0])
    lenient = typed(RawTable("events", "t.parquet", df))[column].iloc[0]
    lenient_bad = given and _missing(lenient)
    strict = _strict(df)

    # the rule: strict raises a coercion error exactly where lenient makes a present value missing
    coercion_error = isinstance(strict, DataError) and bad_message is not None and re.search(bad_message, str(strict))
    assert bool(coercion_error) == lenient_bad, (strict, lenient)

    # and both follow the table
    if expected == BAD:
        assert given and lenient_bad
        assert f"column '{column}', row 1" in str(strict)
    elif expected == MISSING:
        assert not given and _missing(lenient)
        if missing_message:
            assert isinstance(strict, DataError) and re.search(missing_message, str(strict))
        else:
            assert _missing(strict[column].iloc[0])
    else:
        assert lenient == expected and not _missing(lenient)
        assert not isinstance(strict, DataError), strict
        assert strict[column].iloc[0] == expected
        assert type(strict[column].iloc[0]) is type(lenient)


@pytest.mark.parametrize("kind", ["id", "timestamp", "number", "text"])
def test_coercion_functions_return_values_and_the_bad_mask(kind):
    fn = {"id": coercion.ids, "timestamp": coercion.timestamps, "number": coercion.numbers, "text": coercion.text}[kind]
    for case, k, col, expected in ROWS:
        if k != kind:
            continue
        column, bad = fn(col)
        assert bool(bad.iloc[0]) == (expected == BAD), case
        assert _missing(column.iloc[0]) == (expected in (BAD, MISSING)), case
        if expected not in (BAD, MISSING):
            assert column.iloc[0] == expected, case


def test_output_dtypes():
    assert coercion.ids(pd.Series([1.0, None])).column.dtype == object
    assert str(coercion.timestamps(pd.Series(["2024-01-01"])).column.dtype) == "datetime64[ns, UTC]"
    assert str(coercion.timestamps(pd.Series([True])).column.dtype) == "datetime64[ns, UTC]"
    assert coercion.numbers(pd.Series(["1"])).column.dtype == "float64"
    assert coercion.numbers(pd.Series([True])).column.dtype == "float64"


def test_the_number_rule_is_the_suites_numeric_expectation():
    """The gate counts bad numbers with a regex on the value as written (``*.numeric``); it must be
    the coercion's own pattern, and flag exactly the text values the coercion calls bad."""
    for table, column in (("events", "value_raw"), ("items", "price_raw")):
        doc = json.loads((suites_dir() / f"{table}.json").read_text())
        regexes = [e["kwargs"]["regex"] for e in doc["expectations"]
                   if e["meta"]["name"].endswith(".numeric") and e["kwargs"].get("column") == column]
        assert regexes == [coercion.NUMBER]
    for case, kind, col, expected in ROWS:
        written = coercion.text(col).column.iloc[0]
        if kind != "number" or written is None:
            continue
        assert (re.match(coercion.NUMBER, written) is None) == (expected == BAD), case


def test_strict_messages_name_file_column_and_row():
    df = _events("user_id", pd.Series([True], dtype=object))
    assert "t.parquet, column 'user_id', row 1: True is not an id" in str(_strict(df))
    df = _events("value", pd.Series([np.float64("inf")]))
    assert "t.parquet, column 'value', row 1: inf is not a number" in str(_strict(df))
    expected = "(expected ISO-8601, Unix seconds (9-11 digits) or Unix milliseconds (13 digits))"
    df = _events("timestamp", pd.Series(["99999999999"]))
    assert ("cannot parse '99999999999' as a timestamp: outside the supported time range 1677-09-21 .. 2262-04-11 "
            + expected) in str(_strict(df))
    for value, why in (("-86400", "a negative Unix time (before 1970)"),
                       ("170928720012", "12 digits: neither Unix seconds (9-11 digits) nor Unix milliseconds"),
                       ("1709287200123456", "16 digits look like Unix microseconds, which are not read"),
                       ("9999-12-31", "year 9999 is outside the supported time range")):
        assert f"cannot parse {value!r} as a timestamp: {why}" in str(_strict(_events("timestamp", pd.Series([value]))))
    assert "cannot parse 'lots' as a timestamp " + expected in str(_strict(_events("timestamp", pd.Series(["lots"]))))
    df = _events("user_id", pd.Series([" NULL "]))
    assert "t.parquet, column 'user_id', row 1: empty id ('NULL' is read as a missing id)" in str(_strict(df))
    df = _events("item_id", pd.Series([1e20]))
    assert "column 'item_id', row 1: 1e+20 is not an id (a float id beyond 2**53 has lost digits" in str(_strict(df))


def test_ids_join_whatever_the_column_type():
    """The same ids as int64, float (with a gap), nullable Int64, object and text all give the same strings."""
    want = ["17850", "2", None]
    for col in (pd.Series([17850.0, 2.0, np.nan]), pd.Series([17850, 2, None], dtype="Int64"),
                pd.Series([17850, 2, None], dtype=object), pd.Series(["17850", " 2 ", "NULL"]),
                pd.Series(["17850.0", "2", ""], dtype="string")):
        assert coercion.ids(col).column.tolist() == want, col
    assert coercion.ids(pd.Series([17850, 2])).column.tolist() == want[:2]
