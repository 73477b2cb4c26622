"""What the DAG files in ``dags/`` share: default task arguments from ``params.yaml`` (retries with
exponential backoff, timeouts), the validated ``dataset``/``version`` run parameters, the assets,
and the glue that turns a task's results into the run report.

Why here and not in ``dags/``: Airflow puts the DAGs folder on ``sys.path`` and parses every file
in it; shared code in the installed package is importable the same way by the scheduler, the
dag-processor and a Celery worker on another machine.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, get_current_context

from coldrec.core.config import load_params
from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed

_P = typed(load_params())
PIPELINE = _P.pipeline
DEFAULT_DATASET = _P.data.default_dataset

DEFAULTS = {
    "owner": "coldrec",
    "retries": PIPELINE.retries,
    "retry_delay": timedelta(minutes=PIPELINE.retry_delay_minutes),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=PIPELINE.max_retry_delay_minutes),
    "execution_timeout": timedelta(minutes=PIPELINE.task_timeout_minutes),
}

# new events for the default dataset (`coldrec data prepare` writes them; an external loader can
# post an asset event through Airflow's REST API): a retrain starts without waiting for the schedule
EVENTS = Asset(name="coldrec_events", uri=f"file://coldrec/data/{DEFAULT_DATASET}/events")
MODEL = Asset(name="coldrec_production_model", uri=f"file://coldrec/models/{DEFAULT_DATASET}/production")

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def file_param(what: str) -> Param:
    """A new Param per key: Airflow stores the run's value in the Param object, so one object shared
    by several keys would give them all the last value."""
    return Param("", type="string", maxLength=4096,
                 description=f"Own data instead of a shipped dataset: path of a canonical-schema {what} file (else empty)")


def dataset_param() -> Param:
    return Param(DEFAULT_DATASET, type="string", pattern=NAME, description="Dataset whose model to retrain")


def version_param() -> Param:
    return Param(type="string", pattern=r"^v[0-9A-Za-z.-]{1,60}$",
                 description="Registered version: v0.0.N or its model directory v-<hash>")


def conf_of() -> dict[str, Any]:
    """The run's data (coldrec.orchestration.retrain.source): the validated params of this run."""
    p = get_current_context()["params"]
    return {k: p.get(k) or None for k in ("dataset", "events", "items", "users")}


def dataset_of() -> str:
    from coldrec.orchestration.retrain import dataset_name

    return dataset_name(conf_of())


def fail_clearly(fn, *args: Any) -> Any:
    """A ColdrecError (bad data, a missing version) fails the task with its one-line message and no
    retry; anything else propagates and is retried (a killed worker, a full disk), and so is a
    registry lock held by another promotion (it will be free shortly)."""
    import time

    from airflow.sdk.exceptions import AirflowFailException

    from coldrec.release.model_registry import Busy

    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Busy:
        raise
    except ColdrecError as exc:
        raise AirflowFailException(str(exc)) from None
    return {**out, "task_seconds": round(time.perf_counter() - t0, 1)} if isinstance(out, dict) else out


def write_run_report() -> dict[str, Any]:
    """The report task: every step's result (XCom) and state in this run, written by coldrec.orchestration.retrain."""
    from coldrec.orchestration import retrain as pipeline

    ctx = get_current_context()
    ti, run_id = ctx["ti"], ctx["run_id"]
    results = {t: ti.xcom_pull(task_ids=t) for t in pipeline.STEPS}
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id], task_ids=list(pipeline.STEPS)).get(run_id, {})
    doc = pipeline.write_report(dataset_of(), run_id, results, {k: str(v) for k, v in states.items()})
    failed = [t["task"] for t in doc["tasks"] if t["state"] in ("failed", "upstream_failed")]
    if failed:  # the report is written; the run itself must read as failed (this task is its last)
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{doc['outcome']} (failed: {', '.join(failed)}; report: {doc['path']})")
    return {"outcome": doc["outcome"], "path": doc["path"]}
