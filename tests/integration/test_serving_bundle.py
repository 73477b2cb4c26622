"""The Bento: `coldrec bundle`'s build packs the service and a version's model (BentoML model
store), and `bentoml serve <tag>` answers from it with no checkout settings (a fresh BentoML home,
no COLDREC_MODEL: the Bento says which model)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from serving.launch import free_port
from tests.conftest import ROOT
from tests.integration.serving_support import call, server_process


def test_bento_builds_and_serves_its_version(server, tmp_path):
    version = server["base"] / "models" / "shop" / "v1"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    env.pop("COLDREC_MODEL", None)
    code = ("import json, sys; from pathlib import Path; from coldrec.release.bundle import build_bento; "
            "print(json.dumps(build_bento(Path(sys.argv[1]), 'shop', Path(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(version), str(ROOT)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["model"] == "coldrec-shop:v1" and info["bento"].startswith("coldrec:")
    bento_dir = tmp_path / "bentoml" / "bentos" / "coldrec" / info["bento"].split(":")[1]
    src = {p.name for p in (bento_dir / "src").iterdir()}
    assert {"coldrec", "serving", "params.yaml"} <= src and not {"research", "tests", "data"} & src
    stored = tmp_path / "bentoml" / "models" / "coldrec-shop" / "v1"
    assert (stored / "encoder_int8" / "model.onnx").is_file() and not (stored / "encoder").exists()  # no fp32 encoder

    env.update(COLDREC_MILVUS_URI=str(tmp_path / "milvus" / "b.db"), COLDREC_FEAST_REPO="", COLDREC_DATA_DIR=str(tmp_path / "d"))
    env.pop("COLDREC_API_KEY", None)
    argv = [sys.executable, "-m", "bentoml", "serve", info["bento"], "--host", "127.0.0.1", "--port", str(free_port())]
    with server_process(argv, env, tmp_path / "bento.log", cwd=tmp_path) as url:
        status, body = call(url, "/recommend", {"recent_items": ["i0"], "k": 2}, key=None)
    assert status == 200 and body["model_version"] == "v1" and len(body["items"]) == 2, body
