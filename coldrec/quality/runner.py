"""Run one table's expectation suite with Great Expectations and turn GX's answer into Outcomes.

Why a module of its own: this is the only place that talks to Great Expectations (1.x, one
quiet ephemeral context per process, pandas dataframe assets), so GX is imported on the first
validation and never when the package is imported, and a change of GX's result format touches
this file only. Everything GX does not evaluate (severity ``off``, a missing column, a parameter
that cannot be set this run) is reported as ``skipped`` with the reason; an expectation GX gives
no verdict on is an ``error``, never silently dropped.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import pandas as pd

from coldrec.data.contract import column_hint
from coldrec.quality.lenient import RawTable
from coldrec.quality.references import JOINED
from coldrec.quality.results import Outcome, jsonable
from coldrec.quality.suites import TABLES, Skip, Spec

RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 20, "return_unexpected_index_query": False}

_GX: dict[str, Any] = {}


def _gx() -> Any:
    """One quiet ephemeral GX context per process, with one pandas dataframe asset per table."""
    if not _GX:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        for name in ("great_expectations", "great_expectations.data_context.types.base"):  # the latter sets INFO itself
            logging.getLogger(name).setLevel(logging.ERROR)

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = ctx.data_sources.add_pandas("coldrec")
        _GX["gx"] = gx
        _GX["batch_definitions"] = {
            t: source.add_dataframe_asset(t).add_batch_definition_whole_dataframe("batch") for t in TABLES
        }
    return _GX


def gx_version() -> str:
    import great_expectations as gx_pkg

    return gx_pkg.__version__


def _shown_parameters(spec: Spec, values: dict[str, Any]) -> dict[str, Any]:
    """The kwargs as applied, with long id lists abbreviated."""
    out: dict[str, Any] = {}
    for k, v in spec.kwargs.items():
        if isinstance(v, dict) and "$PARAMETER" in v:
            v = values.get(v["$PARAMETER"])
        if k == "row_condition" and isinstance(v, dict):
            col = v["column"]["name"]
            v = (f"{col} IS {'NULL' if v['is_null'] else 'NOT NULL'}" if v.get("type") == "nullity"
                 else f"{col} {v['operator']} {v['parameter']!r}")
        if isinstance(v, (list, tuple)) and len(v) > 12:
            v = f"<{len(v):,} values>"
        out[k] = jsonable(v)
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _samples(raw: RawTable, rows: list[int], n: int) -> list[dict[str, Any]]:
    """The first ``n`` offending rows as delivered (not as coerced), with their row / line numbers."""
    if raw.frame is None or not rows:
        return []
    out = []
    for i in rows[:n]:
        rec = {"_row": int(i) + 1}
        if raw.is_csv:
            rec["_line"] = int(i) + 2
        rec.update({str(k): jsonable(None if _isna(v) else v) for k, v in raw.frame.loc[i].items()})
        out.append(rec)
    return out


def _exception(res: Any) -> str | None:
    info = getattr(res, "exception_info", None) or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for sub in info.values():  # keyed by metric id when a metric failed
        if isinstance(sub, dict) and sub.get("raised_exception"):
            return str(sub.get("exception_message"))
    return None


def _not_runnable(spec: Spec, frame: pd.DataFrame, table: str, values: dict[str, Any]) -> str | None:
    """Why the expectation cannot be evaluated on this batch (None: it can)."""
    missing = [c for c in spec.columns() if c not in frame.columns]
    skips = [values[k] for k in spec.parameter_keys() if isinstance(values.get(k), Skip)]
    if spec.severity == "off":
        return "disabled (quality.severity: off)"
    if [c for c in missing if c not in JOINED]:
        col = next(c for c in missing if c not in JOINED)
        return f"not evaluated: column {col!r} is missing (see {table}.columns)"
    if missing:
        return f"not evaluated: {JOINED[missing[0]]}"
    if skips:
        return f"not evaluated: {skips[0].reason}"
    return None


def _repeats(frame: pd.DataFrame, n: int) -> str:
    """What the duplicates expectations' percentage is of, and the first repeat (``repeat_of``)."""
    total = len(frame)
    pct = 100.0 * n / total if total else 0.0
    text = (f"{n:,} of {total:,} events ({pct:.3g}%) repeat an earlier event's (user_id, item_id, event_type,"
            " timestamp); a group of k identical events counts k - 1")
    first = frame["repeat_of"].dropna()
    if len(first):
        text += f"; e.g. row {int(first.index[0]) + 1} repeats row {int(first.iloc[0])}"
    return text


def run_suite(table: str, specs: list[Spec], frame: pd.DataFrame, raw: RawTable, values: dict[str, Any],
              sample_rows: int) -> list[Outcome]:
    """One Outcome per spec, in suite order: ``frame`` is the typed table, ``raw`` the delivered one."""
    outcomes: dict[str, Outcome] = {}
    runnable: list[Spec] = []
    for spec in specs:
        o = Outcome(spec.name, table, spec.type, spec.severity, "skipped", spec.description,
                    parameters=_shown_parameters(spec, values))
        outcomes[spec.name] = o
        o.details = _not_runnable(spec, frame, table, values)
        if o.details is None:
            runnable.append(spec)
    if runnable:
        _evaluate(table, runnable, frame, raw, values, sample_rows, outcomes)
    return list(outcomes.values())


def _evaluate(table: str, runnable: list[Spec], frame: pd.DataFrame, raw: RawTable, values: dict[str, Any],
              sample_rows: int, outcomes: dict[str, Outcome]) -> None:
    """Validate ``frame`` against the runnable specs and fill their outcomes in place."""
    g = _gx()
    gx = g["gx"]
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.metadata_types import FailureSeverity

    suite = gx.ExpectationSuite(name=table, expectations=[
        ExpectationConfiguration(type=s.type, kwargs=s.kwargs, meta={"name": s.name},
                                 severity=FailureSeverity(s.severity)).to_domain_obj()
        for s in runnable])
    keys = {k for s in runnable for k in s.parameter_keys()}
    batch = g["batch_definitions"][table].get_batch(batch_parameters={"dataframe": frame})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = batch.validate(suite, result_format=RESULT_FORMAT,
                             expectation_parameters={k: values[k] for k in keys})
    specs = {s.name: s for s in runnable}
    spec_types = {s.name: s.type for s in runnable}
    for r in res.results:
        o = outcomes[r.expectation_config.meta["name"]]
        result = r.result or {}
        err = _exception(r)
        o.status = "error" if err else ("passed" if r.success else "failed")
        o.details = err
        o.element_count = result.get("element_count")
        o.unexpected_count = result.get("unexpected_count")
        pct = result.get("unexpected_percent")
        o.unexpected_percent = None if pct is None else round(float(pct), 4)
        observed = result.get("observed_value")
        o.observed_value = None if isinstance(observed, str) and observed == "NaT" else jsonable(observed)
        if spec_types[o.name] == "expect_table_columns_to_match_set":
            present = [] if raw.frame is None else [str(c) for c in raw.frame.columns]
            o.observed_value = present  # as delivered (not validation's helper columns)
            absent = ((result.get("details") or {}).get("mismatched") or {}).get("missing")
            if absent and not err:
                o.details = f"missing column(s): {', '.join(map(str, absent))}{column_hint(present, list(absent))}"
        if "unexpected_index_list" in result:
            o.rows = [int(i) for i in result["unexpected_index_list"]]
            if o.failed:
                o.samples = _samples(raw, o.rows, sample_rows)
        if specs[o.name].kwargs.get("column") == "repeat_of" and not err and o.unexpected_count is not None:
            o.details = _repeats(frame, o.unexpected_count)
        if o.status == "failed" and o.name.endswith("user_id.distinct"):
            top = frame["user_id"].value_counts().head(3)
            if len(top):
                o.details = "most events from: " + ", ".join(f"{u} ({n:,})" for u, n in top.items())
    answered = {r.expectation_config.meta["name"] for r in res.results}
    for s in runnable:  # never let an expectation vanish: no verdict counts as an error
        if s.name not in answered:
            outcomes[s.name].status, outcomes[s.name].details = "error", "Great Expectations returned no result"
