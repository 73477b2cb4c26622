"""`data prepare` on the two real datasets in ../shared/datasets."""
from __future__ import annotations

import json

import pandas as pd


def test_online_retail(cli, shared_datasets, tmp_path):
    out = tmp_path / "or"
    res = cli("data", "prepare", "--dataset", "online-retail", "--out", out)
    assert res.exit_code == 0, res.output
    ev = pd.read_parquet(out / "events.parquet")
    items = pd.read_parquet(out / "items.parquet")
    # the datasets README: 4,339 users / 3,665 items in clean purchases; we also drop non-product codes
    assert 4300 <= ev["user_id"].nunique() <= 4339
    assert 3600 <= ev["item_id"].nunique() <= 3665
    assert "85123A" in set(ev["item_id"]) and "17850" in set(ev["user_id"])
    assert not ev["user_id"].str.contains(r"\.").any()
    assert set(ev["item_id"]) <= set(items["item_id"])
    assert {"POST", "M", "DOT", "BANK CHARGES", "AMAZONFEE"}.isdisjoint(items["item_id"])
    assert ev["timestamp"].min() == pd.Timestamp("2010-12-01 08:26:00", tz="UTC")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["events"] == len(ev)
    assert {r["rule"] for r in manifest["cleaning"]["rules"]} >= {"cancelled_invoice", "non_product_code", "no_customer"}


def test_movielens(cli, shared_datasets, tmp_path):
    out = tmp_path / "ml"
    res = cli("data", "prepare", "--dataset", "movielens-small", "--out", out)
    assert res.exit_code == 0, res.output
    ev = pd.read_parquet(out / "events.parquet")
    items = pd.read_parquet(out / "items.parquet").set_index("item_id")
    assert len(ev) == 100_836 and ev["user_id"].nunique() == 610
    assert set(ev["event_type"]) == {"rate"} and ev["value"].between(0.5, 5).all()
    assert len(items) == 9_742
    toy = items.loc["1"]
    assert toy["title"] == "Toy Story" and toy["year"] == "1995"
    assert "Animation" in toy["category"] and "pixar" in toy["tags"]
    assert not (out / "users.parquet").exists()


def test_data_dir_flag_and_wrong_dir(cli, shared_datasets, tmp_path):
    res = cli("data", "prepare", "--dataset", "movielens-small", "--data-dir", tmp_path / "nowhere")
    assert res.exit_code == 2 and "directory does not exist" in res.output
