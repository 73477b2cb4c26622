"""`coldrec features` errors and repo rendering (no Feast import needed)."""
from __future__ import annotations

import yaml

from coldrec.feature_store.repo import project_name, redis_connection, render_repo, store_config


def test_apply_before_build_is_a_one_line_error(cli):
    res = cli("features", "apply", "--dataset", "online-retail")
    assert res.exit_code == 2
    assert "feature tables missing" in res.output and "coldrec features build" in res.output
    assert "Traceback" not in res.output


def test_unknown_online_store(cli):
    res = cli("features", "apply", "--online", "cassandra")
    assert res.exit_code == 2 and "unknown online store 'cassandra'" in res.output


def test_get_before_apply(cli):
    res = cli("features", "get", "u1", "--dataset", "nothing-here")
    assert res.exit_code == 2 and "run `coldrec features apply` first" in res.output


def test_render_repo_copies_declarations_and_writes_paths_inside(tmp_path):
    repo = render_repo(tmp_path / "r", project="coldrec_x", online="sqlite")
    assert sorted(p.name for p in repo.iterdir()) == [".feastignore", "definitions.py", "feature_store.yaml"]
    cfg = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert cfg["project"] == "coldrec_x" and cfg["offline_store"] == {"type": "file"}
    assert cfg["registry"]["path"] == str((repo / "registry.db").resolve())
    assert cfg["online_store"] == {"type": "sqlite", "path": str((repo / "online_store.db").resolve())}
    red = store_config(tmp_path, "p", "redis", "10.0.0.1:6380,db=3")["online_store"]
    assert red == {"type": "redis", "connection_string": "10.0.0.1:6380,db=3"}


def test_names_and_redis_address(monkeypatch):
    assert project_name("online-retail") == "coldrec_online_retail"
    monkeypatch.delenv("COLDREC_FEAST_REDIS", raising=False)
    assert redis_connection({"features": {"redis": "h:1,db=2"}}) == "h:1,db=2"
    assert redis_connection({}) == "127.0.0.1:6379"
    monkeypatch.setenv("COLDREC_FEAST_REDIS", "r:6379")
    assert redis_connection({"features": {"redis": "h:1"}}) == "r:6379"
