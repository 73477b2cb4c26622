"""The retrain DAG run by Airflow itself (``coldrec pipeline run`` -> ``dag.test()`` on SQLite) on a
slice of real data, and the faults it must survive: bad data, a worse candidate, a killed task,
rollback, two promotions at once. The tests share one project (registry, models, index) and run
in file order: each starts from what the previous left."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.integration.pipeline_support import child_env, run_conf, slice_env

COLDREC = str(Path(sys.executable).with_name("coldrec"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_datasets_dir):
    base = tmp_path_factory.mktemp("pipeline")
    env = slice_env(base)
    return {"base": base, "env": env, "conf": run_conf(env), "home": Path(env["COLDREC_HOME"])}


@pytest.fixture(scope="module")
def shared_datasets_dir():
    from tests.conftest import SHARED

    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    return SHARED


def coldrec(project, *args, env: dict | None = None, check: bool = True, timeout: float = 900):
    r = subprocess.run([COLDREC, *map(str, args)], env=child_env({**project["env"], **(env or {})}), capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"coldrec {' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def pipeline_args(conf: dict) -> list[str]:
    return ["pipeline", "run", "--dataset", conf["dataset"], "--events", conf["events"], "--items", conf["items"],
            "--users", conf["users"]]


def report(project) -> dict:
    return json.loads((project["home"] / "reports" / "pipeline" / "orslice" / "latest.json").read_text())


def states(doc: dict) -> dict[str, str]:
    return {t["task"]: t["state"] for t in doc["tasks"]}


def registry(project):
    from coldrec.release.model_registry import Registry

    return Registry(project["env"]["COLDREC_REGISTRY"])


def current(project) -> str:
    return (project["home"] / "artifacts" / "models" / "orslice" / "current").read_text().strip()


def params_file(project, name: str, overrides: dict) -> str:
    from coldrec.core.params import with_overrides

    base = yaml.safe_load((project["home"] / "params.yaml").read_text())
    f = project["base"] / f"{name}.yaml"
    f.write_text(yaml.safe_dump(with_overrides(base, overrides), sort_keys=False))
    return str(f)


def test_first_run_trains_gates_registers_and_promotes(project):
    r = coldrec(project, *pipeline_args(project["conf"]))
    doc = report(project)
    assert set(states(doc).values()) == {"success"}, r.stdout
    assert doc["outcome"].startswith("promoted v0.0.1")
    reg = registry(project)
    prod = reg.production("orslice")
    assert prod is not None and prod.version == "v0.0.1" and prod.model_version == doc["candidate"] == current(project)
    lineage = prod.lineage
    for key in ("data_fingerprint", "params", "metrics", "code_version", "trained_until", "gate"):
        assert lineage.get(key) is not None, key
    assert lineage["parent"] is None and lineage["gate"]["passed"] is True
    # the candidate was trained before the gate's cut: it has not seen the shoppers it is judged on
    events = pd.read_csv(project["conf"]["events"], parse_dates=["timestamp"])
    assert pd.Timestamp(lineage["trained_until"]) < events["timestamp"].max()
    assert (project["home"] / "reports" / "pipeline" / "orslice" / (Path(doc["path"]).stem + ".html")).is_file()
    listed = coldrec(project, "models", "list", "--dataset", "orslice").stdout
    assert "v0.0.1" in listed and "prod" in listed


def test_rerun_on_unchanged_data_changes_nothing(project):
    before = registry(project).entries("orslice")
    coldrec(project, *pipeline_args(project["conf"]))
    doc = report(project)
    assert set(states(doc).values()) == {"success"}
    assert doc["outcome"].startswith("production unchanged")
    assert registry(project).entries("orslice") == before


def test_worse_candidate_is_not_promoted(project):
    # every blend weight 0: the candidate ranks the catalogue in an arbitrary order
    worse = params_file(project, "worse", {"model": {"grid": [0.0]}})
    prod_before = current(project)
    coldrec(project, *pipeline_args(project["conf"]), env={"COLDREC_PARAMS": worse})
    doc = report(project)
    assert set(states(doc).values()) == {"success"}  # a refused candidate is a normal outcome
    assert doc["outcome"].startswith("not promoted")
    g = doc["gate"]
    assert g["passed"] is False and g["candidate_value"] < g["production_value"] - 0.005
    assert "below production" in " ".join(g["reasons"])
    assert current(project) == prod_before
    reg = registry(project)
    assert reg.production_version("orslice") == "v0.0.1"
    refused = reg.get("orslice", doc["candidate"])
    assert refused.version == "v0.0.2" and refused.lineage["gate"]["passed"] is False
    assert refused.lineage["parent"] == prod_before
    r = coldrec(project, "models", "promote", "v0.0.2", "--dataset", "orslice", check=False)
    assert r.returncode == 2 and "failed its promotion gate" in r.stderr
    assert current(project) == prod_before


def test_bad_data_stops_at_the_quality_gate(project):
    bad = project["base"] / "bad" / "orslice"
    bad.mkdir(parents=True)
    events = pd.read_csv(project["conf"]["events"])
    events.loc[events.index[::3], "item_id"] = "NOT-IN-CATALOGUE"  # a third of the events: critical
    events.to_csv(bad / "events.csv", index=False)
    conf = {**project["conf"], "events": str(bad / "events.csv")}
    before = (registry(project).entries("orslice"), current(project))
    r = coldrec(project, *pipeline_args(conf), check=False)
    assert r.returncode == 1
    doc = report(project)
    s = states(doc)
    assert s["validate"] == "failed" and s["train"] == "upstream_failed" and s["promote"] == "upstream_failed"
    assert doc["outcome"].startswith("failed at validate")
    assert (registry(project).entries("orslice"), current(project)) == before


def _task_state(project, task: str) -> str | None:
    db = Path(project["env"]["COLDREC_DATA_DIR"]) / "airflow" / "airflow.db"
    try:
        with sqlite3.connect(db, timeout=5) as c:
            row = c.execute("select state from task_instance where task_id = ? order by start_date desc limit 1",
                            (task,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_a_task_killed_mid_training_reruns_to_completion(project):
    changed = params_file(project, "shrink", {"model": {"knn_shrink": 11.0}})
    env = child_env({**project["env"], "COLDREC_PARAMS": changed})
    before = (registry(project).entries("orslice"), current(project))
    models = project["home"] / "artifacts" / "models" / "orslice"
    versions_before = {p.name for p in models.iterdir()}
    proc = subprocess.Popen([COLDREC, *pipeline_args(project["conf"])], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while _task_state(project, "train") != "running":
            assert proc.poll() is None and time.time() < deadline, "the run ended before training started"
            time.sleep(0.5)
        time.sleep(3)  # mid-fit
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # nothing partial: no new version directory, nothing registered, production as it was
    assert {p.name for p in models.iterdir() if not p.name.startswith(".")} == {
        n for n in versions_before if not n.startswith(".")}
    assert (registry(project).entries("orslice"), current(project)) == before
    r = subprocess.run([COLDREC, *pipeline_args(project["conf"])], env=env, capture_output=True, text=True, timeout=900)
    doc = report(project)
    assert set(states(doc).values()) == {"success"}, r.stdout[-2000:]
    entries = registry(project).entries("orslice")
    assert [e.model_version for e in entries].count(doc["candidate"]) == 1
    assert not [p for p in models.iterdir() if ".tmp-" in p.name]


def _serve(project, port: int):
    return coldrec(project, "serve", "--detach", "--port", port, "--dataset", "orslice", timeout=300)


def _served_version(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", data=b"{}", timeout=10) as r:
        return json.loads(r.read())["model_version"]


def test_rollback_restores_the_previous_version_end_to_end(project):
    from coldrec.runtime import item_index
    from serving.launch import free_port

    reg = registry(project)
    before = reg.production("orslice")  # v0.0.1, or the killed run's candidate if its gate passed
    port = free_port()
    _serve(project, port)
    try:
        assert _served_version(port) == before.model_version
        coldrec(project, "models", "promote", "v0.0.2", "--dataset", "orslice", "--force")
        deadline = time.time() + 60
        v2 = reg.get("orslice", "v0.0.2").model_version
        while _served_version(port) != v2:
            assert time.time() < deadline, "the service did not follow the promotion"
            time.sleep(0.5)
        coldrec(project, "models", "rollback", "--dataset", "orslice")
        assert reg.production_version("orslice") == before.version
        assert current(project) == before.model_version
        deadline = time.time() + 60
        while _served_version(port) != before.model_version:
            assert time.time() < deadline, "the service did not follow the rollback"
            time.sleep(0.5)
        uri = (Path(project["env"]["COLDREC_DATA_DIR"]) / "milvus" / "coldrec.db.server").read_text().strip()
        c = item_index.client(uri)
        assert item_index.aliased(c, item_index.alias_name("orslice")) == item_index.collection_name("orslice", current(project))
    finally:
        coldrec(project, "serve", "--stop", check=False)
    # stopped: the index file is no longer advertised, the next process opens it itself
    assert not (Path(project["env"]["COLDREC_DATA_DIR"]) / "milvus" / "coldrec.db.server").exists()


def test_two_promotions_at_once_one_wins(project, monkeypatch):
    from coldrec.release import promotion
    from coldrec.release.model_registry import Busy

    for k, v in project["env"].items():
        monkeypatch.setenv(k, v)
    reg = registry(project)
    candidates = [e.version for e in reg.entries("orslice") if e.version != reg.production_version("orslice")][:2]
    assert len(candidates) == 2
    history = reg.assignments("orslice")
    inside = threading.Barrier(2, timeout=60)
    real_prepare = promotion._prepare

    def slow_prepare(*a, **k):  # the first promotion holds the lock while the second arrives
        out = real_prepare(*a, **k)
        inside.wait()
        return out

    monkeypatch.setattr(promotion, "_prepare", slow_prepare)
    results: dict[str, object] = {}

    def go(version: str):
        try:
            # an index file of its own: this process must not hold the project's Milvus Lite file
            # (one process per file), which the DAG runs of the next test open
            results[version] = promotion.promote("orslice", version, _params(project), force=True, registry=reg,
                                                 uri=str(project["base"] / "milvus-concurrent" / "coldrec.db"))
        except Busy as exc:
            results[version] = exc
            inside.wait()
        except Exception as exc:  # shown by the assertion below, with its message
            results[version] = exc

    threads = [threading.Thread(target=go, args=(v,)) for v in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    won = [v for v, r in results.items() if isinstance(r, dict)]
    lost = [v for v, r in results.items() if isinstance(r, Busy)]
    assert len(won) == 1 and len(lost) == 1, results
    assert "in progress" in str(results[lost[0]])
    assert reg.assignments("orslice") == [*history, won[0]]
    assert reg.production_version("orslice") == won[0]
    assert current(project) == reg.get("orslice", won[0]).model_version


def _params(project) -> dict:
    from coldrec.core.config import load_params

    return load_params(project["env"]["COLDREC_PARAMS"])


def _dag(project, dag_id: str, conf: dict) -> dict:
    code = ("import json, sys; from coldrec.orchestration.airflow_local import run; from coldrec.core.errors import ColdrecError\n"
            "try: print(json.dumps(run(json.loads(sys.argv[1]), dag_id=sys.argv[2])))\n"
            "except ColdrecError as e: print(json.dumps({'error': str(e)}))")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(conf), dag_id], env=child_env(project["env"]),
                       capture_output=True, text=True, timeout=600)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_promote_and_rollback_dags(project):
    reg = registry(project)
    prod = reg.production_version("orslice")
    other = next(e for e in reg.entries("orslice") if e.version != prod)
    done = _dag(project, "coldrec_promote", {"dataset": "orslice", "version": other.version, "force": True})
    assert done.get("state") == "success", done
    assert reg.production_version("orslice") == other.version and current(project) == other.model_version
    back = _dag(project, "coldrec_rollback", {"dataset": "orslice"})
    assert back.get("state") == "success", back
    assert reg.production_version("orslice") == prod and current(project) == reg.get("orslice", prod).model_version
    # the version comes from the run conf and is validated: a malformed one never reaches the registry
    bad = _dag(project, "coldrec_promote", {"dataset": "orslice", "version": "prod; rm -rf /"})
    assert "error" in bad and "version" in bad["error"], bad
    assert reg.production_version("orslice") == prod
