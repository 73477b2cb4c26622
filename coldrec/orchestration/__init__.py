"""Layer 7, orchestration: the stage API every entry point calls (:mod:`.stages`), the retrain
run's steps and report (:mod:`.retrain`), and what the Airflow DAGs share (:mod:`.dag_support`,
:mod:`.airflow_local`).
"""
