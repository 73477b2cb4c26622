"""A real coldrec HTTP server for the serving tests: a BentoML process on loopback, a real int8
model version (two copies, v1 current and v2 to promote), a real Milvus Lite collection and a
real Feast SQLite online store, on small generated data. It requires an API key: every helper
call sends it unless told not to."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from coldrec.runtime.recommender import TrainData
from serving.launch import free_port
from tests.conftest import ROOT, make_items, params_with
from tests.unit.test_model import TINY_OVERRIDES, _shop_events, _shop_users

KEY = "test-key-" + uuid.uuid4().hex[:8]
TINY = params_with(TINY_OVERRIDES)


def _versions(base: Path) -> Path:
    """Two versions of one int8 model (v1 current, v2 a copy to promote) and a Feast store."""
    from coldrec.core.paths import set_current
    from coldrec.data.dataset import from_files
    from coldrec.feature_store.compute import build_feature_tables
    from coldrec.feature_store.materialization import materialize
    from coldrec.feature_store.repo import apply, render_repo
    from training import methods
    from training.model.artifacts import save_model

    events, items, users = _shop_events(), make_items(8), _shop_users()
    events.to_csv(base / "events.csv", index=False)
    items.to_csv(base / "items.csv", index=False)
    users.to_csv(base / "users.csv", index=False)
    ds = from_files(base / "events.csv", base / "items.csv", base / "users.csv", name="shop")
    build_feature_tables(ds, base / "features", TINY)
    repo = render_repo(base / "repo", project=f"crserve_{uuid.uuid4().hex[:8]}", online="sqlite")
    materialize(apply(repo, base / "features"))

    model = methods.make("coldrec", TINY).fit(TrainData.build(ds.events, ds.items, seed=3, users=ds.users))
    # the tiny data tunes the query bucket to nothing (all items score 0); a query blend on the
    # encoder makes text matches testable (a new item's own text must find it)
    model.weights["query"] = {"enc": 1.0, "qknn": 0.5}
    models = base / "models" / "shop"
    save_model(model, models / "v1", "fp-test", TINY)
    shutil.copytree(models / "v1", models / "v2")
    set_current(models, "v1")
    # a real registry (GTO tags) with both versions, v1 in production: the web page's model view reads it
    from coldrec.release.model_registry import Registry
    from coldrec.release.promotion import lineage

    reg = Registry(base / "registry").ensure()
    for v in ("v1", "v2"):
        reg.register("shop", v, lineage(models / v, None, "v1" if v == "v2" else None))
    reg.assign_production("shop", "v0.0.1", "test fixture")
    return repo


def call(base: str, route: str, body=None, key: str | None = KEY, raw: bytes | None = None,
         headers: dict | None = None, method: str = "POST") -> tuple[int, dict | list | str]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {}), **(headers or {})}
    req = urllib.request.Request(base + route, data=data, headers=h, method=method if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        text, status = e.read().decode(), e.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


@contextmanager
def server_process(argv: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None):
    """A BentoML server process on loopback, yielded once /readyz answers 200; stopped (its whole
    process group) on the way out."""
    log = open(log_path, "w")
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    port = argv[argv.index("--port") + 1]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if call(url, "/readyz", key=None)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("server not ready in 180 s:\n" + log_path.read_text()[-3000:])
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@contextmanager
def running_server(base: Path):
    repo = _versions(base)
    env = {**os.environ, "COLDREC_MODEL": str(base / "models" / "shop"), "COLDREC_DATASET": "shop",
           "COLDREC_MILVUS_URI": str(base / "milvus" / "coldrec.db"), "COLDREC_FEAST_REPO": str(repo),
           "COLDREC_API_KEY": KEY, "COLDREC_DATA_DIR": str(base / "data"), "COLDREC_REGISTRY": str(base / "registry")}
    argv = [sys.executable, "-m", "bentoml", "serve", "serving.service:Coldrec", "--host", "127.0.0.1",
            "--port", str(free_port()), "--working-dir", str(ROOT)]
    with server_process(argv, env, base / "server.log") as url:
        yield {"url": url, "base": base, "log": base / "server.log"}
