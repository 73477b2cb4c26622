"""Shared fixtures. Tiers come from the folder: tests/unit -> ``unit``, tests/integration ->
``integration``; long tests add ``@pytest.mark.slow`` themselves."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_sessionfinish(session, exitstatus):
    """Stop the in-process Milvus Lite servers while pytest's streams are still open. Left to
    milvus_lite's own exit hook, they log "server stopped" into a stream pytest has closed by then,
    and a clean run ended in five "--- Logging error ---" tracebacks."""
    import logging
    import sys

    manager = sys.modules.get("milvus_lite.server_manager")
    if manager is not None:
        # quiet: one "server stopped" line per test collection would end the run (a handler some
        # library installed during the session prints INFO to the terminal)
        logging.getLogger(manager.__name__).setLevel(logging.WARNING)
        manager.server_manager_instance.release_all()


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "unit" in parts:
            item.add_marker(pytest.mark.unit)
        elif "integration" in parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """No test writes into the checkout's data/ or the user's cache."""
    base = tmp_path_factory.mktemp("coldrec-env")
    monkeypatch.setenv("COLDREC_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("COLDREC_CACHE_DIR", str(base / "cache"))
    monkeypatch.delenv("COLDREC_RAW_DATA_DIR", raising=False)
    yield


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    return SHARED


@pytest.fixture
def cli():
    from coldrec.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def params_with(*overrides: dict) -> dict:
    """params.yaml with ``overrides`` deep-merged in: tests start from the one source of params and
    change only what they test (an override of a key that does not exist is an error)."""
    import yaml

    from coldrec.core.params import with_overrides

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for o in overrides:
        params = with_overrides(params, o)
    return params


def make_events(n_users: int = 6, n_items: int = 8, seed: int = 0) -> pd.DataFrame:
    """A small, valid events table: every user views then buys a few items over a month."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01T00:00:00Z")
    for u in range(n_users):
        for j in range(4):
            item = f"i{int(rng.integers(n_items))}"
            ts = t0 + pd.Timedelta(days=u * 3 + j, hours=j)
            rows.append({"user_id": f"u{u}", "item_id": item, "event_type": "view", "timestamp": ts.isoformat(), "value": "", "query": ""})
            rows.append(
                {"user_id": f"u{u}", "item_id": item, "event_type": "purchase",
                 "timestamp": (ts + pd.Timedelta(minutes=5)).isoformat(), "value": "1", "query": ""}
            )
    rows.append(
        {"user_id": "u0", "item_id": "", "event_type": "search",
         "timestamp": (t0 + pd.Timedelta(days=40)).isoformat(), "value": "", "query": "red mug"}
    )
    return pd.DataFrame(rows)


def make_items(n_items: int = 8) -> pd.DataFrame:
    cats = ["kitchen", "garden", "toys", "lighting"]
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"item number {i}" for i in range(n_items)],
            "description": [f"a fine {cats[i % 4]} thing" for i in range(n_items)],
            "category": [cats[i % 4] for i in range(n_items)],
            "brand": ["acme"] * n_items,
            "price": [1.5 + i for i in range(n_items)],
            "colour": ["red", "blue"] * (n_items // 2),
        }
    )


@pytest.fixture
def small_files(tmp_path) -> dict[str, Path]:
    """Valid canonical CSVs: events.csv, items.csv, users.csv."""
    d = tmp_path / "byod"
    d.mkdir()
    make_events().to_csv(d / "events.csv", index=False)
    make_items().to_csv(d / "items.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(6)], "country": ["UK", "FR"] * 3}).to_csv(d / "users.csv", index=False)
    return {"events": d / "events.csv", "items": d / "items.csv", "users": d / "users.csv"}
