"""Stage ``validate``: the data validation. CLI, DAG task and DVC stage all call one function.

:func:`validate_source` takes the same choice of data as every command (``--dataset NAME`` or
``--events/--items [--users]``), runs the suites of ``expectations/`` with Great Expectations
(1.x, an ephemeral context, pandas) and writes, atomically, to ``<out_dir>``:

- ``result.json``   pass/fail and, per expectation, name, table, severity, status, counts,
                    observed value, parameters and sample offending rows (machine-readable);
- ``report.html``   the same for people: every failing expectation with counts and samples;
- ``quarantine/<table>.csv``  rows failing a *row-level warning*, with the reasons (validation
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

This module only orders the steps; each has its own module: reading (:mod:`~coldrec.quality.lenient`),
helper columns (:mod:`~coldrec.quality.references`), Great Expectations
(:mod:`~coldrec.quality.runner`), the verdict types (:mod:`~coldrec.quality.results`), set-aside
rows (:mod:`~coldrec.quality.quarantine`) and the output directory (:mod:`~coldrec.quality.result_dir`).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.core import paths
from coldrec.core.config import load_params
from coldrec.core.errors import DataError
from coldrec.data.dataset import Dataset
from coldrec.quality import lenient, result_dir
from coldrec.quality.quarantine import quarantine as quarantined_rows
from coldrec.quality.references import join_references
from coldrec.quality.results import Outcome, ValidationFailed, ValidationResult, jsonable, overall_status
from coldrec.quality.runner import gx_version, run_suite
from coldrec.quality.suites import TABLES, load_specs, parameters, quality_params, resolve_run_date

__all__ = ["Outcome", "ValidationFailed", "ValidationResult", "run_validation", "validate", "validate_files", "validate_source"]


def run_validation(name: str, raws: dict[str, lenient.RawTable], out_dir: str | Path | None = None,
             params: dict[str, Any] | None = None, run_date: Any = None, previous: dict[str, Any] | None = None,
             contract_error: str | None = None, fingerprint: Callable[[], str] | None = None,
             inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> ValidationResult:
    """Validate already-read tables (``raws``: table name -> :class:`~coldrec.quality.lenient.RawTable`).
    ``inputs``/``force``: the output rule of :mod:`coldrec.core.outputs`, checked before any expectation runs."""
    t0 = time.perf_counter()
    params = params if params is not None else load_params()
    q = quality_params(params)
    specs = load_specs(severity=q.get("severity"))
    when = resolve_run_date(run_date if run_date is not None else q.get("run_date"))
    target = Path(out_dir) if out_dir else result_dir.default_out(name, q)
    target = result_dir.check_target(target, inputs, force)
    if previous is None:
        previous = result_dir.read_previous(target)
    sample_rows = int(q.get("sample_rows", 5))

    outcomes: list[Outcome] = []
    if contract_error is not None:
        outcomes.append(Outcome("source.contract", "source", "coldrec.canonical_contract", "critical", "failed",
                                "the dataset's files satisfy the canonical data contract (coldrec/data/contract.py)",
                                details=contract_error))
    frames: dict[str, pd.DataFrame | None] = {}
    for table, raw in raws.items():
        if raw.unreadable is not None:
            outcomes.append(Outcome(f"{table}.readable", table, "coldrec.file_readable", "critical", "failed",
                                    "the file can be read as CSV (UTF-8) or Parquet", details=raw.unreadable))
            frames[table] = None
        else:
            frames[table] = lenient.typed(raw)
    join_references(frames)
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
        outcomes += run_suite(table, specs[table], frame, raws[table], values, sample_rows)

    status = overall_status(outcomes)
    quarantine = quarantined_rows(outcomes, raws) if q.get("quarantine", True) else {}
    tables = {t: {"source": r.source, "rows": None if r.frame is None else int(len(r.frame)),
                  "columns": None if r.frame is None else [str(c) for c in r.frame.columns]} for t, r in raws.items()}
    ev = frames.get("events")

    result = ValidationResult(
        dataset=name, status=status, run_date=when.isoformat(),
        validated_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), outcomes=outcomes, tables=tables,
        baseline=previous, accepted=status != "failed", duration_s=0.0, gx_version=gx_version(),
        out_dir=target, quarantine={t: int(len(df)) for t, df in quarantine.items()},
    )
    accepted_doc = None
    if result.accepted:
        accepted_doc = {
            "dataset": name, "accepted_at": result.validated_at, "run_date": result.run_date,
            "fingerprint": fingerprint() if fingerprint else None,
            "rows": {t: v["rows"] for t, v in tables.items()},
            "last_event": None if ev is None or "timestamp" not in ev.columns or ev.empty else jsonable(ev["timestamp"].max()),
        }
    result_dir.write(target, result, quarantine, accepted_doc, started=t0)
    return result


def validate(dataset: Dataset, out_dir: str | Path | None = None, params: dict[str, Any] | None = None,
             run_date: Any = None, previous: dict[str, Any] | None = None,
             inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> ValidationResult:
    """Validate an in-memory (canonical) dataset. ``previous``: the accepted-batch stats to compare
    row counts with (default: ``<out_dir>/accepted.json`` when present; ``{}``: none)."""
    raws = {t: r for t in TABLES if (r := lenient.raw_from_frame(getattr(dataset, t), t, f"{dataset.name}:{t}"))}
    return run_validation(dataset.name, raws, out_dir, params, run_date, previous, fingerprint=dataset.fingerprint,
                    inputs=inputs, force=force)


def validate_files(events: str | Path, items: str | Path, users: str | Path | None = None, name: str | None = None,
                   out_dir: str | Path | None = None, params: dict[str, Any] | None = None, run_date: Any = None,
                   previous: dict[str, Any] | None = None, force: bool = False) -> ValidationResult:
    """Validate the user's own files, read leniently so every structural break is measured."""
    raws = {"events": lenient.read_raw(events, "events"), "items": lenient.read_raw(items, "items")}
    if users:
        raws["users"] = lenient.read_raw(users, "users")
    name = name or Path(events).parent.name or "custom"
    return run_validation(name, raws, out_dir, params, run_date, previous, inputs=(events, items, users), force=force)


def validate_source(dataset: str | None = None, events: str | Path | None = None, items: str | Path | None = None,
                    users: str | Path | None = None, data_dir: str | Path | None = None,
                    out_dir: str | Path | None = None, params: dict[str, Any] | None = None,
                    run_date: Any = None, force: bool = False) -> ValidationResult:
    """The stage as the CLI / DAG / DVC call it: same data choice as every other command."""
    from coldrec.data.prepare import _check_choice, default_dataset, load_source

    _check_choice(dataset, events, items, users)
    params = params if params is not None else load_params()
    if events and items:  # _check_choice made sure they come together
        return validate_files(events, items, users, out_dir=out_dir, params=params, run_date=run_date, force=force)
    name = dataset or default_dataset(params)
    try:
        ds = load_source(dataset=name, data_dir=data_dir, params=params)
    except DataError as exc:
        return run_validation(name, {}, out_dir, params, run_date, contract_error=str(exc), force=force)
    prepared = paths.prepared_dir(name)
    return validate(ds, out_dir=out_dir, params=params, run_date=run_date, inputs=(prepared,), force=force)
