"""`coldrec data prepare` on the user's own files: output, errors as one line + exit 2, and
no partial output (a failed run leaves an earlier good output untouched)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import ROOT


def test_prepare_own_files_writes_canonical_parquet(cli, small_files, tmp_path):
    out = tmp_path / "prepared"
    res = cli("data", "prepare", "--events", small_files["events"], "--items", small_files["items"],
              "--users", small_files["users"], "--out", out)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [".coldrec", "events.parquet", "items.parquet", "manifest.json", "users.parquet"]
    ev = pd.read_parquet(out / "events.parquet")
    assert len(ev) == 49 and ev["user_id"].nunique() == 6
    assert "users" in res.output and "49" in res.output


def test_failed_prepare_leaves_previous_output_untouched(cli, small_files, tmp_path):
    out = tmp_path / "prepared"
    assert cli("data", "prepare", "--events", small_files["events"], "--items", small_files["items"], "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.csv"
    df = pd.read_csv(small_files["events"])
    df.loc[10, "event_type"] = "teleport"
    df.to_csv(bad, index=False)
    res = cli("data", "prepare", "--events", bad, "--items", small_files["items"], "--out", out)
    assert res.exit_code == 2
    assert "unknown event type 'teleport'" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepared")]  # no temp dirs left


def test_argument_mistakes_are_clear(cli, small_files):
    res = cli("data", "prepare", "--dataset", "online-retail", "--events", small_files["events"], "--items", small_files["items"])
    assert res.exit_code == 2 and "either --dataset NAME or --events/--items" in res.output
    res = cli("data", "prepare", "--events", small_files["events"])
    assert res.exit_code == 2 and "--events and --items go together" in res.output
    res = cli("data", "prepare", "--dataset", "no-such-set")
    assert res.exit_code == 2 and "unknown dataset 'no-such-set'" in res.output


def test_installed_command_prints_one_line_and_no_traceback(small_files, tmp_path):
    exe = Path(sys.executable).with_name("coldrec")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    env = {**os.environ}
    proc = subprocess.run([str(exe), "data", "prepare", "--events", str(empty), "--items", str(small_files["items"]),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0] == f"error: {empty}: file is empty"
    assert not (tmp_path / "o").exists()
