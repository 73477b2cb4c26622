"""Process layout of ``coldrec serve``: the BentoML server, and Milvus Lite in a process of its own.

Why a separate Milvus process: Milvus Lite is pure Python and runs its search loop in whatever
process opens the ``.db``. In the service's own process it shares one GIL with the request
threads, so a 2-core machine serves on one core; as a ``milvus-lite server`` child (bound to
127.0.0.1 only: it has no auth) it searches on the other core, and several BentoML workers can
share one data directory (Milvus Lite allows one process per directory). The measured effect is
in benchmarks/README.md. A Milvus server URI (``http://...``) is used as given.

``detach``: both processes start in their own sessions, their pids go to a pid file, and the
call returns once ``/readyz`` answers; ``stop`` ends them by those pids.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from coldrec.core import paths
from coldrec.core.config import settings
from coldrec.core.errors import ColdrecError
from coldrec.core.params import Params

# One BLAS / OpenMP thread per process: requests run on threads of their own, and a 2-thread BLAS
# under concurrent requests (or beside the Milvus process) oversubscribes the cores: a 20k x 384
# mat-vec took 8 ms with 2 threads vs 2.2 ms with 1 on the loaded 2-core machine.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


SERVER_SUFFIX = ".server"  # kept in step with coldrec.core.paths.milvus_uri


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SINGLE_THREADED, **os.environ, **(extra or {})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def advertise(db: str | Path) -> Path:
    """The file beside a Milvus Lite ``.db`` naming the server process that holds it."""
    return Path(str(db) + SERVER_SUFFIX)


def start_milvus_lite(data_dir: str, log: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """``milvus-lite server`` for one data directory on a free loopback port; its URI."""
    Path(data_dir).parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", data_dir, "--host", "127.0.0.1",
                             "--port", str(port)], env=_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise ColdrecError(f"milvus-lite server for {data_dir} exited with {proc.returncode} (see {log})")
        if _port_open(port):
            url = f"http://127.0.0.1:{port}"
            # other processes (a pipeline run, `coldrec models promote`) must reach this one process
            # instead of opening the .db themselves: paths.milvus_uri() reads this file
            advertise(data_dir).write_text(url, encoding="utf-8")
            return proc, url
        time.sleep(0.1)
    stop_process(proc)
    raise ColdrecError(f"milvus-lite server for {data_dir} did not listen within {timeout:.0f} s (see {log})")


def start_bentoml(host: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    if _port_open(port):
        raise ColdrecError(f"port {port} is already in use: pick another with --port")
    argv = [sys.executable, "-m", "bentoml", "serve", "serving.service:Coldrec", "--host", host, "--port", str(port),
            "--working-dir", env["COLDREC_HOME"]]
    return subprocess.Popen(argv, env=_env(env), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(url: str, procs: list[subprocess.Popen], timeout: float, log: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise ColdrecError(f"the service exited with {p.returncode} before it was ready (see {log})")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ColdrecError(f"the service was not ready within {timeout:.0f} s (see {log})")


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def serve(host: str, port: int, env: dict[str, str], log: Path, lite_process: bool = True, detach: bool = False,
          pidfile: Path | None = None, ready_timeout: float = 300) -> str:
    """Start the service (and its Milvus Lite process); with ``detach`` return its URL once ready,
    else block until it exits or this process is told to stop, then stop both."""
    log.parent.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    db = None  # the Milvus Lite file whose server this call starts (advertised while it runs)
    try:
        uri = env["COLDREC_MILVUS_URI"]
        if lite_process and uri.endswith(".db"):
            milvus, env["COLDREC_MILVUS_URI"] = start_milvus_lite(uri, log)
            procs.append(milvus)
            db = uri
        procs.append(start_bentoml(host, port, env, log))
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        wait_ready(url, procs, ready_timeout, log)
        if detach:
            if pidfile is not None:
                pidfile.write_text(json.dumps({"pids": [p.pid for p in procs], "url": url, "log": str(log),
                                               "milvus_db": db}))
            procs, db = [], None  # they outlive this call
            return url
        print(f"ready: {url} (log: {log}); Ctrl-C stops it", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        bad = [p for p in procs if p.returncode not in (0, None)]
        if bad:
            raise ColdrecError(f"the service stopped with exit code {bad[0].returncode} (see {log})")
        return url
    except KeyboardInterrupt:
        return ""
    finally:
        for p in reversed(procs):
            stop_process(p)
        if db is not None:
            advertise(db).unlink(missing_ok=True)


def stop(pidfile: Path) -> list[int]:
    """End a detached service by the pids it recorded; the pids that were still running."""
    if not pidfile.is_file():
        raise ColdrecError(f"{pidfile}: no detached service recorded (nothing to stop)")
    try:
        doc = json.loads(pidfile.read_text())
        pids = [int(p) for p in doc["pids"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ColdrecError(f"{pidfile}: unreadable ({exc}); stop the processes by hand") from None
    stopped = []
    for pid in reversed(pids):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.time() + 20
    for pid in stopped:
        while time.time() < deadline:
            try:
                os.killpg(pid, 0)
                time.sleep(0.2)
            except ProcessLookupError:
                break
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if doc.get("milvus_db"):
        advertise(doc["milvus_db"]).unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    return stopped


def service_env(params: Params, dataset: str | None = None, version: str | None = None,
                milvus_uri: str | None = None) -> dict[str, str]:
    """The environment the service reads (serving/service.py): which models, which index, which
    feature store. Checked here, so ``coldrec serve`` fails with a clear message, not a server log."""
    from coldrec.runtime.version import SERVING_FILES, check_files

    dataset = dataset or params.data.default_dataset
    models = paths.models_dir(dataset)
    model = models / version if version else models
    if version:
        if not model.is_dir():
            raise ColdrecError(f"--version {version}: no such version in {models}")
        check_files(model, SERVING_FILES)
    else:
        paths.current_version(models)
    repo = paths.feast_repo_dir(dataset, params.features.online_store)
    return {"COLDREC_MODEL": str(model), "COLDREC_DATASET": dataset, "COLDREC_MILVUS_URI": milvus_uri or paths.milvus_uri(),
            "COLDREC_FEAST_REPO": str(repo) if (repo / "feature_store.yaml").exists() else "",
            "COLDREC_HOME": str(settings().root)}
