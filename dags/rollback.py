"""``coldrec_rollback`` (manual): put back the version that was production before the current one,
end to end (registry, item collection alias, the served model). Conf: ``{"dataset": ...}``."""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from coldrec.orchestration.dag_support import DEFAULTS, MODEL, dataset_of, dataset_param, fail_clearly


@dag(dag_id="coldrec_rollback", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args={**DEFAULTS, "retries": 0}, tags=["coldrec"], doc_md=__doc__, params={"dataset": dataset_param()})
def coldrec_rollback():
    @task(outlets=[MODEL])
    def rollback() -> dict:
        from coldrec.orchestration import stages

        return fail_clearly(lambda: stages.rollback(dataset_of()).to_dict())

    rollback()


coldrec_rollback()
