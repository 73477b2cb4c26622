"""Adapters from the shipped datasets' raw files to the canonical tables."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldrec.data.dataset import Dataset
from coldrec.data.datasets import movielens, online_retail
from coldrec.data.datasets.fetch import locate
from coldrec.data.datasets.shipped import DATASETS, RawDatasetSpec
from coldrec.core.errors import DatasetNotFound

BUILDERS: dict[str, Callable[[Path, dict[str, Any] | None], Dataset]] = {
    "online-retail": online_retail.build,
    "movielens-small": movielens.build,
}
PARAM_SECTIONS = {"online-retail": "online_retail", "movielens-small": "movielens"}


def spec(name: str) -> RawDatasetSpec:
    if name not in DATASETS:
        raise DatasetNotFound(f"unknown dataset {name!r} (known: {', '.join(DATASETS)}; or pass --events/--items)")
    return DATASETS[name]


def build_named(name: str, data_dir: str | Path | None = None, params: dict[str, Any] | None = None,
                download: bool = True) -> Dataset:
    """Locate (or download) a shipped dataset's raw files and convert them to canonical tables."""
    raw = locate(spec(name), data_dir=data_dir, download=download)
    section = ((params or {}).get("data") or {}).get(PARAM_SECTIONS[name], {})
    return BUILDERS[name](raw, section)
