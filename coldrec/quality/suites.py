"""The expectation suites (JSON in ``expectations/``), their severities and run-time parameters.

A suite file is a Great Expectations 1.x suite: ``{"name", "meta", "expectations": [{"type",
"kwargs", "severity", "meta"}]}``. ``severity`` is GX's own field (``critical`` fails the run,
``warning`` is reported; ``params.yaml quality.severity`` may override it per expectation, or
set ``off``); ``meta`` carries ``name`` (a stable id such as ``events.timestamp.not_future``)
and ``description``. Thresholds are not written in the JSON: kwargs refer to them as
``{"$PARAMETER": "<key>"}`` and :func:`parameters` computes every key from ``params.yaml``
(``quality:``), the run date and the previous accepted batch.
A key whose value is :class:`Skip` marks the expectations using it as not applicable (e.g. no
previous batch yet, no users table) - they are reported as skipped, never silently dropped.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.core import paths
from coldrec.core.errors import ColdrecError, ConfigError

TABLES = ("events", "items", "users")
SEVERITIES = ("critical", "warning", "off")

@dataclass(frozen=True)
class Skip:
    """A parameter that cannot be given a value in this run, and why."""

    reason: str


@dataclass(frozen=True)
class Spec:
    """One expectation of a suite, as written in its JSON file (severity after overrides)."""

    name: str
    table: str
    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    severity: str
    description: str

    def columns(self) -> list[str]:
        """Columns the expectation reads (a missing one means it cannot run)."""
        cols: list[str] = []
        if "column" in self.kwargs:
            cols.append(self.kwargs["column"])
        cols += list(self.kwargs.get("column_list", []))
        cond = self.kwargs.get("row_condition")
        if isinstance(cond, dict) and isinstance(cond.get("column"), dict):
            cols.append(cond["column"]["name"])
        return cols

    def parameter_keys(self) -> list[str]:
        return [v["$PARAMETER"] for v in self.kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v]


def quality_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """params.yaml's ``quality:`` section, validated (an unknown or missing key is an error naming it);
    ``None`` reads the file. No defaults here: params.yaml is the one source."""
    from coldrec.core.config import load_params
    from coldrec.core.params import section_dict

    return section_dict(load_params() if params is None else params, "quality")


def suites_dir() -> Path:
    return paths.expectations_dir()


def load_specs(directory: str | Path | None = None, severity: dict[str, str] | None = None) -> dict[str, list[Spec]]:
    """Read ``<dir>/{events,items,users}.json`` and apply severity overrides (name -> level)."""
    d = Path(directory) if directory else suites_dir()
    severity = dict(severity or {})
    out: dict[str, list[Spec]] = {}
    seen: set[str] = set()
    for table in TABLES:
        path = d / f"{table}.json"
        if not path.exists():
            raise ConfigError(f"{path}: expectation suite not found")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
        specs = []
        for i, e in enumerate(doc.get("expectations", [])):
            meta = e.get("meta") or {}
            name = meta.get("name")
            if not name or name in seen:
                raise ConfigError(f"{path}: expectation {i + 1} needs a unique meta.name (got {name!r})")
            sev = severity.pop(name, e.get("severity", "critical"))
            if sev not in SEVERITIES:
                raise ConfigError(f"{path}: {name}: severity must be one of {', '.join(SEVERITIES)}, got {sev!r}")
            seen.add(name)
            specs.append(Spec(name=name, table=table, type=e["type"], kwargs=e.get("kwargs") or {}, meta=meta,
                              severity=sev, description=meta.get("description", "")))
        out[table] = specs
    if severity:
        raise ConfigError(f"params.yaml quality.severity names unknown expectation(s): {', '.join(sorted(severity))}")
    return out


# -- run date and parameters ------------------------------------------------------------------

_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def resolve_run_date(value: Any = None) -> pd.Timestamp:
    """The run date as a UTC timestamp: None / "now" = now; a bare date = the end of that day."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "now")):
        return pd.Timestamp.now(tz="UTC")
    bare = (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and bool(_BARE_DATE.match(value.strip())))
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError):
        raise ColdrecError(f"run date {value!r} is not a date (expected YYYY-MM-DD or an ISO-8601 time)") from None
    if pd.isna(ts):
        raise ColdrecError(f"run date {value!r} is not a date (expected YYYY-MM-DD or an ISO-8601 time)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if bare:
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


def _ts(value: Any, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"params.yaml quality.{what}: {value!r} is not a date") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _band(previous: dict[str, Any] | None, table: str, change: float | None) -> tuple[Any, Any]:
    rows = ((previous or {}).get("rows") or {}).get(table)
    if change is None:
        skip = Skip("disabled (quality.max_row_change is null)")
        return skip, skip
    if rows is None:
        skip = Skip("no previous accepted batch to compare with")
        return skip, skip
    return int(math.floor(rows * (1 - change))), int(math.ceil(rows * (1 + change)))


def parameters(q: dict[str, Any], run_date: pd.Timestamp, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Every ``$PARAMETER`` key of the suites -> its value for this run (or a :class:`Skip`)."""
    ev, it = q["events"], q["items"]
    p: dict[str, Any] = {}
    p["timestamp_max"] = run_date + pd.Timedelta(minutes=float(ev.get("clock_skew_minutes") or 0))
    lows = []
    if ev.get("window_start") is not None:
        lows.append(_ts(ev["window_start"], "events.window_start"))
    if ev.get("max_age_days") is not None:
        lows.append(run_date - pd.Timedelta(days=float(ev["max_age_days"])))
    p["timestamp_min"] = max(lows) if lows else Skip("no window configured (window_start and max_age_days are null)")
    fd = ev.get("freshness_days")
    p["freshness_min"] = run_date - pd.Timedelta(days=float(fd)) if fd is not None else Skip("freshness_days is null")

    ranges = ev.get("value_ranges") or {}
    for etype in ("rate", "purchase", "add_to_cart"):
        r = ranges.get(etype)
        if not r or (r.get("min") is None and r.get("max") is None):
            for k in ("min", "max", "strict_min"):
                p[f"{etype}_value_{k}"] = Skip(f"no value range for {etype!r} in quality.events.value_ranges")
            continue
        p[f"{etype}_value_min"] = None if r.get("min") is None else float(r["min"])
        p[f"{etype}_value_max"] = None if r.get("max") is None else float(r["max"])
        p[f"{etype}_value_strict_min"] = bool(r.get("strict_min", False))

    p["catalogue_min_share"] = 1.0 - float(ev["max_missing_item_share"])
    p["duplicate_mostly"] = 1.0 - float(ev["max_duplicate_rate"])
    p["duplicate_critical_mostly"] = 1.0 - float(ev["max_duplicate_rate_critical"])
    p["min_distinct_users"] = int(ev["min_distinct_users"])
    p["price_min"] = float(it["price_min"])
    change = q.get("max_row_change")
    for table in TABLES:
        p[f"{table}_rows_min"], p[f"{table}_rows_max"] = _band(previous, table, None if change is None else float(change))
    return p
