"""Airflow scaled out: real ``api-server``, ``scheduler``, ``dag-processor`` and ``celery worker``
processes, the metadata DB on PostgreSQL, CeleryExecutor on a Redis broker (see airflow_cluster).
Skips, with the reason, where PostgreSQL or Redis does not answer."""
from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from tests.integration.airflow_cluster import airflow_cluster, cluster_or_skip, process_tree

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(1800)]

PROBE_DAG = '''
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import psutil
from airflow.sdk import dag, get_current_context, task

OUT = Path({out!r})


def _record(name: str) -> dict:
    """Where this task ran: its pid, every ancestor pid with its command line, the host."""
    me = psutil.Process()
    info = {{"task": name, "pid": os.getpid(), "hostname": socket.getfqdn(),
            "ancestors": [{{"pid": p.pid, "cmdline": " ".join(p.cmdline())}} for p in me.parents()],
            "conf": dict(get_current_context()["dag_run"].conf or {{}})}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{{name}}.json").write_text(json.dumps(info))
    return info


@dag(dag_id="coldrec_celery_probe", schedule=None, catchup=False, tags=["test"])
def coldrec_celery_probe():
    @task
    def first() -> int:
        return _record("first")["pid"]

    @task
    def second(upstream_pid: int) -> None:
        info = _record("second")
        info["upstream_pid"] = upstream_pid
        (OUT / "second.json").write_text(json.dumps(info))

    second(first())


coldrec_celery_probe()
'''


def test_tasks_run_on_the_celery_worker(tmp_path: Path):
    """A two-task DAG triggered through the REST API runs both tasks in the Celery worker's
    process tree (not the scheduler's), passes XCom between them through the metadata DB, and the
    task instances show the cluster's own queue."""
    cluster_or_skip()
    dags, out = tmp_path / "dags", tmp_path / "out"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG.format(out=str(out)))
    with airflow_cluster(tmp_path / "cluster", dags) as af:
        run = af.run_dag("coldrec_celery_probe", {"probe": 1}, timeout=240)
        tis = af.task_instances("coldrec_celery_probe", run["dag_run_id"])
        assert run["state"] == "success", f"{run}\n{tis}\n{af.diagnostics()}"
        assert {k: v["state"] for k, v in tis.items()} == {"first": "success", "second": "success"}

        worker, scheduler = af.procs["celery-worker"].pid, af.procs["scheduler"].pid
        first, second = (json.loads((out / f"{n}.json").read_text()) for n in ("first", "second"))
        for rec in (first, second):
            ancestors = [a["pid"] for a in rec["ancestors"]]
            assert worker in ancestors, f"task {rec['task']} did not run under the Celery worker: {rec}"
            assert scheduler not in ancestors and rec["pid"] not in {scheduler, worker}
            assert rec["conf"] == {"probe": 1}
            ti = tis[rec["task"]]
            assert ti["queue"] == af.queue and ti["hostname"] and ti["pid"] == rec["pid"], ti
        assert second["upstream_pid"] == first["pid"]  # XCom crossed processes via the DB

        # the worker log names the Airflow Celery task it received and ran
        worker_log = af.logs["celery-worker"].read_text(errors="replace")
        for name in ("first", "second"):
            assert f"task_id={name}/" in worker_log, worker_log[-3000:]
        started = [psutil.Process(pid) for p in af.procs.values() for pid in process_tree(p.pid)]
    # every process the cluster started is gone: the four, their pools, servers and task supervisors
    alive = [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"


def test_retrain_dag_runs_on_the_cluster(tmp_path: Path, shared_datasets):
    """The real ``coldrec_retrain`` DAG, triggered through the REST API with a run conf, runs on a
    small slice of real data with every task in the Celery worker: it trains, gates, registers
    and promotes v0.0.1, and every task instance shows the cluster's queue."""
    cluster_or_skip()
    from coldrec.orchestration.retrain import STEPS
    from coldrec.release.model_registry import Registry
    from tests.integration.pipeline_support import child_env, run_conf, slice_env

    # no cron run of its own when the DAG is unpaused: only the run this test triggers
    env = slice_env(tmp_path / "slice", {"pipeline": {"schedule": None}})
    conf, home = run_conf(env), Path(env["COLDREC_HOME"])
    with airflow_cluster(tmp_path / "cluster", home / "dags", env, inherit=child_env({})) as af:
        run = af.run_dag("coldrec_retrain", conf, timeout=1500)
        af.pause("coldrec_retrain")  # its prepare task's asset event queues another retrain: not here
        tis = af.task_instances("coldrec_retrain", run["dag_run_id"])
        states = {k: v["state"] for k, v in tis.items()}
        assert run["state"] == "success", f"{states}\n{af.diagnostics()}"
        assert states == dict.fromkeys([*STEPS, "report"], "success"), states
        worker_log = af.logs["celery-worker"].read_text(errors="replace")
        for name, ti in tis.items():
            assert ti["queue"] == af.queue and ti["hostname"], (name, ti)
            assert ti["pid"] not in {p.pid for p in af.procs.values()}, (name, ti)
            # the Celery worker received this task's workload and ran it
            assert f"task_id={name}/" in worker_log, (name, worker_log[-3000:])

    doc = json.loads((home / "reports" / "pipeline" / "orslice" / "latest.json").read_text())
    assert doc["tasks"] and all(t["state"] == "success" for t in doc["tasks"]), doc
    assert doc["outcome"].startswith("promoted v0.0.1"), doc["outcome"]
    prod = Registry(env["COLDREC_REGISTRY"]).production("orslice")
    assert prod is not None and prod.version == "v0.0.1"
    assert (home / "artifacts" / "models" / "orslice" / "current").read_text().strip() == prod.model_version
