"""`dvc repro` with dvc.yaml as shipped, on the real online-retail data, in a scratch git + DVC project:

- one repro runs prepare -> validate -> features -> train (+ quantize) -> evaluate for the dataset
  and writes its metrics;
- a second repro runs nothing (`dvc status` clean, no output file touched);
- the default remote of .dvc/config takes a `dvc push`;
- `dvc exp run -S model.knn_shrink=...` records an experiment, and `dvc exp show` / `dvc metrics diff`
  give the product's cold-start NDCG@10 for the baseline and the experiment.

The project holds copies of what the stages depend on (DVC hashes them; the stages run these copies,
as in a fresh clone: PYTHONPATH points at them) and a params.yaml with tiny settings (pretrained
encoder, two methods, 100 test users) so the tier stays fast. The raw file is the real one: a cut of
it would fail its published sha256 check (coldrec/data/datasets/fetch.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SHARED, params_with
from tests.unit.test_model import TINY_OVERRIDES

DATASET = "online-retail"
STAGES = [f"{s}@{DATASET}" for s in ("prepare", "validate", "features", "train", "evaluate")]
METRICS = f"reports/evaluation/{DATASET}/metrics.json"
EXP_NAME = "shrink-20"
FAST = {
    "model": {"finetune": {"enabled": False}, "max_validation_users": 100, "arrival_days": [None]},
    "evaluation": {"methods": ["popularity", "coldrec"], "bootstrap": 20, "max_test_users": 100},
    "quantize": {"fidelity_max_texts": 100},
}
BIN = Path(sys.executable).parent


def _dep_roots() -> set[str]:
    """Top-level files and folders the stages depend on (besides their own outputs)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {Path(d).parts[0] for spec in stages.values() for d in (spec.get("do") or spec)["deps"] if "${" not in d}


class Project:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env
        self.first: subprocess.CompletedProcess | None = None  # the first `dvc repro`

    def run(self, *args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, f"{' '.join(args)} -> {res.returncode}\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
        return res

    def dvc(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, **kw)

    def dvc_json(self, *args: str):
        return json.loads(self.dvc(*args, "--json").stdout)

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout.strip()

    def outputs(self) -> dict[str, tuple[int, int]]:
        """(mtime_ns, size) of every file the pipeline wrote, and of dvc.lock."""
        files = [self.root / "dvc.lock"]
        for top in ("data", "reports", "artifacts"):
            files += [p for p in (self.root / top).rglob("*") if p.is_file()]
        return {str(p.relative_to(self.root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in files}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """The scratch project after its first `dvc repro` of the dataset's stages (the output is kept)."""
    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    base = tmp_path_factory.mktemp("dvc-repro")
    root = base / "project"
    root.mkdir()
    for name in sorted(_dep_roots()) + ["dvc.yaml", ".gitignore", ".dvcignore"]:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params_with(TINY_OVERRIDES, FAST), sort_keys=False), encoding="utf-8")

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLDREC_", "DVC_", "GIT_")) and k != "PYTHONDONTWRITEBYTECODE"}  # __pycache__ as in a checkout
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(root),  # the stages run the code DVC hashed, as in a checkout
        COLDREC_HOME=str(root),
        COLDREC_RAW_DATA_DIR=str(SHARED),
        COLDREC_CACHE_DIR=str(base / "cache"),
        COLDREC_MILVUS_URI=str(base / "milvus" / "coldrec.db"),
        DVC_NO_ANALYTICS="1",
        DVC_STUDIO_OFFLINE="1",
        DVC_SITE_CACHE_DIR=str(base / "dvc-site"),
        DVC_GLOBAL_CONFIG_DIR=str(base / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(base / "dvc-system"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    p = Project(root, env)
    p.git("init", "-q", "-b", "main")
    p.git("config", "user.name", "coldrec test")
    p.git("config", "user.email", "test@coldrec.invalid")
    p.dvc("init", "-q")
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")  # the project's default remote
    p.git("add", "-A")
    p.git("commit", "-q", "-m", "project")
    p.first = p.dvc("repro", *STAGES)
    return p


def test_repro_runs_every_stage_of_one_dataset_and_writes_metrics(project):
    out = project.first.stdout
    ran = [s for s in STAGES if f"Running stage '{s}'" in out]
    assert ran == STAGES, out[-4000:]
    pos = {s: out.index(f"Running stage '{s}'") for s in STAGES}
    assert pos["prepare@online-retail"] < pos["validate@online-retail"] < pos["train@online-retail"]
    assert pos["prepare@online-retail"] < min(pos["features@online-retail"], pos["evaluate@online-retail"])
    assert "movielens-small" not in out

    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))
    assert sorted(lock["stages"]) == sorted(STAGES)
    root = project.root
    assert all((root / "data" / DATASET / f"{t}.parquet").is_file() for t in ("events", "items", "users"))
    assert json.loads((root / "reports" / "validation" / DATASET / "result.json").read_text(encoding="utf-8"))
    assert any((root / "data" / "features" / DATASET).iterdir())
    versions = list((root / "artifacts" / "models" / DATASET).glob("*/encoder_int8/model.onnx"))
    assert len(versions) == 1, "train + quantize write one version with its int8 encoder"

    doc = json.loads((root / METRICS).read_text(encoding="utf-8"))
    assert doc["dataset"] == DATASET and {r["method"] for r in doc["results"]} == {"popularity", "coldrec"}
    shown = project.dvc_json("metrics", "show")[""]["data"][METRICS]
    assert "error" not in shown, shown
    assert shown["data"]["dataset"] == DATASET


def test_second_repro_runs_nothing(project):
    before = project.outputs()
    assert project.dvc_json("status", *STAGES) == {}
    again = project.dvc("repro", *STAGES)
    assert "Running stage" not in again.stdout, again.stdout[-4000:]
    for s in STAGES:
        assert f"Stage '{s}' didn't change, skipping" in again.stdout
    assert "Data and pipelines are up to date." in again.stdout
    assert project.dvc_json("status", *STAGES) == {}
    assert project.outputs() == before, "a no-op repro touched an output"


def test_push_to_the_default_remote(project):
    storage = project.root / ".dvc-storage"  # ../.dvc-storage relative to .dvc/
    assert project.dvc("remote", "list").stdout.split()[:2] == ["local", str(storage)]
    project.dvc("push", *STAGES)
    assert any(p.is_file() for p in storage.rglob("*")), "dvc push wrote nothing to the remote"
    assert project.dvc_json("status", "--cloud", *STAGES) == {}
    assert project.run("git", "check-ignore", "-q", ".dvc-storage", check=False).returncode == 0, "the remote is git-ignored"


def _flat(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _coldrec_ndcg(metrics: dict) -> dict[str, float]:
    """The product's NDCG@10 numbers among a metrics file's values as DVC reads them."""
    return {k: v for k, v in _flat(metrics) if "ndcg@10" in k and "coldrec" in k.split(".")}


def _numbers(values, doc: dict) -> None:
    """Every value is a number, one of the metrics document's own coldrec NDCG@10 rows."""
    rows = [r["value"] for r in doc["results"] + doc["overall"] if r["method"] == "coldrec" and r["metric"] == "ndcg@10"]
    for v in values:
        assert isinstance(v, int | float) and not isinstance(v, bool), values
        assert any(abs(v - r) < 1e-4 for r in rows), (v, rows)


def _exp_rows(doc: list) -> list[dict]:
    rows = []
    for row in doc:
        rows.append(row)
        for exp in row.get("experiments") or []:
            rows += exp.get("revs") or []
    return rows


def test_experiment_shows_cold_start_ndcg_for_baseline_and_experiment(project):
    base_doc = json.loads((project.root / METRICS).read_text(encoding="utf-8"))
    project.git("add", "-A")  # what a developer commits after a repro (.gitignore decides)
    project.git("commit", "-q", "-m", "baseline")
    baseline = project.git("rev-parse", "HEAD")
    base_shrink = params_with(TINY_OVERRIDES, FAST)["model"]["knn_shrink"]
    shrink = base_shrink * 2

    # evaluate refits every method on its split, so the sweep re-evaluates without retraining the version
    exp = project.dvc("exp", "run", "-n", EXP_NAME, "-S", f"model.knn_shrink={shrink}", STAGES[-1])
    assert f"Running stage '{STAGES[-1]}'" in exp.stdout and "Running stage 'train@" not in exp.stdout
    exp_doc = json.loads((project.root / METRICS).read_text(encoding="utf-8"))
    stale = project.dvc_json("status", STAGES[3])  # DVC knows the trained version predates the change
    changed = {k: v for entry in stale.get(STAGES[3], []) for k, v in entry.get("changed deps", {}).items()}
    assert changed.get("params.yaml") == {"model": "modified"}, stale

    rows = {r["rev"]: r for r in _exp_rows(project.dvc_json("exp", "show"))}
    named = {r["name"]: r for r in rows.values() if r.get("name")}
    assert baseline in rows and EXP_NAME in named, sorted(rows)
    for row, doc, knn_shrink in ((rows[baseline], base_doc, base_shrink), (named[EXP_NAME], exp_doc, shrink)):
        data = row["data"]
        assert data["params"]["params.yaml"]["data"]["model"]["knn_shrink"] == knn_shrink
        metrics = data["metrics"][METRICS]
        assert "error" not in metrics, (row["rev"], metrics)
        ndcg = _coldrec_ndcg(metrics["data"])
        assert ndcg, f"{row['rev']}: no coldrec NDCG@10 among the metrics DVC reads: {sorted(dict(_flat(metrics['data'])))}"
        _numbers(ndcg.values(), doc)

    diff = project.dvc_json("metrics", "diff", "--all")  # HEAD (baseline) -> workspace (the experiment, applied)
    changes = _coldrec_ndcg(diff.get(METRICS, {}))
    assert changes, diff
    olds = [v for k, v in changes.items() if k.endswith(".old")]
    news = [v for k, v in changes.items() if k.endswith(".new")]
    assert olds and news, changes
    _numbers(olds, base_doc)
    _numbers(news, exp_doc)
