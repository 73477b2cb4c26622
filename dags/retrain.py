"""``coldrec_retrain``: validate -> features -> train -> quantize -> gate -> register -> index ->
bundle -> promote (if the gate passed), then the run report.

Thin on purpose: every task is one call into :mod:`coldrec.orchestration.retrain` (the same stage functions the
CLI and dvc.yaml run). Settings come from the environment (COLDREC_HOME, COLDREC_DATA_DIR,
COLDREC_PARAMS, COLDREC_MILVUS_URI), so a Celery worker on another machine runs the same thing.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from coldrec.orchestration.dag_support import DEFAULTS, EVENTS, MODEL, PIPELINE, conf_of, dataset_param, fail_clearly, file_param

schedule = (AssetOrTimeSchedule(timetable=CronTriggerTimetable(PIPELINE.schedule, timezone="UTC"), assets=[EVENTS])
            if PIPELINE.schedule else [EVENTS])


@dag(dag_id="coldrec_retrain", schedule=schedule, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args=DEFAULTS, dagrun_timeout=timedelta(minutes=PIPELINE.run_timeout_minutes),
     params={"dataset": dataset_param(), "events": file_param("events"), "items": file_param("items"),
             "users": file_param("users")}, tags=["coldrec"],
     doc_md=__doc__)
def coldrec_retrain():
    @task  # no outlet: the events asset is produced outside (a loader), or every run would trigger the next
    def prepare() -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.prepare, conf_of())

    @task(retries=0)
    def validate(_: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.validate, conf_of(), get_current_context().get("ds"))  # no retry: the data will not change

    @task
    def features(_: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.features, conf_of())

    @task
    def train(_: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.train, conf_of())

    @task
    def quantize(t: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.quantize, conf_of(), t["version"])

    @task
    def gate(t: dict, _: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.gate, conf_of(), t["version"])

    @task
    def register(t: dict, _: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.register, conf_of(), t["version"])

    @task
    def index(t: dict, _: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.index, conf_of(), t["version"])

    @task
    def bundle(t: dict, _: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.bundle, conf_of(), t["version"])

    @task(outlets=[MODEL])
    def promote(t: dict, g: dict, _b: dict, _f: dict) -> dict:
        from coldrec.orchestration import retrain as pipeline

        return fail_clearly(pipeline.promote, conf_of(), t["version"], g)

    @task(trigger_rule="all_done")
    def report() -> dict:
        from coldrec.orchestration.dag_support import write_run_report

        return write_run_report()

    p = prepare()
    v = validate(p)
    f = features(v)
    t = train(v)
    q = quantize(t)
    g = gate(t, q)
    r = register(t, g)
    i = index(t, r)
    b = bundle(t, i)
    done = promote(t, g, b, f)
    done >> report()


coldrec_retrain()
