"""The web page's model view document, from the files the pipeline writes (registry, metrics, fidelity)."""
from __future__ import annotations

import json

from coldrec.release.model_registry import Registry
from coldrec.release.model_report import evaluation, versions_view


def _home(tmp_path, monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.setenv("COLDREC_HOME", str(tmp_path))
    monkeypatch.setenv("COLDREC_REGISTRY", str(tmp_path / "registry"))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())


def test_evaluation_table_reads_the_newest_metrics(tmp_path, monkeypatch):
    _home(tmp_path, monkeypatch)
    assert evaluation("shop") is None
    d = tmp_path / "reports" / "evaluation" / "shop" / "time"
    d.mkdir(parents=True)
    rows = [{"method": "coldrec", "k": 3, "signal": "items", "metric": "ndcg@10", "value": 0.17781},
            {"method": "coldrec", "k": 0, "signal": "query", "metric": "ndcg@10", "value": 0.1644},
            {"method": "popularity", "k": 3, "signal": "items", "metric": "recall@10", "value": 0.3}]
    (d / "metrics.json").write_text(json.dumps({"split": "time", "results": rows}))
    ev = evaluation("shop")
    assert ev["table"] == {"coldrec": {"k=3": 0.1778, "k=0 query": 0.1644}} and ev["plot"] is False
    (d / "ndcg_vs_k.png").write_bytes(b"\x89PNG")
    assert evaluation("shop")["plot"] is True


def test_versions_view_marks_stage_serving_gate_and_fidelity(tmp_path, monkeypatch):
    _home(tmp_path, monkeypatch)
    models = tmp_path / "artifacts" / "models" / "shop"
    (models / "v-a" / "encoder_int8").mkdir(parents=True)
    (models / "v-a" / "encoder_int8" / "fidelity.json").write_text(json.dumps({"mean_cosine": 0.998, "n_texts": 3}))
    empty = versions_view("shop", None)
    assert empty["versions"] == [] and "coldrec pipeline run" in empty["note"]
    reg = Registry().ensure()
    reg.register("shop", "v-a", {"created": "2026-12-01T00:00:00", "data_fingerprint": "fp",
                                 "gate": {"passed": True, "reasons": ["ok"], "ndcg@10": {"candidate": {"3": 0.2}}}})
    reg.register("shop", "v-b", {"gate": {"passed": False, "reasons": ["worse"]}})
    reg.assign_production("shop", "v0.0.1", "")
    view = versions_view("shop", "v-a")
    a, b = view["versions"][1], view["versions"][0]  # newest first
    assert (a["version"], a["stage"], a["serving"], a["fidelity"]["mean_cosine"]) == ("v0.0.1", "prod", True, 0.998)
    assert a["gate"]["ndcg@10"] == {"candidate": {"3": 0.2}} and a["promote"] == "coldrec models promote v0.0.1 --dataset shop"
    assert (b["stage"], b["serving"], b["fidelity"], b["gate"]["passed"]) == ("candidate", False, None, False)
    assert view["note"] is None and view["rollback"] == "coldrec models rollback --dataset shop"
