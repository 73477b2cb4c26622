"""``coldrec pipeline run``: the ``coldrec_retrain`` DAG run in process by Airflow itself
(``dag.test()``), on an embedded SQLite metadata database in the data dir; no scheduler needed.

Why a child process: Airflow reads its configuration (AIRFLOW_HOME, the database URL) when it is
first imported, so the parent sets the environment and runs ``python -m coldrec.orchestration.airflow_local``.
The DAG, its tasks and the run report are exactly those a scheduler would run.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from coldrec.core import paths
from coldrec.core.config import settings
from coldrec.core.errors import ColdrecError

DAG_ID = "coldrec_retrain"


def airflow_env(home: Path | None = None) -> dict[str, str]:
    """The embedded configuration (a user's own AIRFLOW__* settings win)."""
    home = home or paths.airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    secret = home / "jwt_secret"
    if not secret.is_file():
        secret.write_text(secrets.token_hex(32), encoding="utf-8")
    env = {"AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__DAGS_FOLDER": str(paths.dags_dir()),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__API_AUTH__JWT_SECRET": secret.read_text(encoding="utf-8").strip(),
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return {**env, **{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}, "COLDREC_HOME": str(settings().root)}


def run(conf: dict, home: Path | None = None, dag_id: str = DAG_ID) -> dict:
    """Migrate the metadata DB (idempotent), run the DAG once with ``conf`` (its params: dataset,
    or own files; for coldrec_promote also version, force), return the run's state and, for the
    retrain DAG, its report."""
    env = {**os.environ, **airflow_env(home)}
    mig = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    if mig.returncode != 0:
        raise ColdrecError(f"airflow db migrate failed: {(mig.stderr or mig.stdout)[-1500:]}")
    out = Path(env["AIRFLOW_HOME"]) / "last_run.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "coldrec.orchestration.airflow_local", "--conf", json.dumps(conf), "--out", str(out),
                           "--dag", dag_id], env=env)
    if not out.is_file():
        raise ColdrecError(f"the {DAG_ID} run ended without a result (exit {proc.returncode}); see the output above")
    result = json.loads(out.read_text(encoding="utf-8"))
    if result.get("error"):
        raise ColdrecError(result["error"])
    return result


def _main() -> None:  # the child process
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--dag", default=DAG_ID)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    result: dict = {}
    if bag.import_errors:
        result["error"] = "DAG import errors: " + "; ".join(f"{f}: {e.splitlines()[-1]}" for f, e in bag.import_errors.items())
    elif a.dag not in bag.dags:
        result["error"] = f"no DAG {a.dag!r} (found: {', '.join(sorted(bag.dags))})"
    else:
        conf = json.loads(a.conf)
        try:
            dr = bag.dags[a.dag].test(run_conf=conf)
        except Exception as exc:  # noqa: BLE001 - e.g. a run parameter that fails its Param: one line, no traceback
            result["error"] = f"{a.dag}: {type(exc).__name__}: {exc}"
        else:
            from coldrec.orchestration.retrain import dataset_name

            report = paths.pipeline_report_dir(dataset_name(conf)) / "latest.json"
            result = {"run_id": dr.run_id, "state": str(dr.state),
                      "report": json.loads(report.read_text(encoding="utf-8"))
                      if a.dag == DAG_ID and report.is_file() else None}
    Path(a.out).write_text(json.dumps(result, default=str), encoding="utf-8")


if __name__ == "__main__":
    _main()
