"""The data validation on small generated data: suites, severities, every kind of failure,
outputs (result.json, report.html, quarantine, accepted baseline) and the CLI's exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from coldrec.core.errors import ColdrecError, ConfigError, DataError
from coldrec.data.contract import EVENT_TYPES
from coldrec.quality import validate, validate_files, validate_source
from coldrec.quality.suites import TABLES, Skip, load_specs, parameters, quality_params, resolve_run_date, suites_dir
from tests.conftest import make_events, make_items, params_with

RUN = "2024-02-11"  # make_events() spans 2024-01-01 .. 2024-02-10
P = params_with({"quality": {"events": {"min_distinct_users": 2}}})  # six users in the generated data

CRITICAL_BY_DEFAULT = {
    "events.columns", "events.not_empty", "events.user_id.not_null", "events.item_id.not_null",
    "events.event_type.allowed", "events.timestamp.parseable", "events.value.numeric", "events.timestamp.not_future",
    "events.item_id.in_catalogue", "events.duplicates.massive",
    "items.columns", "items.not_empty", "items.item_id.not_null", "items.item_id.unique", "items.price.numeric",
    "users.columns", "users.not_empty", "users.user_id.not_null", "users.user_id.unique",
}


def _files(tmp_path: Path, events: pd.DataFrame | None = None, items: pd.DataFrame | None = None,
           users: pd.DataFrame | None = None, fmt: str = "csv") -> dict[str, Path]:
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    out = {}
    for name, df in (("events", make_events() if events is None else events),
                     ("items", make_items() if items is None else items), ("users", users)):
        if df is None:
            continue
        path = d / f"{name}.{fmt}"
        df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
        out[name] = path
    return out


def _run(tmp_path: Path, params: dict | None = None, run_date: str = RUN, out: str = "out", **tables):
    f = _files(tmp_path, **tables)
    return validate_files(f["events"], f["items"], f.get("users"), out_dir=tmp_path / out,
                          params=P if params is None else params, run_date=run_date)


def _failed(result) -> dict[str, str]:
    return {o.name: o.severity for o in result.outcomes if o.failed}


# -- suites and parameters ----------------------------------------------------------------------

def test_suites_are_gx_1x_suites_with_names_and_severities():
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    specs = load_specs()
    for table in TABLES:
        doc = json.loads((suites_dir() / f"{table}.json").read_text())
        exps = [ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"], severity=e["severity"])
                .to_domain_obj() for e in doc["expectations"]]
        suite = gx.ExpectationSuite(name=table, expectations=exps)
        assert len(suite.expectations) == len(doc["expectations"]) == len(specs[table])
    names = [s.name for t in TABLES for s in specs[t]]
    assert len(names) == len(set(names))
    assert {s.name for t in TABLES for s in specs[t] if s.severity == "critical"} == CRITICAL_BY_DEFAULT
    allowed = next(s for s in specs["events"] if s.name == "events.event_type.allowed")
    assert allowed.kwargs["value_set"] == list(EVENT_TYPES)
    values = parameters(quality_params(P), resolve_run_date(RUN), None)
    assert {k for t in TABLES for s in specs[t] for k in s.parameter_keys()} <= set(values)


def test_params_yaml_quality_section_loads_and_typos_are_errors():
    from coldrec.core.config import load_params

    q = quality_params(load_params())
    assert q["events"]["max_missing_item_share"] == 0.05 and q["severity"] == {}
    with pytest.raises(ConfigError, match="quality.events.fresh_days"):
        params_with({"quality": {"events": {"fresh_days": 3}}})
    with pytest.raises(ConfigError, match="unknown expectation"):
        load_specs(severity={"events.no_such_check": "warning"})
    with pytest.raises(ConfigError, match="severity must be one of"):
        load_specs(severity={"events.freshness": "fatal"})
    assert next(s for s in load_specs(severity={"events.freshness": "critical"})["events"]
                if s.name == "events.freshness").severity == "critical"


def test_run_date_resolution():
    assert resolve_run_date("2011-12-10") == pd.Timestamp("2011-12-10 23:59:59.999999", tz="UTC")
    assert resolve_run_date("2011-12-10T08:00:00") == pd.Timestamp("2011-12-10 08:00", tz="UTC")
    assert resolve_run_date("2011-12-10T08:00:00+01:00") == pd.Timestamp("2011-12-10 07:00", tz="UTC")
    assert abs(resolve_run_date(None) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)
    with pytest.raises(ColdrecError, match="not a date"):
        resolve_run_date("next tuesday")


def test_row_count_band_is_skipped_without_a_previous_batch():
    v = parameters(quality_params(P), resolve_run_date(RUN), None)
    assert isinstance(v["events_rows_min"], Skip) and "no previous accepted batch" in v["events_rows_min"].reason
    v = parameters(quality_params(P), resolve_run_date(RUN), {"rows": {"events": 100}})
    assert (v["events_rows_min"], v["events_rows_max"]) == (50, 150)


# -- verdicts ------------------------------------------------------------------------------------

def test_clean_files_pass_and_outputs_are_written(tmp_path):
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(6)], "country": ["UK", "FR"] * 3})
    r = _run(tmp_path, users=users)
    assert r.status == "passed", _failed(r)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [".coldrec", "accepted.json", "report.html", "result.json"]
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "passed" and doc["success"] and doc["counts"]["critical_failed"] == 0
    assert doc["tables"]["events"]["rows"] == 49 and doc["tables"]["users"]["rows"] == 6
    e = {x["name"]: x for x in doc["expectations"]}
    assert e["events.user_id.in_users"]["status"] == "passed"
    assert e["events.row_count.change"]["status"] == "skipped"
    assert set(e["events.timestamp.not_future"]) >= {"name", "table", "severity", "status", "unexpected_count", "samples"}
    assert json.loads((out / "accepted.json").read_text())["rows"] == {"events": 49, "items": 8, "users": 6}
    html = (out / "report.html").read_text()
    assert "events.timestamp.not_future" in html and "passed" in html
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # atomic: no temp dirs left


def test_in_memory_canonical_dataset(tmp_path):
    from coldrec.data.dataset import from_files

    f = _files(tmp_path)
    r = validate(from_files(f["events"], f["items"], name="mem"), out_dir=tmp_path / "out", params=P, run_date=RUN)
    assert r.status == "passed", _failed(r)
    assert json.loads((tmp_path / "out" / "accepted.json").read_text())["fingerprint"]


def test_structural_breaks_are_named_critical_failures_with_samples(tmp_path):
    ev = make_events()
    ev.loc[3, "timestamp"] = "yesterday"
    ev.loc[5, "event_type"] = "teleport"
    ev.loc[7, "user_id"] = ""
    ev.loc[9, "value"] = "two"
    ev.loc[11, "timestamp"] = "2031-01-01T00:00:00"
    ev.loc[13, "item_id"] = ""  # a purchase without an item (search events may lack one)
    r = _run(tmp_path, events=ev)
    assert r.status == "failed" and not r.accepted
    expected = {"events.timestamp.parseable": 4, "events.event_type.allowed": 6, "events.user_id.not_null": 8,
                "events.value.numeric": 10, "events.timestamp.not_future": 12, "events.item_id.not_null": 14}
    assert {n for n, s in _failed(r).items() if s == "critical"} == set(expected)
    for name, row in expected.items():
        o = r.outcome(name)
        assert o.severity == "critical" and o.unexpected_count == 1, name
        assert o.samples[0]["_row"] == row and o.samples[0]["_line"] == row + 1, name
    assert r.outcome("events.timestamp.parseable").samples[0]["timestamp"] == "yesterday"
    assert r.outcome("events.value.numeric").samples[0]["value"] == "two"
    html = (tmp_path / "out" / "report.html").read_text()
    for name in expected:
        assert name in html
    assert "teleport" in html and "yesterday" in html
    assert not (tmp_path / "out" / "accepted.json").exists()  # nothing accepted, nothing to compare with later


@pytest.mark.parametrize("content", ["", "user_id,item_id,event_type,timestamp\n"], ids=["empty", "header_only"])
def test_empty_delivery_is_critical(tmp_path, content):
    f = _files(tmp_path)
    f["events"].write_text(content)
    r = validate_files(f["events"], f["items"], out_dir=tmp_path / "out", params=P, run_date=RUN)
    assert r.status == "failed"
    assert r.outcome("events.not_empty").severity == "critical" and r.outcome("events.not_empty").failed
    assert r.outcome("events.not_empty").observed_value == 0


def test_missing_column_fails_schema_and_skips_what_needs_it(tmp_path):
    r = _run(tmp_path, events=make_events().drop(columns=["timestamp"]))
    cols = r.outcome("events.columns")
    assert cols.failed and cols.severity == "critical" and "missing column(s): timestamp" in cols.details
    assert "value_raw" not in cols.observed_value  # the columns as delivered
    skipped = r.outcome("events.timestamp.not_future")
    assert skipped.status == "skipped" and "'timestamp' is missing" in skipped.details


def test_wrong_column_types_in_parquet(tmp_path):
    ev = make_events()
    ev["timestamp"] = [i % 2 == 0 for i in range(len(ev))]  # booleans are not times
    ev["value"] = ev["value"].replace({"1": "one"})
    f = _files(tmp_path, events=ev, fmt="parquet")
    r = validate_files(f["events"], f["items"], out_dir=tmp_path / "out", params=P, run_date=RUN)
    assert r.outcome("events.timestamp.parseable").unexpected_count == len(ev)
    assert r.outcome("events.value.numeric").unexpected_count == 24
    assert {"events.timestamp.parseable", "events.value.numeric"} <= set(_failed(r)) and r.status == "failed"


def test_unreadable_file_is_critical(tmp_path):
    f = _files(tmp_path)
    f["events"].write_bytes("user_id,item_id,event_type,timestamp\nu1,caf\xe9,view,2024-01-01\n".encode("latin-1"))
    r = validate_files(f["events"], f["items"], out_dir=tmp_path / "out", params=P, run_date=RUN)
    o = r.outcome("events.readable")
    assert o.failed and o.severity == "critical" and "not valid UTF-8" in o.details
    assert r.outcome("events.not_empty").status == "skipped"


def test_row_level_warnings_pass_and_rows_go_to_quarantine(tmp_path):
    ev = make_events()
    ev.loc[0, "timestamp"] = "1990-05-01T00:00:00"  # before the expected window
    ev.loc[2, "item_id"] = "i999"  # 1 of 48 item events not in the catalogue (< 5%)
    ev.loc[5, "value"] = "0"  # a purchase of nothing
    ev.loc[6, ["event_type", "value"]] = ["rate", "7"]  # a rating out of range
    items = make_items()
    items.loc[1, "price"] = -3.0
    r = _run(tmp_path, events=ev, items=items)
    assert r.status == "passed_with_warnings", _failed(r)
    assert _failed(r) == {"events.timestamp.in_window": "warning", "events.item_id.in_catalogue_all": "warning",
                          "events.value.range.purchase": "warning", "events.value.range.rate": "warning",
                          "items.price.non_negative": "warning"}
    assert r.outcome("events.item_id.in_catalogue").status == "passed"  # the critical share is not reached
    q = pd.read_csv(tmp_path / "out" / "quarantine" / "events.csv", dtype=str)
    assert list(q["_row"]) == ["1", "3", "6", "7"]
    assert q.set_index("_row").loc["3", "_reasons"] == "events.item_id.in_catalogue_all"
    qi = pd.read_csv(tmp_path / "out" / "quarantine" / "items.csv", dtype=str)
    assert list(qi["item_id"]) == ["i1"] and qi["_reasons"][0] == "items.price.non_negative"
    assert r.quarantine == {"events": 4, "items": 1}
    assert (tmp_path / "out" / "accepted.json").exists()  # warnings do not block acceptance


def test_items_missing_from_catalogue_above_share_is_critical(tmp_path):
    ev = make_events()
    ev.loc[ev.index[:6], "item_id"] = "ghost"  # 6 of 48 = 12.5% > 5%
    r = _run(tmp_path, events=ev)
    o = r.outcome("events.item_id.in_catalogue")
    assert o.failed and o.severity == "critical" and o.unexpected_count == 6 and r.status == "failed"
    assert o.samples[0]["item_id"] == "ghost"


def test_duplicated_delivery_and_row_count_change_against_accepted_batch(tmp_path):
    first = _run(tmp_path)
    assert first.status == "passed"
    base = json.loads((tmp_path / "out" / "accepted.json").read_text())
    doubled = pd.concat([make_events(), make_events()], ignore_index=True)
    r = _run(tmp_path, events=doubled)
    failed = _failed(r)
    assert failed["events.duplicates.massive"] == "critical" and failed["events.duplicates"] == "warning"
    assert failed["events.row_count.change"] == "warning"
    assert r.outcome("events.row_count.change").observed_value == 98
    assert r.outcome("events.row_count.change").parameters == {"min_value": 24, "max_value": 74}
    assert r.status == "failed" and r.baseline["rows"]["events"] == 49
    assert json.loads((tmp_path / "out" / "accepted.json").read_text()) == base  # the baseline is kept


def test_all_events_from_one_user(tmp_path):
    ev = make_events().assign(user_id="u0")
    r = _run(tmp_path, events=ev)
    o = r.outcome("events.user_id.distinct")
    assert o.failed and o.severity == "warning" and o.observed_value == 1 and "u0 (49)" in o.details


def test_freshness_is_relative_to_the_run_date_and_severity_can_be_raised(tmp_path):
    r = _run(tmp_path, run_date="2024-03-01")
    assert _failed(r) == {"events.freshness": "warning"} and r.status == "passed_with_warnings"
    strict = params_with({"quality": {**P["quality"], "severity": {"events.freshness": "critical", "events.user_id.distinct": "off"}}})
    r = _run(tmp_path, run_date="2024-03-01", params=strict)
    assert _failed(r) == {"events.freshness": "critical"} and r.status == "failed"
    assert r.outcome("events.user_id.distinct").status == "skipped"
    r = _run(tmp_path, run_date="2024-01-20")  # half the events are "in the future" for this run date
    assert r.outcome("events.timestamp.not_future").failed and r.status == "failed"


# -- stage entry point and CLI -------------------------------------------------------------------

def test_shipped_dataset_contract_error_becomes_a_critical_failure(tmp_path, monkeypatch, cli):
    import coldrec.data.prepare

    def broken(**kwargs):
        raise DataError("online_retail.csv.xz: column 'InvoiceDate', row 7 (line 8): cannot parse 'soon' as a timestamp")

    monkeypatch.setattr(coldrec.data.prepare, "load_source", broken)
    r = validate_source(dataset="online-retail", out_dir=tmp_path / "out", params=P)
    o = r.outcome("source.contract")
    assert r.status == "failed" and o.severity == "critical" and "cannot parse 'soon'" in o.details
    res = cli("validate", "--dataset", "online-retail", "--out", tmp_path / "cli")
    assert res.exit_code == 1 and "source.contract" in res.output
    assert json.loads((tmp_path / "cli" / "result.json").read_text())["failing"] == ["source.contract"]


def test_cli_exit_codes(cli, tmp_path):
    good = _files(tmp_path)
    res = cli("validate", "--events", good["events"], "--items", good["items"], "--out", tmp_path / "ok", "--run-date", RUN)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ok" / "result.json").exists() and (tmp_path / "ok" / "report.html").exists()

    ev = make_events()
    ev.loc[2, "user_id"] = ""
    bad = tmp_path / "bad.csv"
    ev.to_csv(bad, index=False)
    res = cli("validate", "--events", bad, "--items", good["items"], "--out", tmp_path / "bad", "--run-date", RUN)
    assert res.exit_code == 1
    assert "data validation failed" in res.output and "events.user_id.not_null" in res.output
    assert json.loads((tmp_path / "bad" / "result.json").read_text())["status"] == "failed"

    res = cli("validate", "--events", tmp_path / "nope.csv", "--items", good["items"], "--out", tmp_path / "x")
    assert res.exit_code == 2 and "file not found" in res.output
    res = cli("validate", "--events", good["events"])
    assert res.exit_code == 2 and "--events and --items go together" in res.output
    res = cli("validate", "--events", good["events"], "--items", good["items"], "--run-date", "someday", "--out", tmp_path / "y")
    assert res.exit_code == 2 and "not a date" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_refuses_to_replace_a_directory_it_does_not_own(tmp_path):
    f = _files(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ColdrecError, match=r"mine: exists and was not written by coldrec \(holds notes.txt\)"):
        validate_files(f["events"], f["items"], out_dir=mine, params=P, run_date=RUN)
    assert (mine / "notes.txt").read_text() == "keep me"


# -- malformed inputs: the gate counts what the strict reader refuses (issue 15) -----------------

def _ms(ev: pd.DataFrame) -> pd.DataFrame:
    """The same events with Unix-millisecond timestamps (13 digits)."""
    ts = pd.to_datetime(ev["timestamp"], utc=True)
    return ev.assign(timestamp=(ts.astype("int64") // 10**6).astype(str))


def _set(column: str, rows: list[int], value: str):
    def f(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.loc[rows, column] = value
        return df
    return f


@pytest.mark.parametrize("events, items, failing", [
    (_set("user_id", [1, 4, 9], "NULL"), None, {"events.user_id.not_null": 3}),
    (_set("item_id", [2], " none "), None, {"events.item_id.not_null": 1}),
    (None, _set("item_id", [3], "N/A"), {"items.item_id.not_null": 1}),
    (_set("timestamp", [5], "170928720012"), None, {"events.timestamp.parseable": 1}),
    (_set("timestamp", [6, 7], "-86400"), None, {"events.timestamp.parseable": 2}),
    (_set("timestamp", [8], "9999-12-31"), None, {"events.timestamp.parseable": 1}),
    (_set("value", [3], "inf"), None, {"events.value.numeric": 1}),
    (None, _set("price", [0], "Infinity"), {"items.price.numeric": 1}),
    (_ms, None, {}),  # 13 digits are milliseconds: no unparseable time, no false "massive duplicates"
], ids=["NULL-user", "none-item", "NA-catalogue-id", "12-digit-time", "negative-epoch", "year-9999", "inf-value",
        "inf-price", "millisecond-times"])
def test_malformed_values_are_counted_by_their_expectation(tmp_path, events, items, failing):
    ev = make_events() if events is None else events(make_events())
    it = make_items() if items is None else items(make_items().astype({"price": object}))
    r = _run(tmp_path, events=ev, items=it)
    counted = {o.name: o.unexpected_count for o in r.outcomes if o.failed and o.severity == "critical"}
    assert counted == failing
    assert r.status == ("failed" if failing else "passed"), _failed(r)


@pytest.mark.parametrize("content, says", [
    (b"user_id,item_id,event_type,timestamp,timestamp\nu1,i1,view,2024-01-01,2024-01-02\n",
     "duplicated column name(s) in the header: 'timestamp' (columns 4 and 5)"),
    (b"user_id,item_id,event_type,timestamp,timestamp\n", "duplicated column name(s) in the header: 'timestamp'"),
    (None, "not CSV text: looks like gzip-compressed data: name it .csv.gz"),
    (b"user_id,item_id,event_type,timestamp\nu1,i1,view,2024-01-01,x\nu2,i2,view,2024-01-02,y\n",
     "line 2 has 5 fields, the header has 4"),
], ids=["duplicated-header", "duplicated-header-only", "gzip-named-csv", "rows-longer-than-header"])
def test_unreadable_tables_name_the_reason(tmp_path, content, says):
    import gzip

    f = _files(tmp_path)
    original = f["events"].read_bytes()
    f["events"].write_bytes(gzip.compress(original) if content is None else content)
    before = f["events"].read_bytes()
    r = validate_files(f["events"], f["items"], out_dir=tmp_path / "out", params=P, run_date=RUN)
    o = r.outcome("events.readable")
    assert r.status == "failed" and o.failed and o.severity == "critical" and says in o.details
    assert f["events"].read_bytes() == before


def test_wrong_delimiter_is_explained_in_the_columns_check(tmp_path):
    f = _files(tmp_path)
    make_events().to_csv(f["events"], index=False, sep=";")
    o = _run_files(tmp_path, f).outcome("events.columns")
    assert o.failed and "missing column(s): " in o.details and "looks ';'-separated" in o.details


def _run_files(tmp_path, f):
    return validate_files(f["events"], f["items"], out_dir=tmp_path / "out", params=P, run_date=RUN)


def test_duplicates_count_the_repeats_not_the_originals(tmp_path):
    ev = make_events()
    ev = pd.concat([ev, ev.iloc[[3]], ev.iloc[[3]]], ignore_index=True)  # one event three times: 2 repeats
    r = _run(tmp_path, events=ev)
    o = r.outcome("events.duplicates")
    assert o.failed and o.severity == "warning" and r.status == "passed_with_warnings"
    assert (o.unexpected_count, o.element_count, o.unexpected_percent) == (2, 51, round(100 * 2 / 51, 4))
    assert [s["_row"] for s in o.samples] == [50, 51]  # the copies, not the first occurrence
    assert "2 of 51 events (3.92%) repeat an earlier event's" in o.details and "row 50 repeats row 4" in o.details
    assert r.outcome("events.duplicates.massive").status == "passed"
    q = pd.read_csv(tmp_path / "out" / "quarantine" / "events.csv", dtype=str)
    assert list(q["_row"]) == ["50", "51"]  # the first occurrence stays in the batch, unflagged


def test_int64_parquet_events_join_a_csv_catalogue(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    ev = pd.DataFrame({"user_id": [17850, 13047, 12583], "item_id": pd.Series([85123, 71053, 85123], dtype="int64"),
                       "event_type": ["view", "purchase", "view"],
                       "timestamp": [1704067200, 1704070800, 1704074400], "value": [None, 2.0, None]})
    ev.to_parquet(d / "events.parquet", index=False)
    (d / "items.csv").write_text("item_id,title\n85123,mug\n71053.0,lamp\n")
    params = params_with({"quality": {"events": {"min_distinct_users": 2}}})
    r = validate_files(d / "events.parquet", d / "items.csv", out_dir=tmp_path / "out", params=params, run_date=RUN)
    assert r.outcome("events.item_id.in_catalogue").status == "passed"
    assert r.outcome("events.item_id.in_catalogue_all").status == "passed"
