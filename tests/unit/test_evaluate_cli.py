"""`coldrec evaluate` end to end on small generated data: tidy metrics.json, report files,
determinism under a seed, clear errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_items

FAST = "popularity,item_knn,implicit_als"


@pytest.fixture
def shop(tmp_path):
    """40 users over 60 days; users buy items from one of two 'tastes' so co-occurrence has signal."""
    rng = np.random.default_rng(1)
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(40):
        taste = u % 2
        start = t0 + pd.Timedelta(days=int(u * 1.5))
        for j in range(6):
            item = f"i{int(rng.integers(0, 4)) * 2 + taste}"
            rows.append((f"u{u}", item, "purchase", (start + pd.Timedelta(hours=j)).isoformat()))
    d = tmp_path / "shop"
    d.mkdir()
    pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"]).to_csv(d / "events.csv", index=False)
    make_items(8).to_csv(d / "items.csv", index=False)
    return d


def test_evaluate_writes_tidy_metrics_and_report(cli, shop, tmp_path):
    out = tmp_path / "ev"
    res = cli("evaluate", "--events", shop / "events.csv", "--items", shop / "items.csv", "--methods", FAST, "--out", out)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["split"] == "time" and doc["seed"] == 42 and doc["dataset"] == "shop"
    assert {r["method"] for r in doc["results"]} == set(FAST.split(","))
    for r in doc["results"]:
        assert set(r) >= {"method", "k", "metric", "value", "n_users", "ci95"} and isinstance(r["k"], int)
        assert r["n_users"] > 0 and 0.0 <= r["value"] <= 1.0
        if r["metric"] == "ndcg@10":
            assert r["ci95"][0] <= r["value"] <= r["ci95"][1]
    ndcg = {(r["method"], r["k"]): r["value"] for r in doc["results"] if r["metric"] == "ndcg@10"}
    assert ndcg[("item_knn", 3)] > ndcg[("popularity", 3)]  # the two tastes are learnable
    assert (out / "report.html").read_text().count("<table>") >= 5
    assert (out / "ndcg_vs_k.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_is_deterministic_under_a_seed(cli, shop, tmp_path):
    runs = []
    for name in ("a", "b"):
        assert cli("evaluate", "--events", shop / "events.csv", "--items", shop / "items.csv", "--methods", FAST,
                   "--split", "users", "--seed", "5", "--out", tmp_path / name).exit_code == 0
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text())["results"])
    assert runs[0] == runs[1]


def test_evaluate_errors(cli, shop, tmp_path):
    res = cli("evaluate", "--events", tmp_path / "missing.csv", "--items", shop / "items.csv")
    assert res.exit_code == 2 and "missing.csv: file not found" in res.output
    res = cli("evaluate", "--events", shop / "events.csv", "--items", shop / "items.csv", "--methods", "popularity,magic")
    assert res.exit_code == 2 and "unknown magic" in res.output
    ev = pd.read_csv(shop / "events.csv")
    first = ev.drop_duplicates("user_id").assign(timestamp="2023-12-01T00:00:00+00:00")  # everyone started long ago
    pd.concat([first, ev]).to_csv(tmp_path / "flat.csv", index=False)
    res = cli("evaluate", "--events", tmp_path / "flat.csv", "--items", shop / "items.csv", "--methods", "popularity",
              "--out", tmp_path / "flat-out")
    assert res.exit_code == 2 and "zero test users" in res.output
    assert not (tmp_path / "flat-out").exists()


def test_bootstrap_zero_turns_intervals_off(cli, shop, tmp_path, monkeypatch):
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluation"]["bootstrap"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("COLDREC_PARAMS", str(tmp_path / "params.yaml"))
    out = tmp_path / "ev"
    res = cli("evaluate", "--events", shop / "events.csv", "--items", shop / "items.csv", "--methods", "popularity",
              "--out", out)
    assert res.exit_code == 0, res.output
    rows = [r for r in json.loads((out / "metrics.json").read_text())["results"] if r["metric"] == "ndcg@10"]
    assert rows and all(r["ci95"] is None for r in rows)
    assert "[0." not in (out / "report.html").read_text().split("<table>", 2)[1]  # no interval printed


def test_compare_finds_every_differing_row_and_prints_the_table(tmp_path, capsys):
    import json

    from training.evaluation.compare import main

    row = lambda m, k, sig, v: {"method": m, "k": k, "signal": sig, "metric": "ndcg@10", "value": v,  # noqa: E731
                                "n_users": 10, "ci95": [v - 0.01, v + 0.01]}
    a = {"split_info": {"n": 1}, "results": [row("pop", 0, "none", 0.1), row("pop", 1, "items", 0.2),
                                             row("pop", 0, "query", 0.3)]}
    b = json.loads(json.dumps(a))
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "| pop | 0.1000 | 0.2000 | - | - | 0.3000 |" in out and "values differing: 0" in out
    b["results"][1]["value"] = 0.2 + 1e-12  # invisible at 4 digits, still a difference
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "values differing: 1" in capsys.readouterr().out
