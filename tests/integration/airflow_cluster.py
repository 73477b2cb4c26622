"""A real Airflow 3 deployment for the scale-out tests, the way a team runs it on several machines:
separate ``api-server``, ``scheduler``, ``dag-processor`` and ``celery worker`` processes, the
metadata DB on PostgreSQL (a fresh database per cluster, dropped at the end), CeleryExecutor on a
Redis broker (a queue of its own), everything bound to 127.0.0.1.

What every process must share (on several machines as here):

* ``AIRFLOW__API_AUTH__JWT_SECRET``: the scheduler signs each task's execution-API token with it and
  the api-server checks it; two secrets give "Invalid auth token: Signature verification failed"
  in the worker's task log and the task never runs.
* ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``: where a task on a worker reports its state (it
  defaults to localhost:8080, a wrong port here and a wrong host on another machine).
* the metadata DB, the broker, the result backend, ``[operators] default_queue``, the dags folder,
  the fernet key and the api secret key.

Where PostgreSQL or Redis does not answer, or the Celery provider is not installed,
:func:`cluster_or_skip` skips with the reason. Every process is started in a session of its own
and stopped, with all its descendants, by pid on the way out, even when the test failed.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Where the services are: the machine's own PostgreSQL (trust auth) and Redis by default.
POSTGRES = os.environ.get("COLDREC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BROKER = os.environ.get("COLDREC_TEST_CELERY_BROKER", "redis://127.0.0.1:6379/7")
TERMINAL = {"success", "failed"}
PROCESSES = ("api-server", "scheduler", "dag-processor", "celery-worker")


def _answers(url: str, default_port: int) -> str | None:
    """None when something accepts a TCP connection at the URL's host:port, else the reason."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({type(exc).__name__}: {exc})"


def cluster_or_skip() -> None:
    """Skip (visibly, with the reason) unless PostgreSQL, Redis and the Celery provider are there."""
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"Airflow scale-out needs the 'scale' extra (celery provider, psycopg2): {exc}")
    for what, url, port in (("PostgreSQL ($COLDREC_TEST_POSTGRES)", POSTGRES, 5432),
                            ("Redis broker ($COLDREC_TEST_CELERY_BROKER)", BROKER, 6379)):
        reason = _answers(url, port)
        if reason:
            pytest.skip(f"{what}: {reason}; Airflow CeleryExecutor test skipped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_db(url: str, db: str) -> str:
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))


def _admin_sql(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(POSTGRES, connect_timeout=5)
    try:
        conn.autocommit = True  # CREATE / DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextmanager
def _database() -> Iterator[str]:
    """A fresh PostgreSQL database for one cluster's metadata; dropped (connections and all) after."""
    name = f"airflow_{uuid.uuid4().hex[:8]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_queue(queue: str) -> None:
    """Remove what the cluster's queue left in the broker: the queue, its exchange bindings, and any
    message of it still in kombu's unacked hash (a task the worker was stopped in the middle of)."""
    import redis

    with suppress(Exception):
        r = redis.Redis.from_url(BROKER, socket_timeout=5)
        for key in r.scan_iter(match=f"*{queue}*"):
            r.delete(key)
        for tag, raw in r.hscan_iter("unacked"):
            with suppress(ValueError, TypeError, IndexError):
                if queue in json.loads(raw)[1:3]:  # [message, exchange, routing_key]
                    r.hdel("unacked", tag)
                    r.zrem("unacked_index", tag)
        r.close()


def process_tree(pid: int) -> list[int]:
    """pid and all its live descendants (children first-level and deeper)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return [pid] + [c.pid for c in p.children(recursive=True)]
    except psutil.Error:
        return []


def _stop(procs: dict[str, subprocess.Popen], warm: bool, grace: float = 15.0) -> None:
    """Stop every process this module started, by pid: if ``warm``, first the Celery worker's main
    process alone (a warm shutdown: it finishes and acks its tasks, then stops its pool), then every process group
    (each process was started in a session of its own) and any descendant that left its group;
    SIGKILL for whatever is still there after ``grace`` seconds."""
    import psutil

    pids: set[int] = set()
    for proc in procs.values():
        pids.update(process_tree(proc.pid))
    worker = procs.get("celery-worker")
    if warm and worker is not None and worker.poll() is None:
        with suppress(ProcessLookupError):
            worker.terminate()
        with suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=grace)
    for proc in procs.values():
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + grace
    for proc in procs.values():
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.time()))
    for proc in procs.values():
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    survivors = []
    for pid in pids:
        with suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                survivors.append(p)
    for p in survivors:
        with suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(survivors, timeout=10)
    for proc in procs.values():
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


@dataclass
class AirflowCluster:
    url: str
    base: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen]
    logs: dict[str, Path]
    queue: str
    database: str
    password: str
    _token: str | None = field(default=None, repr=False)

    # --- REST API v2 (JWT from the simple auth manager's /auth/token) --------------------------
    def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            status, body = self._http("POST", "/auth/token", {"username": "admin", "password": self.password}, auth=False)
            assert status == 201, f"/auth/token answered {status}: {body}"
            self._token = body["access_token"]
        return self._token

    def _http(self, method: str, route: str, body=None, auth: bool = True) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.url + route, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api(self, method: str, route: str, body=None) -> tuple[int, object]:
        """A call to the REST API (route under /api/v2); a token is renewed once on 401."""
        status, out = self._http(method, "/api/v2" + route, body)
        if status == 401:
            self.token(renew=True)
            status, out = self._http(method, "/api/v2" + route, body)
        return status, out

    # --- processes and logs ---------------------------------------------------------------------
    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}\n{self.diagnostics()}")

    def diagnostics(self, chars: int = 2500) -> str:
        """Tails of every process log and every task log: what an assertion message needs."""
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"----- {name} ({path}) -----\n{text[-chars:]}")
        for path in sorted((self.base / "airflow" / "logs").rglob("*.log")):
            if "dag_processor" not in path.parts and "scheduler" not in path.parts:
                parts.append(f"----- task log {path} -----\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def task_log_text(self, dag_id: str, run_id: str | None = None) -> str:
        """All task log files of a DAG (of one run if given), as written by the worker."""
        texts = []
        for path in sorted((self.base / "airflow" / "logs").rglob("*.log")):
            s = str(path)
            if f"dag_id={dag_id}" in s and (run_id is None or f"run_id={run_id}" in s):
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def worker_tasks(self) -> tuple[set[str], set[str]]:
        """Celery task ids the worker received, and those it finished (from its log)."""
        text = self.logs["celery-worker"].read_text(errors="replace") if self.logs["celery-worker"].exists() else ""
        received = set(re.findall(r"Task execute_workload\[([0-9a-f-]+)\] received", text))
        done = set(re.findall(r"Task execute_workload\[([0-9a-f-]+)\] (?:succeeded|failed|raised)", text))
        return received, done

    def wait_worker_idle(self, timeout: float = 60) -> bool:
        """Wait until every Celery task the worker received has finished (a task's supervisor
        lingers a few seconds after Airflow already shows the task instance as done)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            received, done = self.worker_tasks()
            if received <= done or self.procs["celery-worker"].poll() is not None:
                return True
            time.sleep(0.5)
        return False

    # --- DAGs and runs ---------------------------------------------------------------------------
    def import_errors(self) -> list[dict]:
        status, out = self.api("GET", "/importErrors")
        assert status == 200, out
        return out["import_errors"]

    def wait_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Wait until the dag-processor has parsed and serialized ``dag_id``; unpause it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            status, dag = self.api("GET", f"/dags/{dag_id}")
            if status == 200:
                if dag.get("is_paused"):
                    status, dag = self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
                    assert status == 200, dag
                return dag
            errors = self.import_errors()
            if errors:
                raise AssertionError(f"DAG import errors: {json.dumps(errors, indent=1)[:4000]}")
            time.sleep(1)
        raise AssertionError(f"DAG {dag_id} not parsed in {timeout:.0f} s\n{self.diagnostics()}")

    def pause(self, dag_id: str, paused: bool = True) -> None:
        """Pause a DAG (no new run starts: a scheduled or asset-triggered one waits)."""
        status, out = self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})
        assert status == 200, out

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        status, run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        assert status == 200, f"trigger {dag_id} answered {status}: {run}"
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        """Poll the run until it is success or failed; return it (a dict from the API)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            status, run = self.api("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")
            assert status == 200, run
            if run["state"] in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(f"run {dag_id}/{run_id} not finished in {timeout:.0f} s\n{self.diagnostics()}")

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 300) -> dict:
        """Trigger ``dag_id`` with ``conf`` and wait for its terminal state."""
        self.wait_dag(dag_id)
        return self.wait_run(dag_id, self.trigger(dag_id, conf), timeout)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        """task_id -> task instance (state, hostname, pid, queue, executor, try_number, ...)."""
        status, out = self.api("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=1000")
        assert status == 200, out
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti
                for ti in out["task_instances"]}


def _wait_ready(cluster: AirflowCluster, timeout: float) -> None:
    """api-server answers, scheduler and dag-processor heartbeat, the Celery worker is ready."""
    deadline = time.time() + timeout
    worker_log = cluster.logs["celery-worker"]
    health: object = None
    while time.time() < deadline:
        cluster.check_alive()
        try:
            status, health = cluster._http("GET", "/api/v2/monitor/health", auth=False)
        except OSError:
            status = 0
        healthy = status == 200 and all(
            (health.get(k) or {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "dag_processor"))
        worker_ready = worker_log.exists() and " ready." in worker_log.read_text(errors="replace")
        if healthy and worker_ready:
            return
        time.sleep(1)
    raise AssertionError(f"Airflow cluster not ready in {timeout:.0f} s (health: {health})\n{cluster.diagnostics()}")


def cluster_env(base: Path, dags_folder: Path, database: str, queue: str, port: int, password_file: Path) -> dict[str, str]:
    """The AIRFLOW__* settings every process of one cluster shares."""
    from cryptography.fernet import Fernet

    meta = _with_db(POSTGRES, database)
    sync = meta.replace("postgresql://", "postgresql+psycopg2://", 1)
    home = base / "airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sync,
        # the api-server also opens an async engine: asyncpg, from the same URL
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta.replace("postgresql://", "postgresql+asyncpg://", 1),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": base64.b64encode(secrets.token_bytes(16)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # >= 64 bytes: tokens are HS512
        "AIRFLOW__CELERY__BROKER_URL": BROKER,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # a task unacked this long is redelivered (run twice): longer than any task may take
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


@contextmanager
def airflow_cluster(base: Path, dags_folder: Path, env: dict[str, str] | None = None,
                    inherit: dict[str, str] | None = None, ready_timeout: float = 240) -> Iterator[AirflowCluster]:
    """Start a four-process Airflow on PostgreSQL + Celery/Redis; yield it once every process is
    ready; stop every process by pid and drop the database on the way out.

    Every process's environment: ``inherit`` (default: this process's environment) without any
    AIRFLOW* variable, then the cluster's own AIRFLOW__* settings, then ``env`` (so a test can
    override one). The processes' logs are ``base/<name>.log``, Airflow's own under ``base/airflow``."""
    cluster_or_skip()
    base.mkdir(parents=True, exist_ok=True)
    port, queue, password = free_port(), f"coldrec_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    password_file = base / "simple_auth_passwords.json"
    password_file.write_text(json.dumps({"admin": password}))
    procs: dict[str, subprocess.Popen] = {}
    files = []
    warm = False
    with _database() as database:
        inherited = {k: v for k, v in (os.environ if inherit is None else inherit).items() if not k.startswith("AIRFLOW")}
        full_env = {**inherited, **cluster_env(base, dags_folder, database, queue, port, password_file), **(env or {})}
        airflow = [sys.executable, "-m", "airflow"]
        logs = {name: base / f"{name}.log" for name in ("db-migrate", *PROCESSES)}
        try:
            with open(logs["db-migrate"], "w") as log:
                rc = subprocess.run([*airflow, "db", "migrate"], env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=600, start_new_session=True).returncode
            assert rc == 0, f"airflow db migrate failed:\n{logs['db-migrate'].read_text()[-4000:]}"
            argv = {
                "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                "scheduler": ["scheduler", "--skip-serve-logs"],
                "dag-processor": ["dag-processor"],
                # no log server (it would bind 0.0.0.0:8793); the logs are on this disk anyway
                "celery-worker": ["celery", "worker", "--skip-serve-logs", "--concurrency", "2", "--queues", queue,
                                  "--celery-hostname", f"{queue}@%h", "--without-mingle", "--without-gossip"],
            }
            for name in PROCESSES:
                f = open(logs[name], "w")
                files.append(f)
                procs[name] = subprocess.Popen([*airflow, *argv[name]], env=full_env, cwd=base, stdout=f,
                                               stderr=subprocess.STDOUT, start_new_session=True)
            cluster = AirflowCluster(url=f"http://127.0.0.1:{port}", base=base, env=full_env, procs=procs, logs=logs,
                                     queue=queue, database=database, password=password)
            _wait_ready(cluster, ready_timeout)
            yield cluster
            # the test passed: let the worker finish (and ack) what it runs; on a failure, stop at once
            warm = cluster.wait_worker_idle(timeout=30)
        finally:
            _stop(procs, warm)
            for f in files:
                f.close()
            _drop_queue(queue)
