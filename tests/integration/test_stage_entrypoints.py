"""One stage, three entry points: the stage API, the CLI and `dvc repro` write the same output,
and a second `dvc repro` with nothing changed runs nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd


def _tables(d: Path) -> dict:
    out = {name: pd.read_parquet(d / f"{name}.parquet") for name in ("events", "items", "users")}
    out["manifest"] = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    return out


def _same(a: dict, b: dict) -> None:
    assert a["manifest"] == b["manifest"]
    for name in ("events", "items", "users"):
        pd.testing.assert_frame_equal(a[name], b[name])


def test_prepare_is_the_same_from_the_stage_api_the_cli_and_dvc(small_files, cli, tmp_path):
    from coldrec.orchestration import stages

    api = stages.prepare(stages.Source(events=small_files["events"], items=small_files["items"],
                                       users=small_files["users"]), out=tmp_path / "api")
    assert api.path == tmp_path / "api" and api.summary["events"] == len(pd.read_csv(small_files["events"]))
    assert json.loads(json.dumps(api.to_dict()))["fingerprint"] == api.detail.fingerprint()  # what a DAG task returns
    res = cli("data", "prepare", "--events", small_files["events"], "--items", small_files["items"],
              "--users", small_files["users"], "--out", tmp_path / "cli")
    assert res.exit_code == 0, res.output

    repo = tmp_path / "repo"
    shutil.copytree(small_files["events"].parent, repo / "byod")  # same folder name: same dataset name
    (repo / "dvc.yaml").write_text(
        "stages:\n  prepare:\n    cmd: coldrec data prepare --events byod/events.csv --items byod/items.csv"
        " --users byod/users.csv --out out\n    deps: [byod]\n    outs: [out]\n", encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = [str(Path(sys.executable).parent / "dvc")]
    run = lambda *a: subprocess.run(dvc + list(a), cwd=repo, env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    assert run("init", "--no-scm", "-q").returncode == 0
    first = run("repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'prepare'" in first.stdout

    ref = _tables(api.path)
    _same(ref, _tables(tmp_path / "cli"))
    _same(ref, _tables(repo / "out"))
    assert (repo / "dvc.lock").is_file()

    second = run("repro")
    assert second.returncode == 0 and "Running stage" not in second.stdout
    assert "didn't change" in second.stdout or "up to date" in second.stdout
    _same(ref, _tables(repo / "out"))
