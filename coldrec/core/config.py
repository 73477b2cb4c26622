"""Where things live and which hyperparameters apply.

Two sources, kept apart on purpose:
- ``params.yaml`` holds every hyperparameter and threshold (the one file DVC, DAGs and CLI read);
- :class:`Settings` holds engine locations (paths, URIs), each overridable by an environment
  variable, so the same code runs on a laptop and on real servers by configuration only.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_cache_dir

from coldrec.core.errors import ConfigError
from coldrec.core.params import typed

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the coldrec package


def project_root() -> Path:
    """The checkout that holds ``params.yaml``: ``$COLDREC_HOME``, else the package's parent, else cwd."""
    env = os.environ.get("COLDREC_HOME")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "params.yaml").exists():
        return candidate
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    root: Path
    data_dir: Path  # canonical (prepared) datasets: <data_dir>/<name>/{events,items,users}.parquet
    raw_dir_override: Path | None  # $COLDREC_RAW_DATA_DIR: where raw publisher files are looked up first
    shared_datasets_dir: Path  # ../shared/datasets beside the checkout
    cache_dir: Path  # per-user cache for downloaded raw files
    params_path: Path

    @classmethod
    def from_env(cls) -> Settings:
        root = project_root()
        raw = os.environ.get("COLDREC_RAW_DATA_DIR")
        return cls(
            root=root,
            data_dir=Path(os.environ.get("COLDREC_DATA_DIR", root / "data")).resolve(),
            raw_dir_override=Path(raw).resolve() if raw else None,
            shared_datasets_dir=(root.parent / "shared" / "datasets").resolve(),
            cache_dir=Path(os.environ.get("COLDREC_CACHE_DIR", user_cache_dir("coldrec"))).resolve(),
            params_path=Path(os.environ.get("COLDREC_PARAMS", root / "params.yaml")).resolve(),
        )


def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=8)
def _load_params_cached(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}")
    typed(data)  # validates every section: unknown or missing keys fail here, once
    return data


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Read and validate ``params.yaml`` (or ``path``) once per change of the file; a missing or
    malformed file, or a missing or unknown key in any section, is a ConfigError naming it
    (:mod:`coldrec.core.params`). Callers get a fresh copy: mutating it never leaks into the next call."""
    p = Path(path) if path else settings().params_path
    if not p.exists():
        raise ConfigError(f"{p}: params file not found (set COLDREC_PARAMS or run from the checkout)")
    try:
        return copy.deepcopy(_load_params_cached(str(p), p.stat().st_mtime))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
