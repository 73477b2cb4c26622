"""Stage ``prepare``: raw files -> canonical Parquet; and the one way every stage gets its data.

CLI, DAG task and DVC stage all call :func:`prepare`; every data-taking command calls
:func:`load_source` so that ``--dataset NAME`` and ``--events/--items/--users`` mean the same
thing everywhere.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.data import datasets
from coldrec.core import outputs
from coldrec.core.config import load_params, settings
from coldrec.data.dataset import PREPARED_FILES, Dataset, from_files, load_prepared, save
from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed


def _params_for(name: str, params: dict[str, Any]) -> dict[str, Any]:
    section = datasets.PARAM_SECTIONS.get(name)
    return ((params.get("data") or {}).get(section) or {}) if section else {}


def default_dataset(params: dict[str, Any] | None = None) -> str:
    return typed(params if params is not None else load_params()).data.default_dataset


def _check_choice(dataset: str | None, events: str | Path | None, items: str | Path | None,
                  users: str | Path | None) -> None:
    if dataset and (events or items or users):
        raise ColdrecError("give either --dataset NAME or --events/--items [--users], not both")
    if (events is None) != (items is None):
        raise ColdrecError("--events and --items go together: a dataset needs both tables")
    if users and not events:
        raise ColdrecError("--users needs --events and --items as well")


def build(dataset: str | None = None, events: str | Path | None = None, items: str | Path | None = None,
          users: str | Path | None = None, data_dir: str | Path | None = None,
          params: dict[str, Any] | None = None) -> Dataset:
    """Canonical tables from a shipped dataset's raw files or from the user's own files."""
    _check_choice(dataset, events, items, users)
    params = params if params is not None else load_params()
    if events:
        return from_files(events, items, users)
    name = dataset or default_dataset(params)
    ds = datasets.build_named(name, data_dir=data_dir, params=params)
    ds.source = {"dataset": name}
    return ds


def default_target(dataset: str | None, events: str | Path | None, params: dict[str, Any]) -> Path:
    """``data/<name>``: the shipped dataset's name, or the folder name of the user's events file. A
    user's folder named like a shipped dataset would replace that dataset's prepared tables (and
    later commands would take the user's data for it), so that needs an explicit ``--out``."""
    if not events:
        return paths.prepared_dir(dataset or default_dataset(params))
    name = Path(events).parent.name or "custom"
    if name in datasets.DATASETS:
        raise ColdrecError(f"{events}: your files' folder is named '{name}', like the shipped dataset; their "
                           f"prepared tables would replace {paths.prepared_dir(name)}: give --out DIR")
    return paths.prepared_dir(name)


def prepare(dataset: str | None = None, events: str | Path | None = None, items: str | Path | None = None,
            users: str | Path | None = None, out: str | Path | None = None, data_dir: str | Path | None = None,
            params: dict[str, Any] | None = None, force: bool = False) -> tuple[Dataset, Path]:
    """Build the canonical tables and write them atomically to ``out`` (default ``data/<name>``).
    The output location is checked before any reading (:mod:`coldrec.core.outputs`)."""
    _check_choice(dataset, events, items, users)
    params = params if params is not None else load_params()
    inputs = [events, items, users]
    target = outputs.check(Path(out) if out else default_target(dataset, events, params), inputs=inputs, force=force,
                           legacy=PREPARED_FILES)
    ds = build(dataset, events, items, users, data_dir, params)
    ds.report["params"] = _params_for(ds.name, params)
    return ds, save(ds, target, inputs=inputs, force=force)


def load_source(dataset: str | None = None, events: str | Path | None = None, items: str | Path | None = None,
                users: str | Path | None = None, data_dir: str | Path | None = None,
                params: dict[str, Any] | None = None) -> Dataset:
    """The dataset a command works on: own files as given, or a shipped dataset, prepared on
    first use and re-prepared when its cleaning params changed since."""
    _check_choice(dataset, events, items, users)
    params = params if params is not None else load_params()
    if events:
        return from_files(events, items, users)
    name = dataset or default_dataset(params)
    datasets.spec(name)  # unknown names fail here, before any I/O
    prepared = paths.prepared_dir(name)
    manifest = prepared / "manifest.json"
    if manifest.exists() and data_dir is None:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        shipped = "files" not in (doc.get("source") or {})  # tables prepared from a user's files are not this dataset
        if shipped and doc.get("cleaning", {}).get("params") == _params_for(name, params):
            return load_prepared(prepared, name=name)
    ds, _ = prepare(dataset=name, data_dir=data_dir, params=params)
    return ds
