"""The output rule and bad arguments, through the real `coldrec` command (a subprocess per case).

Each case asserts the exit code, that the message names what is wrong, that no traceback is
printed, and that every file that existed before the command still exists, unchanged (except
the output a successful case was asked to write). Input-side cases (malformed files) are in
test_bad_inputs.py; together they are issue 15's table.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, make_events, make_items, params_with


@dataclass
class Case:
    id: str
    args: list[str]  # {box} is the sandbox folder
    rc: int
    says: str  # a substring of the output (stdout + stderr)
    setup: Callable[[Path], None] = lambda box: None
    changes: tuple[str, ...] = ()  # sandbox paths the command may create or change (relative)
    check: Callable[[Path], None] = lambda box: None
    env: dict[str, str] = field(default_factory=dict)
    cwd_repo: bool = False  # run in the checkout instead of the sandbox (paths relative to the repo)


def _mine(box: Path) -> None:
    (box / "mine").mkdir()
    (box / "mine" / "notes.txt").write_text("my own notes")
    (box / "mine" / "sub").mkdir()
    (box / "mine" / "sub" / "data.csv").write_text("a,b\n1,2\n")


def _good_metrics(box: Path) -> None:
    (box / "report").mkdir()
    (box / "report" / ".coldrec").write_text("{}")
    (box / "report" / "metrics.json").write_text('{"good": true}')


def _mismatched(box: Path) -> None:
    """Events whose item ids match no catalogue item (ints vs 'i<n>' strings)."""
    ev = make_events(n_users=30)
    ev["item_id"] = ev["item_id"].str.replace("i", "", regex=False)
    (box / "mismatch").mkdir()
    ev.to_csv(box / "mismatch" / "events.csv", index=False)
    make_items().to_csv(box / "mismatch" / "items.csv", index=False)


def _named_like_shipped(box: Path) -> None:
    (box / "online-retail").mkdir()
    make_events().to_csv(box / "online-retail" / "events.csv", index=False)
    make_items().to_csv(box / "online-retail" / "items.csv", index=False)


def _stale(box: Path) -> None:
    (box / ".fresh.tmp-999999-dead").mkdir()  # left by a run that was killed (pid 999999 is gone)
    (box / ".fresh.tmp-999999-dead" / "events.parquet").write_text("half")


def _params(raw: str) -> Callable[[Path], None]:
    def write(box: Path) -> None:
        (box / "params.yaml").write_text(raw)
    return write


def _params_set(section: str, key: str, value) -> Callable[[Path], None]:
    """params.yaml with one value set as is (not validated here: the command must catch it)."""
    def write(box: Path) -> None:
        p = params_with()
        p[section][key] = value
        (box / "params.yaml").write_text(yaml.safe_dump(p))
    return write


def _unknown_key_params(box: Path) -> None:
    p = params_with()
    p["model"]["knn_shrnk"] = 5
    (box / "params.yaml").write_text(yaml.safe_dump(p))


def _bad_mode_params(box: Path) -> None:
    p = params_with()
    p["quantize"]["mode"] = "fp4"
    (box / "params.yaml").write_text(yaml.safe_dump(p))


def _missing_key_params(box: Path) -> None:
    p = params_with()
    del p["quantize"]["opset"]
    (box / "params.yaml").write_text(yaml.safe_dump(p))


OWN = ["--events", "{box}/byod/events.csv", "--items", "{box}/byod/items.csv", "--users", "{box}/byod/users.csv"]
PARAMS_ENV = {"COLDREC_PARAMS": "{box}/params.yaml"}

CASES = [
    # --- outputs that belong to someone else -------------------------------------------------------
    Case("prepare-out-user-folder", ["data", "prepare", *OWN, "--out", "{box}/mine"], 2,
         "mine: exists and was not written by coldrec (holds notes.txt, sub)", _mine),
    Case("prepare-out-is-input-folder", ["data", "prepare", *OWN, "--out", "{box}/byod"], 2,
         "byod: contains an input of this command"),
    Case("prepare-out-is-input-file", ["data", "prepare", *OWN, "--out", "{box}/byod/events.csv"], 2,
         "events.csv: is an input of this command"),
    Case("prepare-out-is-a-file", ["data", "prepare", *OWN, "--out", "{box}/afile.txt"], 2,
         "afile.txt: is a file, not a directory", lambda b: (b / "afile.txt").write_text("keep")),
    Case("prepare-out-cwd", ["data", "prepare", *OWN, "--out", "."], 2, "contains an input of this command"),
    Case("prepare-out-parent-is-file", ["data", "prepare", *OWN, "--out", "{box}/afile.txt/out"], 2,
         "afile.txt is a file, so no directory can be made below it", lambda b: (b / "afile.txt").write_text("keep")),
    Case("prepare-out-unwritable", ["data", "prepare", *OWN, "--out", "/proc/coldrec-out"], 2,
         "/proc/coldrec-out: cannot create anything in /proc"),
    Case("prepare-out-under-input-file", ["data", "prepare", *OWN, "--out", "{box}/byod/events.csv/x"], 2,
         "events.csv is a file, so no directory can be made below it"),
    Case("prepare-folder-named-like-shipped", ["data", "prepare", "--events", "{box}/online-retail/events.csv",
                                               "--items", "{box}/online-retail/items.csv"], 2,
         "your files' folder is named 'online-retail', like the shipped dataset", _named_like_shipped),
    Case("prepare-force-replaces-user-folder", ["data", "prepare", *OWN, "--out", "{box}/mine", "--force"], 0,
         "wrote", _mine, changes=("mine",), check=lambda b: (b / "mine" / ".coldrec").is_file()),
    Case("prepare-twice-replaces-own-output", ["data", "prepare", *OWN, "--out", "{box}/done"], 0, "wrote",
         lambda b: subprocess.run(_argv(["data", "prepare", *OWN, "--out", "{box}/done"], b), capture_output=True,
                                  check=True, env=_env(b, {})), changes=("done",)),
    Case("prepare-cleans-a-killed-runs-temp-folder", ["data", "prepare", *OWN, "--out", "{box}/fresh"], 0, "wrote",
         _stale, changes=("fresh", ".fresh.tmp-999999-dead"),
         check=lambda b: not (b / ".fresh.tmp-999999-dead").exists()),
    Case("validate-out-is-input-folder", ["validate", *OWN, "--out", "{box}/byod"], 2, "contains an input"),
    Case("validate-out-user-folder", ["validate", *OWN, "--out", "{box}/mine"], 2,
         "exists and was not written by coldrec", _mine),
    Case("validate-out-is-a-file", ["validate", *OWN, "--out", "{box}/afile.txt"], 2, "is a file, not a directory",
         lambda b: (b / "afile.txt").write_text("keep")),
    Case("features-out-user-folder", ["features", "build", *OWN, "--out", "{box}/mine"], 2,
         "exists and was not written by coldrec", _mine),
    Case("features-out-inside-input-folder", ["features", "build", *OWN, "--out", "{box}/byod"], 2,
         "contains an input"),
    Case("features-apply-repo-user-folder", ["features", "apply", "--repo", "{box}/mine"], 2,
         "--repo {box}/mine: exists and was not written by coldrec", _mine),
    Case("features-apply-repo-is-the-declarations", ["features", "apply", "--repo", "features"], 2,
         "features: is an input of this command", cwd_repo=True),
    Case("train-out-user-folder-refused-before-fitting", ["train", *OWN, "--out", "{box}/mine"], 2,
         "model version {box}/mine: exists and was not written by coldrec", _mine),
    Case("train-out-is-input-file", ["train", *OWN, "--out", "{box}/byod/items.csv"], 2, "is an input"),
    Case("evaluate-out-user-folder", ["evaluate", *OWN, "--out", "{box}/mine"], 2,
         "exists and was not written by coldrec", _mine),
    Case("evaluate-out-is-input-folder", ["evaluate", *OWN, "--out", "{box}/byod"], 2, "contains an input"),
    # --- results that measured nothing -------------------------------------------------------------
    Case("evaluate-no-scorable-user-keeps-good-metrics",
         ["evaluate", "--events", "{box}/mismatch/events.csv", "--items", "{box}/mismatch/items.csv",
          "--out", "{box}/report"], 2, "no test user can be scored", lambda b: (_good_metrics(b), _mismatched(b)),
         check=lambda b: (b / "report" / "metrics.json").read_text() == '{"good": true}'),
    # --- arguments -------------------------------------------------------------------------------
    Case("methods-unknown-lists-the-names", ["evaluate", *OWN, "--methods", "popularity,magic"], 2,
         "--methods: unknown magic (available: popularity, segment_popularity"),
    Case("methods-help-lists-the-names", ["evaluate", "--help"], 0, "coldrec_fp32"),
    Case("prepare-is-data-prepare", ["prepare"], 2, "did you mean `coldrec data prepare`"),
    Case("dataset-and-files", ["data", "prepare", "--dataset", "online-retail", *OWN], 2,
         "give either --dataset NAME or --events/--items"),
    Case("events-without-items", ["data", "prepare", "--events", "{box}/byod/events.csv"], 2,
         "--events and --items go together"),
    Case("users-alone", ["data", "prepare", "--users", "{box}/byod/users.csv"], 2, "--users needs --events"),
    Case("unknown-dataset", ["data", "prepare", "--dataset", "nope"], 2, "unknown dataset 'nope'"),
    Case("quantize-not-a-version", ["quantize", "--model", "{box}/mine"], 2, "not a coldrec model version", _mine),
    Case("quantize-not-a-version-folder", ["quantize", "--model", "{box}/models"], 2,
         "models: not a coldrec model version (missing encoder", lambda b: (b / "models").mkdir()),
    Case("quantize-no-trained-version", ["quantize", "--dataset", "never-trained"], 2,
         "never-trained: no latest model version (no latest file): run `coldrec train` first"),
    Case("quantize-dangling-current", ["quantize", "--model", "{box}/models"], 2, "names version 'v-gone'",
         lambda b: ((b / "models").mkdir(), (b / "models" / "current").write_text("v-gone\n"))),
    # --- params.yaml -------------------------------------------------------------------------------
    Case("params-unknown-key", ["data", "prepare", *OWN, "--out", "{box}/p1"], 2,
         "unknown key(s) model.knn_shrnk", _unknown_key_params, env=PARAMS_ENV),
    Case("params-missing-key", ["data", "prepare", *OWN, "--out", "{box}/p2"], 2, "missing key(s) quantize.opset",
         _missing_key_params, env=PARAMS_ENV),
    Case("params-not-yaml", ["data", "prepare", *OWN, "--out", "{box}/p3"], 2, "not valid YAML",
         _params("seed: [1, 2\n"), env=PARAMS_ENV),
    Case("params-wrong-type", ["data", "prepare", *OWN, "--out", "{box}/p4"], 2,
         "model.history: expected an integer, got 'twenty'", _params_set("model", "history", "twenty"),
         env=PARAMS_ENV),
    Case("params-unknown-method", ["data", "prepare", *OWN, "--out", "{box}/p5"], 2,
         "evaluation.methods: unknown magic", _params_set("evaluation", "methods", ["popularity", "magic"]),
         env=PARAMS_ENV),
    Case("params-bad-choice", ["data", "prepare", *OWN, "--out", "{box}/p6"], 2,
         "quantize.mode: 'fp4' is not one of dynamic, static", _bad_mode_params, env=PARAMS_ENV),
    Case("params-missing-file", ["data", "prepare", *OWN, "--out", "{box}/p7"], 2, "params file not found",
         env={"COLDREC_PARAMS": "{box}/nope.yaml"}),
]


def _argv(args: list[str], box: Path) -> list[str]:
    return [sys.executable, "-m", "coldrec.cli", *[a.replace("{box}", str(box)) for a in args]]


def _env(box: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "COLDREC_DATA_DIR": str(box / "data"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return {**env, **{k: v.replace("{box}", str(box)) for k, v in extra.items()}}


def _snapshot(box: Path) -> dict[str, str]:
    out = {}
    for p in sorted(box.rglob("*")):
        rel = str(p.relative_to(box))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture
def box(tmp_path) -> Path:
    (tmp_path / "byod").mkdir()
    make_events().to_csv(tmp_path / "byod" / "events.csv", index=False)
    make_items().to_csv(tmp_path / "byod" / "items.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(6)], "country": ["UK", "FR"] * 3}).to_csv(
        tmp_path / "byod" / "users.csv", index=False)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_case(case: Case, box: Path):
    case.setup(box)
    before = _snapshot(box)
    out = subprocess.run(_argv(case.args, box), capture_output=True, text=True, cwd=ROOT if case.cwd_repo else box,
                         env=_env(box, case.env), timeout=300)
    text = " ".join((out.stdout + out.stderr).split())  # rich wraps long lines
    assert out.returncode == case.rc, text
    assert case.says.replace("{box}", str(box)) in text
    assert "Traceback" not in text
    after = _snapshot(box)
    allowed = lambda rel: any(rel == c or rel.startswith(c + os.sep) for c in (*case.changes, "data"))  # noqa: E731
    changed = sorted(rel for rel in before if not allowed(rel) and after.get(rel) != before[rel])
    assert changed == [], f"pre-existing files changed or lost: {changed}"
    created = sorted(rel for rel in after if rel not in before and not allowed(rel))
    assert created == [], f"unexpected new files: {created}"
    case.check(box)


def test_the_table_has_at_least_forty_cases_with_the_input_side():
    from tests.unit import test_bad_inputs

    assert len(CASES) + len(test_bad_inputs.CASES) >= 40


def test_sigterm_mid_write_leaves_no_temporary_folder(tmp_path):
    """A scheduler stopping a task (SIGTERM) mid-write: the CLI's handler turns it into SystemExit,
    the temporary folder is removed, and nothing is installed."""
    child = (
        "import signal, sys, time\n"
        "from coldrec.cli import _terminate\n"
        "from coldrec.core.outputs import owned_dir\n"
        "signal.signal(signal.SIGTERM, _terminate)\n"
        "with owned_dir(sys.argv[1], stage='test') as tmp:\n"
        "    (tmp / 'part.parquet').write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
