"""The DAG files: Airflow parses them without errors, and they say what the pipeline promises
(order, retries, timeouts, validated run parameters)."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dagbag_imports_every_dag_without_errors(bag):
    assert bag.import_errors == {}
    assert set(bag.dags) == {"coldrec_retrain", "coldrec_promote", "coldrec_rollback"}


def test_retrain_runs_the_steps_in_order(bag):
    from coldrec.orchestration.retrain import STEPS

    dag = bag.dags["coldrec_retrain"]
    assert {t.task_id for t in dag.tasks} == {*STEPS, "report"}

    def upstream(task_id: str) -> set[str]:
        seen, todo = set(), [task_id]
        while todo:
            for u in dag.get_task(todo.pop()).upstream_task_ids:
                if u not in seen:
                    seen.add(u)
                    todo.append(u)
        return seen

    assert upstream("train") == {"prepare", "validate"}
    assert {"validate", "train", "quantize", "gate", "register", "index", "bundle", "features"} <= upstream("promote")
    assert "promote" in upstream("report") and dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("validate").retries == 0  # bad data is not retried


def test_retrain_schedule_retries_and_timeouts_come_from_params(bag):
    from coldrec.core.config import load_params
    from coldrec.core.params import typed

    p = typed(load_params()).pipeline
    dag = bag.dags["coldrec_retrain"]
    assert dag.catchup is False and dag.max_active_runs == 1
    # daily by cron, and at once when new events land (the asset)
    assert "coldrec_events" in str(dag.timetable.asset_condition)
    assert p.schedule == "@daily" and dag.timetable.timetable.expression == "0 0 * * *"
    train = dag.get_task("train")
    assert train.retries == p.retries and train.retry_exponential_backoff
    assert train.execution_timeout.total_seconds() == p.task_timeout_minutes * 60
    assert dag.dagrun_timeout.total_seconds() == p.run_timeout_minutes * 60


@pytest.mark.parametrize("dag_id, conf, ok", [
    ("coldrec_retrain", {"dataset": "online-retail"}, True),
    ("coldrec_retrain", {"dataset": "../etc"}, False),
    ("coldrec_promote", {"dataset": "online-retail", "version": "v0.0.3"}, True),
    ("coldrec_promote", {"dataset": "online-retail", "version": "v-0123abcd"}, True),
    ("coldrec_promote", {"dataset": "online-retail"}, False),  # version required
    ("coldrec_promote", {"dataset": "online-retail", "version": "prod; rm -rf /"}, False),
    ("coldrec_promote", {"dataset": "online-retail", "version": "v0.0.3", "force": "yes"}, False),
])
def test_run_parameters_are_validated(bag, dag_id, conf, ok):
    import copy

    params = copy.deepcopy(bag.dags[dag_id].params)  # a Param keeps the value it was given
    if ok:
        params.update(conf)
        params.validate()
    else:
        with pytest.raises(Exception):  # noqa: B017 - Airflow raises ParamValidationError (a ValueError subclass)
            params.update(conf)
            params.validate()


def test_run_report_says_what_happened(tmp_path, monkeypatch):
    from coldrec.orchestration import retrain as pipeline

    monkeypatch.setenv("COLDREC_HOME", str(tmp_path))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    gate = {"passed": False, "reasons": ["candidate NDCG@10 at k=3 0.1000 is below production 0.2000"],
            "production": "v-old", "ndcg@10": {"candidate": {"3": 0.1}, "production": {"3": 0.2}}}
    results = {"train": {"version": "v-new", "task_seconds": 12.5}, "gate": gate,
               "promote": {"promoted": False, "reasons": gate["reasons"]}}
    doc = pipeline.write_report("shop", "manual__1", results, {t: "success" for t in pipeline.STEPS})
    assert doc["outcome"].startswith("not promoted: candidate NDCG@10")
    assert [t["seconds"] for t in doc["tasks"] if t["task"] == "train"] == [12.5]
    html = (tmp_path / "reports" / "pipeline" / "shop" / "manual__1.html").read_text()
    assert "not promoted" in html and "0.2" in html
    failed = pipeline.write_report("shop", "manual__2", {}, {"prepare": "success", "validate": "failed"})
    assert failed["outcome"] == "failed at validate: production unchanged"


def test_retrain_does_not_trigger_itself(bag):
    """Its schedule listens to the events asset; a task emitting that asset would queue the next
    run from every run (the scale-out test caught it)."""
    dag = bag.dags["coldrec_retrain"]
    produced = {getattr(o, "name", None) for t in dag.tasks for o in t.outlets}
    assert "coldrec_events" not in produced and "coldrec_production_model" in produced
