"""Validation's output directory: where it is, what it may replace, and writing it atomically.

Why a module of its own: the directory is replaced as a whole (``result.json``, ``report.html``,
``quarantine/``, ``accepted.json``), so a reader never sees half of one run and half of another;
the rules that make this safe (refuse a directory holding anything else; keep the previous
``accepted.json`` when this batch is not accepted) live together here, apart from validating.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.core import paths
from coldrec.core.outputs import MARKER, atomic_dir, check
from coldrec.quality.report import render_html
from coldrec.quality.results import ValidationResult, jsonable

OUTPUTS = {"result.json", "report.html", "accepted.json", "quarantine", MARKER}


def default_out(name: str, q: dict[str, Any]) -> Path:
    """``<quality.out_dir>/<dataset>`` (relative to the project root unless absolute)."""
    return paths.validation_dir(name, q["out_dir"])


def check_target(target: Path, inputs: tuple[str | Path | None, ...] = (), force: bool = False) -> Path:
    """The output directory is replaced as a whole: the output rule of :mod:`coldrec.core.outputs` (a
    directory holding only validation's own files, from before markers existed, counts as validation's)."""
    return check(target, inputs=inputs, force=force, legacy=OUTPUTS)


def read_previous(out_dir: Path) -> dict[str, Any] | None:
    """The last accepted batch's stats (``accepted.json``), or None when there is none (or it is unreadable)."""
    path = out_dir / "accepted.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def write(target: Path, result: ValidationResult, quarantine: dict[str, pd.DataFrame],
          accepted_doc: dict[str, Any] | None, started: float) -> None:
    """Replace ``target`` with this run's outputs; ``result.duration_s`` is measured up to here
    (``started``: the run's ``time.perf_counter()``)."""
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
        result.duration_s = time.perf_counter() - started
        (tmp / "result.json").write_text(json.dumps(jsonable(result.to_dict()), indent=2, default=str), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(result), encoding="utf-8")
        (tmp / MARKER).write_text(json.dumps({"stage": "validate"}), encoding="utf-8")
