"""``coldrec_promote`` (manual): make a registered version production. Conf: ``{"dataset": ...,
"version": "v0.0.N" | "v-<hash>", "force": false}``. A version whose gate failed is refused unless
``force``; the switch is atomic (coldrec.release.promotion)."""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

from coldrec.orchestration.dag_support import DEFAULTS, MODEL, dataset_of, dataset_param, fail_clearly, version_param


@dag(dag_id="coldrec_promote", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args={**DEFAULTS, "retries": 0}, tags=["coldrec"], doc_md=__doc__,
     params={"dataset": dataset_param(), "version": version_param(),
             "force": Param(False, type="boolean", description="Promote even if the version failed its gate")})
def coldrec_promote():
    @task(outlets=[MODEL])
    def promote() -> dict:
        from coldrec.orchestration import stages

        p = get_current_context()["params"]
        return fail_clearly(lambda: stages.promote(dataset_of(), version=p["version"], force=bool(p["force"]),
                                                   reason="manual (coldrec_promote DAG)").to_dict())

    promote()


coldrec_promote()
