"""What validation says about a batch: one :class:`Outcome` per expectation, one :class:`ValidationResult`.

Why a module of its own: the entry point builds these, the report renders them, the CLI prints
them. Keeping the types here (no Great Expectations, no I/O) lets :mod:`coldrec.quality.report`
import them without importing validation that imports the report, so there is no import circle.
:func:`jsonable` lives here too because it defines how a result's values look in ``result.json``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core.errors import ColdrecError


class ValidationFailed(ColdrecError):
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


def overall_status(outcomes: list[Outcome]) -> str:
    """``failed`` when a critical expectation failed, else ``passed_with_warnings`` or ``passed``."""
    if any(o.failed and o.severity == "critical" for o in outcomes):
        return "failed"
    if any(o.failed and o.severity == "warning" for o in outcomes):
        return "passed_with_warnings"
    return "passed"


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
            raise ValidationFailed(f"data validation failed for {self.dataset}: critical {names}{where}")


def jsonable(v: Any) -> Any:
    """A value as it goes into ``result.json``: times as ISO text, numpy scalars as Python, NaN/NaT as null."""
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if v is pd.NaT or v is pd.NA:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v
