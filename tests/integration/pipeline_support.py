"""A small slice of real data and a checkout-like home for pipeline runs (dag.test(), Celery, DVC).

The slice: the first rows of the UCI Online Retail raw file (real shoppers, real products),
cleaned by the shipped dataset's own builder and written as canonical CSVs in a folder named
``orslice`` (so the dataset is called ``orslice``). The home holds a ``params.yaml`` with a tiny
fine-tune and links to the code the pipeline and the Bento need, so nothing is written into the
checkout.
"""
from __future__ import annotations

import lzma
import os
from pathlib import Path

import yaml

from tests.conftest import ROOT, SHARED, params_with
from tests.unit.test_model import TINY_OVERRIDES

SLICE_ROWS = 30000  # the shop's first two weeks (1-14 Dec 2010)
LINKED = ("coldrec", "serving", "training", "dags", "expectations", "features", "pyproject.toml", "README.md",
          "requirements.lock")
FAST = {"evaluation": {"bootstrap": 0, "methods": ["popularity", "coldrec"]},
        "pipeline": {"retries": 0, "bundle": False},
        "serving": {"index_type": "FLAT"}}


def make_slice(base: Path, rows: int = SLICE_ROWS) -> dict[str, Path]:
    """Canonical events/items/users CSVs of the first ``rows`` raw rows (cached under ``base``)."""
    from coldrec.data.datasets import online_retail

    out = base / "orslice"
    files = {k: out / f"{k}.csv" for k in ("events", "items", "users")}
    if all(f.is_file() for f in files.values()):
        return files
    raw = base / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with lzma.open(SHARED / "online-retail" / "online_retail.csv.xz", "rt", encoding="utf-8") as src, \
            lzma.open(raw / "online_retail.csv.xz", "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    ds = online_retail.build(raw, {})
    out.mkdir(parents=True, exist_ok=True)
    ds.events.to_csv(files["events"], index=False)
    ds.items.to_csv(files["items"], index=False)
    ds.users.to_csv(files["users"], index=False)
    return files


def make_home(base: Path, overrides: dict | None = None) -> Path:
    """A checkout-like root: params.yaml (tiny fine-tune, cheap evaluation) + links to the code."""
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = home / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    params = params_with(TINY_OVERRIDES, FAST, overrides or {})
    (home / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return home


def slice_env(base: Path, overrides: dict | None = None) -> dict[str, str]:
    """Environment for a pipeline run on the slice, everything under ``base``; plus the run conf
    in ``COLDREC_TEST_CONF_*`` (events/items/users paths)."""
    files = make_slice(base)
    home = make_home(base, overrides)
    env = {"COLDREC_HOME": str(home), "COLDREC_DATA_DIR": str(base / "data"), "COLDREC_PARAMS": str(home / "params.yaml"),
           "COLDREC_CACHE_DIR": str(base / "cache"), "COLDREC_REGISTRY": str(base / "registry"),
           "BENTOML_HOME": str(base / "bentoml"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.update({f"COLDREC_TEST_CONF_{k.upper()}": str(v) for k, v in files.items()})
    return env


def run_conf(env: dict[str, str]) -> dict[str, str]:
    return {"dataset": "orslice", **{k: env[f"COLDREC_TEST_CONF_{k.upper()}"] for k in ("events", "items", "users")}}


def child_env(env: dict[str, str]) -> dict[str, str]:
    """os.environ without the test session's own COLDREC_/AIRFLOW settings, plus ``env``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COLDREC_", "AIRFLOW", "BENTOML_HOME"))}
    return {**keep, **env}
