"""Stage ``validate``: the data-quality gate. CLI, DAG task and DVC stage all call one function.

:func:`validate_source` takes the same choice of data as every command (``--dataset NAME`` or
``--events/--items [--users]``), runs the suites of ``expectations/`` with Great Expectations
(1.x, an ephemeral context, pandas) and writes, atomically, to ``<out_dir>``:

- ``result.json``   pass/fail and, per expectation, name, table, severity, status, counts,
                    observed value, parameters and sample offending rows (machine-readable);
- ``report.html``   the same for people: every failing expectation with counts and samples;
- ``quarantine/<table>.csv``  rows failing a *row-level warning*, with the reasons (the gate
                    never edits the data: these rows are still in the batch, written aside so
                    nobody drops them silently);
- ``accepted.json`` row counts etc. of the last batch that passed; the next run compares its row
                    counts with it (``*.row_count.change``). A failed run keeps the old one.

Status: ``failed`` when any critical expectation fails (exit 1 in the CLI), else ``passed`` or
``passed_with_warnings`` (exit 0).

Structural breaks: own files are read leniently (:mod:`coldrec.quality.lenient`), so a missing
column, an unparseable timestamp, an unknown event type, a text in a number column or an empty
file each fail their own named critical expectation with counts and samples. A shipped dataset
(``--dataset``) is built by its adapter through the strict canonical loader; if that raises, the
loader's one-line message becomes the failing critical expectation ``source.contract``.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from coldrec.config import load_params, settings
from coldrec.dataset import Dataset, atomic_dir
from coldrec.errors import ColdrecError, DataError
from coldrec.quality import lenient
from coldrec.quality.suites import TABLES, Skip, Spec, load_specs, parameters, quality_params, resolve_run_date

RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 20, "return_unexpected_index_query": False}

# Left-join columns added to the events frame for referential integrity (null = not found), and
# why they can be absent.
JOINED = {
    "catalogue_item_id": "no readable catalogue (items table) to check against",
    "known_user_id": "no users table",
}


def _join_references(frames: dict[str, pd.DataFrame | None]) -> None:
    """events.catalogue_item_id / known_user_id: the id where the items / users table has it."""
    ev = frames.get("events")
    if ev is None:
        return
    for column, (table, key) in {"catalogue_item_id": ("items", "item_id"), "known_user_id": ("users", "user_id")}.items():
        ref = frames.get(table)
        if ref is not None and key in ref.columns and key in ev.columns:
            ev[column] = ev[key].where(ev[key].isin(ref[key].dropna()), None)


class QualityGateFailed(ColdrecError):
    """A critical expectation failed: the batch must not be trained on (CLI exit code 1)."""

    exit_code = 1


@dataclass
class Outcome:
    """One expectation's verdict on this batch."""

    name: str
    table: str
    type: str
    severity: str  # critical | warning | off
    status: str  # passed | failed | skipped | error
    description: str = ""
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    details: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    quarantined: int = 0
    rows: list[int] | None = field(default=None, repr=False)  # offending row indices (row-level)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["row_level"] = self.rows is not None
        return d


@dataclass
class ValidationResult:
    dataset: str
    status: str  # passed | passed_with_warnings | failed
    run_date: str
    validated_at: str
    outcomes: list[Outcome]
    tables: dict[str, dict[str, Any]]
    baseline: dict[str, Any] | None
    accepted: bool
    duration_s: float
    gx_version: str
    out_dir: Path | None = None
    quarantine: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status != "failed"

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed and o.severity == "warning"]

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        c = {"expectations": len(self.outcomes), "passed": 0, "critical_failed": len(self.critical_failures),
             "warning_failed": len(self.warnings), "skipped": 0}
        for o in self.outcomes:
            if o.status == "passed":
                c["passed"] += 1
            elif o.status == "skipped":
                c["skipped"] += 1
        return c

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "success": self.success,
            "run_date": self.run_date,
            "validated_at": self.validated_at,
            "duration_s": round(self.duration_s, 2),
            "great_expectations_version": self.gx_version,
            "counts": self.counts(),
            "tables": self.tables,
            "baseline": self.baseline,
            "accepted": self.accepted,
            "quarantine": self.quarantine,
            "failing": [o.name for o in self.outcomes if o.failed],
            "expectations": [o.to_dict() for o in self.outcomes],
        }

    def summary_line(self) -> str:
        c = self.counts()
        return (f"{self.dataset}: {self.status.upper()} - {c['passed']} passed, {c['critical_failed']} critical failed,"
                f" {c['warning_failed']} warning(s), {c['skipped']} skipped")

    def raise_if_failed(self) -> None:
        if not self.success:
            names = ", ".join(o.name for o in self.critical_failures)
            where = f" (report: {self.out_dir / 'report.html'})" if self.out_dir else ""
            raise QualityGateFailed(f"data-quality gate failed for {self.dataset}: critical {names}{where}")


# -- Great Expectations ------------------------------------------------------------------------

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


def _jsonable(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if v is pd.NaT or v is pd.NA:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


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
        out[k] = _jsonable(v)
    return out


def _samples(raw: lenient.RawTable, rows: list[int], n: int) -> list[dict[str, Any]]:
    if raw.frame is None or not rows:
        return []
    out = []
    for i in rows[:n]:
        rec = {"_row": int(i) + 1}
        if raw.is_csv:
            rec["_line"] = int(i) + 2
        rec.update({str(k): _jsonable(None if _isna(v) else v) for k, v in raw.frame.loc[i].items()})
        out.append(rec)
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _exception(res: Any) -> str | None:
    info = getattr(res, "exception_info", None) or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for sub in info.values():  # keyed by metric id when a metric failed
        if isinstance(sub, dict) and sub.get("raised_exception"):
            return str(sub.get("exception_message"))
    return None


def _run_suite(table: str, specs: list[Spec], frame: pd.DataFrame, raw: lenient.RawTable, values: dict[str, Any],
               sample_rows: int) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    runnable: list[Spec] = []
    for spec in specs:
        o = Outcome(spec.name, table, spec.type, spec.severity, "skipped", spec.description,
                    parameters=_shown_parameters(spec, values))
        outcomes[spec.name] = o
        missing = [c for c in spec.columns() if c not in frame.columns]
        skips = [values[k] for k in spec.parameter_keys() if isinstance(values.get(k), Skip)]
        if spec.severity == "off":
            o.details = "disabled (quality.severity: off)"
        elif [c for c in missing if c not in JOINED]:
            col = next(c for c in missing if c not in JOINED)
            o.details = f"not evaluated: column {col!r} is missing (see {table}.columns)"
        elif missing:
            o.details = f"not evaluated: {JOINED[missing[0]]}"
        elif skips:
            o.details = f"not evaluated: {skips[0].reason}"
        else:
            runnable.append(spec)
    if runnable:
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
            o.observed_value = None if isinstance(observed, str) and observed == "NaT" else _jsonable(observed)
            if spec_types[o.name] == "expect_table_columns_to_match_set":
                present = [] if raw.frame is None else [str(c) for c in raw.frame.columns]
                o.observed_value = present  # as delivered (not the gate's helper columns)
                absent = ((result.get("details") or {}).get("mismatched") or {}).get("missing")
                if absent and not err:
                    o.details = f"missing column(s): {', '.join(map(str, absent))}"
            if "unexpected_index_list" in result:
                o.rows = [int(i) for i in result["unexpected_index_list"]]
                if o.failed:
                    o.samples = _samples(raw, o.rows, sample_rows)
            if o.status == "failed" and o.name.endswith("user_id.distinct"):
                top = frame["user_id"].value_counts().head(3)
                if len(top):
                    o.details = "most events from: " + ", ".join(f"{u} ({n:,})" for u, n in top.items())
        answered = {r.expectation_config.meta["name"] for r in res.results}
        for s in runnable:  # never let an expectation vanish: no verdict counts as an error
            if s.name not in answered:
                outcomes[s.name].status, outcomes[s.name].details = "error", "Great Expectations returned no result"
    return list(outcomes.values())


# -- the stage ---------------------------------------------------------------------------------

def _status(outcomes: list[Outcome]) -> str:
    if any(o.failed and o.severity == "critical" for o in outcomes):
        return "failed"
    if any(o.failed and o.severity == "warning" for o in outcomes):
        return "passed_with_warnings"
    return "passed"


def _quarantine(outcomes: list[Outcome], raws: dict[str, lenient.RawTable]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for table, raw in raws.items():
        reasons: dict[int, list[str]] = {}
        for o in outcomes:
            if o.table == table and o.severity == "warning" and o.status == "failed" and o.rows:
                o.quarantined = len(o.rows)
                for i in o.rows:
                    reasons.setdefault(i, []).append(o.name)
        if reasons and raw.frame is not None:
            idx = sorted(reasons)
            rows = raw.frame.loc[idx].copy()
            rows.insert(0, "_reasons", ["; ".join(reasons[i]) for i in idx])
            rows.insert(0, "_row", [i + 1 for i in idx])
            out[table] = rows
    return out


def _default_out(name: str, q: dict[str, Any]) -> Path:
    base = Path(q.get("out_dir") or "reports/validation")
    return (base if base.is_absolute() else settings().root / base) / name


OUTPUTS = {"result.json", "report.html", "accepted.json", "quarantine"}


def _check_target(target: Path) -> None:
    """The output directory is replaced as a whole: refuse one that holds anything else."""
    if target.exists() and (not target.is_dir() or {p.name for p in target.iterdir()} - OUTPUTS):
        raise ColdrecError(f"{target}: exists and holds files the gate did not write; the gate replaces its"
                           " output directory as a whole, so give an empty or new directory (--out)")


def _read_previous(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "accepted.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def run_gate(name: str, raws: dict[str, lenient.RawTable], out_dir: str | Path | None = None,
             params: dict[str, Any] | None = None, run_date: Any = None, previous: dict[str, Any] | None = None,
             contract_error: str | None = None, fingerprint: Callable[[], str] | None = None) -> ValidationResult:
    """Validate already-read tables (``raws``: table name -> :class:`~coldrec.quality.lenient.RawTable`)."""
    t0 = time.perf_counter()
    params = params if params is not None else load_params()
    q = quality_params(params)
    specs = load_specs(severity=q.get("severity"))
    when = resolve_run_date(run_date if run_date is not None else q.get("run_date"))
    target = Path(out_dir) if out_dir else _default_out(name, q)
    _check_target(target)
    if previous is None:
        previous = _read_previous(target)
    sample_rows = int(q.get("sample_rows", 5))

    outcomes: list[Outcome] = []
    if contract_error is not None:
        outcomes.append(Outcome("source.contract", "source", "coldrec.canonical_contract", "critical", "failed",
                                "the dataset's files satisfy the canonical data contract (coldrec/schema.py)",
                                details=contract_error))
    frames: dict[str, pd.DataFrame | None] = {}
    for table, raw in raws.items():
        if raw.unreadable is not None:
            outcomes.append(Outcome(f"{table}.readable", table, "coldrec.file_readable", "critical", "failed",
                                    "the file can be read as CSV (UTF-8) or Parquet", details=raw.unreadable))
            frames[table] = None
        else:
            frames[table] = lenient.typed(raw)
    _join_references(frames)
    values = parameters(q, when, previous)
    for table in TABLES:
        if table not in raws:
            continue
        frame = frames[table]
        if frame is None:
            for spec in specs[table]:
                outcomes.append(Outcome(spec.name, table, spec.type, spec.severity, "skipped", spec.description,
                                        details=f"not evaluated: {table} file unreadable"))
            continue
        outcomes += _run_suite(table, specs[table], frame, raws[table], values, sample_rows)

    status = _status(outcomes)
    quarantine = _quarantine(outcomes, raws) if q.get("quarantine", True) else {}
    tables = {t: {"source": r.source, "rows": None if r.frame is None else int(len(r.frame)),
                  "columns": None if r.frame is None else [str(c) for c in r.frame.columns]} for t, r in raws.items()}
    ev = frames.get("events")
    import great_expectations as gx_pkg

    result = ValidationResult(
        dataset=name, status=status, run_date=when.isoformat(),
        validated_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), outcomes=outcomes, tables=tables,
        baseline=previous, accepted=status != "failed", duration_s=0.0, gx_version=gx_pkg.__version__,
        out_dir=target, quarantine={t: int(len(df)) for t, df in quarantine.items()},
    )
    accepted_doc = None
    if result.accepted:
        accepted_doc = {
            "dataset": name, "accepted_at": result.validated_at, "run_date": result.run_date,
            "fingerprint": fingerprint() if fingerprint else None,
            "rows": {t: v["rows"] for t, v in tables.items()},
            "last_event": None if ev is None or "timestamp" not in ev.columns or ev.empty else _jsonable(ev["timestamp"].max()),
        }
    from coldrec.quality.report import render_html

    old_accepted = target / "accepted.json"
    with atomic_dir(target) as tmp:
        if accepted_doc is not None:
            (tmp / "accepted.json").write_text(json.dumps(accepted_doc, indent=2), encoding="utf-8")
        elif old_accepted.exists():
            shutil.copy2(old_accepted, tmp / "accepted.json")
        if quarantine:
            (tmp / "quarantine").mkdir()
            for table, df in quarantine.items():
                df.to_csv(tmp / "quarantine" / f"{table}.csv", index=False)
        result.duration_s = time.perf_counter() - t0
        (tmp / "result.json").write_text(json.dumps(_jsonable(result.to_dict()), indent=2, default=str), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(result), encoding="utf-8")
    return result


def validate(dataset: Dataset, out_dir: str | Path | None = None, params: dict[str, Any] | None = None,
             run_date: Any = None, previous: dict[str, Any] | None = None) -> ValidationResult:
    """Validate an in-memory (canonical) dataset. ``previous``: the accepted-batch stats to compare
    row counts with (default: ``<out_dir>/accepted.json`` when present; ``{}``: none)."""
    raws = {t: r for t in TABLES if (r := lenient.raw_from_frame(getattr(dataset, t), t, f"{dataset.name}:{t}"))}
    return run_gate(dataset.name, raws, out_dir, params, run_date, previous, fingerprint=dataset.fingerprint)


def validate_files(events: str | Path, items: str | Path, users: str | Path | None = None, name: str | None = None,
                   out_dir: str | Path | None = None, params: dict[str, Any] | None = None, run_date: Any = None,
                   previous: dict[str, Any] | None = None) -> ValidationResult:
    """Validate the user's own files, read leniently so every structural break is measured."""
    raws = {"events": lenient.read_raw(events, "events"), "items": lenient.read_raw(items, "items")}
    if users:
        raws["users"] = lenient.read_raw(users, "users")
    name = name or Path(events).parent.name or "custom"
    return run_gate(name, raws, out_dir, params, run_date, previous)


def validate_source(dataset: str | None = None, events: str | Path | None = None, items: str | Path | None = None,
                    users: str | Path | None = None, data_dir: str | Path | None = None,
                    out_dir: str | Path | None = None, params: dict[str, Any] | None = None,
                    run_date: Any = None) -> ValidationResult:
    """The stage as the CLI / DAG / DVC call it: same data choice as every other command."""
    from coldrec.prepare import _check_choice, default_dataset, load_source

    _check_choice(dataset, events, items, users)
    params = params if params is not None else load_params()
    if events and items:  # _check_choice made sure they come together
        return validate_files(events, items, users, out_dir=out_dir, params=params, run_date=run_date)
    name = dataset or default_dataset(params)
    try:
        ds = load_source(dataset=name, data_dir=data_dir, params=params)
    except DataError as exc:
        return run_gate(name, {}, out_dir, params, run_date, contract_error=str(exc))
    return validate(ds, out_dir=out_dir, params=params, run_date=run_date)
