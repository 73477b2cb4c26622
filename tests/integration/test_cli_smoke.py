"""Every ``coldrec`` subcommand, run once through the real CLI (a subprocess of the installed console
script) on the small real-data slice of pipeline_support: exit 0, or the documented one-line error
with a non-zero exit, and never a traceback.

The commands run in dependency order against one project (prepare, validate, the feature store,
train --holdout, quantize, gate, the registry, index, bundle, promote, rollback, serve, evaluate,
the retrain pipeline), with the smallest settings that still do the real work: the pretrained
encoder (no fine-tune), a 100-text fidelity check, popularity for evaluate. The pipeline run comes
last and finds the version it would train already trained and quantized (same data, params and
code: it is reused), so it costs Airflow, the data stages and the gate only.

``SMOKE`` is the table of cases, keyed by the command as a user types it; a test enumerates the
Typer app and fails when a command has no case (or a case no command), so a new command cannot
ship without one.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer

from tests.integration.pipeline_support import child_env, slice_env

COLDREC = str(Path(sys.executable).with_name("coldrec"))
DATASET = "orslice"  # the slice's folder name, hence the dataset's name
# the cheapest settings that still train, quantize and judge for real (on top of pipeline_support's)
CHEAP = {"model": {"finetune": {"enabled": False}, "max_validation_users": 100, "arrival_days": [None]},
         "quantize": {"fidelity_max_texts": 100}}
TIMEOUT_S = 600


# ------------------------------------------------------------------------------ enumeration
def cli_commands(app: typer.Typer, prefix: str = "") -> set[str]:
    """Every command of a Typer app as a user types it ("data prepare"), hidden ones included;
    read from its registrations, so a command added anywhere in the tree shows up here."""
    from typer.main import get_command_name

    found = set()
    for cmd in app.registered_commands:
        name = cmd.name or get_command_name(cmd.callback.__name__)
        found.add(f"{prefix}{name}")
    for group in app.registered_groups:
        sub = group.typer_instance
        name = group.name or sub.info.name
        found |= cli_commands(sub, f"{prefix}{name} " if name else prefix)  # a nameless group merges into its parent
    return found


def click_commands(cmd: Any, prefix: str = "") -> set[str]:
    """The same list as Click builds it from the app (what the shell actually dispatches); a
    group is whatever has sub-``commands`` (Typer ships its own copy of Click's classes)."""
    subs = getattr(cmd, "commands", None)
    if subs is None:
        return {prefix.strip()}
    return set().union(*(click_commands(sub, f"{prefix}{name} ") for name, sub in subs.items()))


def coverage_gaps(commands: set[str], cases: Sequence[str]) -> str:
    """'' when every command has a case and every case a command, else what is missing or extra."""
    missing, extra = sorted(commands - set(cases)), sorted(set(cases) - commands)
    return "; ".join(part for part in (
        f"commands without a smoke case: {', '.join(missing)}" if missing else "",
        f"smoke cases for no command: {', '.join(extra)}" if extra else "") if part)


# ------------------------------------------------------------------------------ checks
def _show(r: subprocess.CompletedProcess) -> str:
    return (f"`coldrec {' '.join(map(str, r.args[1:]))}` exited {r.returncode}\n--- stdout\n{r.stdout[-3000:]}"
            f"\n--- stderr\n{r.stderr[-3000:]}")


def _no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stdout and "Traceback" not in r.stderr, _show(r)


def ok(*says: str) -> Callable[[subprocess.CompletedProcess], None]:
    """Exit 0, and stdout carries ``says`` (proof the command did its work, not just returned)."""

    def check(r: subprocess.CompletedProcess) -> None:
        _no_traceback(r)
        assert r.returncode == 0, _show(r)
        for s in says:
            assert s in r.stdout, f"{s!r} not in the output of " + _show(r)

    return check


def one_line_error(code: int, says: str) -> Callable[[subprocess.CompletedProcess], None]:
    """The user-error path: exit ``code`` and exactly one line on stderr, ``error: ...``."""

    def check(r: subprocess.CompletedProcess) -> None:
        _no_traceback(r)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == code and len(lines) == 1, _show(r)
        assert lines[0].startswith("error:") and says in lines[0], _show(r)

    return check


def gate_verdict(r: subprocess.CompletedProcess) -> None:
    """The gate prints its NDCG table and a verdict, and exits by it: 0 passed, 1 refused."""
    _no_traceback(r)
    assert "promotion gate" in r.stdout and "NDCG" in r.stdout, _show(r)
    verdicts = [ln.split(":")[0] for ln in r.stdout.splitlines() if ln.startswith(("passed:", "refused:"))]
    assert len(verdicts) == 1, _show(r)
    assert r.returncode == (0 if verdicts[0] == "passed" else 1), _show(r)


# ------------------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Step:
    """One invocation: its arguments (from the project) and what its result must look like."""

    args: Callable[[dict[str, Any]], Sequence[str]]
    check: Callable[[subprocess.CompletedProcess], None] = ok()


def src(p: dict[str, Any]) -> list[str]:
    return ["--events", p["files"]["events"], "--items", p["files"]["items"], "--users", p["files"]["users"]]


DS = ["--dataset", DATASET]
ONLINE = [*DS, "--online", "sqlite"]

# in the order they run: each step finds what the earlier ones wrote
SMOKE: dict[str, tuple[Step, ...]] = {
    "prepare": (Step(lambda p: ["prepare"], one_line_error(2, "coldrec data prepare")),),
    "data prepare": (Step(lambda p: ["data", "prepare", *src(p)], ok("dataset orslice", "wrote")),),
    "validate": (Step(lambda p: ["validate", *src(p)], ok("result.json")),),
    "features build": (Step(lambda p: ["features", "build", *src(p)], ok("user_profile")),),
    "features apply": (Step(lambda p: ["features", "apply", *ONLINE], ok("coldrec_orslice")),),
    "features materialize": (Step(lambda p: ["features", "materialize", *ONLINE], ok("user_profile: full")),),
    "features get": (Step(lambda p: ["features", "get", p["user"], *ONLINE], ok('"known": true')),),
    "features push": (Step(lambda p: ["features", "push", p["user"], p["item"], "--event-type", "view", *ONLINE],
                           ok('"n_view": 1')),),
    "train": (Step(lambda p: ["train", *src(p), "--holdout"], ok("wrote model version")),),
    "quantize": (Step(lambda p: ["quantize", *DS], ok("mean cosine", "encoder_int8")),),
    "gate": (Step(lambda p: ["gate", *src(p)], gate_verdict),),
    "models register": (Step(lambda p: ["models", "register", *DS], ok('"version": "v0.0.1"')),),
    "models list": (Step(lambda p: ["models", "list", *DS], ok("v0.0.1")),),
    "models show": (Step(lambda p: ["models", "show", "v0.0.1", *DS], ok('"data_fingerprint"')),),
    "index": (Step(lambda p: ["index", *DS], ok('"items"')),),
    "bundle": (Step(lambda p: ["bundle", *DS], ok('"bento": "coldrec:')),),
    "models promote": (Step(lambda p: ["models", "promote", "v0.0.1", *DS], ok('"changed": true')),),
    # a real rollback needs a second promoted version: a second train + quantize, which this
    # budget has no room for; the first-promotion case is the documented user error
    "models rollback": (Step(lambda p: ["models", "rollback", *DS], one_line_error(2, "nothing to roll back to")),),
    "serve": (Step(lambda p: ["serve", "--detach", "--port", str(p["port"]), *DS], ok("ready: http://127.0.0.1")),
              Step(lambda p: ["serve", "--stop"], ok("stopped"))),
    "evaluate": (Step(lambda p: ["evaluate", *src(p), "--methods", "popularity"], ok("popularity", "metrics.json")),),
    "pipeline run": (Step(lambda p: ["pipeline", "run", *DS, *src(p)], ok("coldrec_retrain", ": success")),),
}


# ------------------------------------------------------------------------------ running them
def coldrec(p: dict[str, Any], args: Sequence[str]) -> subprocess.CompletedProcess:
    """The console script in the project's environment; a hang becomes a failed result, not an
    exception, so the commands after it still run and report."""
    argv = [COLDREC, *map(str, args)]
    try:
        return subprocess.run(argv, env=p["env"], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return subprocess.CompletedProcess(argv, -9, out, f"timed out after {TIMEOUT_S} s")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict[str, Any]:
    """The slice, a checkout-like home with cheap params, and everything else under one folder."""
    from serving.launch import free_port
    from tests.conftest import SHARED

    if not SHARED.exists():
        pytest.skip(f"real datasets not found at {SHARED}")
    base = tmp_path_factory.mktemp("cli-smoke")
    env = slice_env(base, CHEAP)
    files = {k: env[f"COLDREC_TEST_CONF_{k.upper()}"] for k in ("events", "items", "users")}
    first = pd.read_csv(files["events"], dtype=str, nrows=1).iloc[0]  # a real shopper and product of the slice
    return {"env": child_env({**env, "COLUMNS": "200"}),  # wide: rich wraps no table title or error line
            "files": files, "user": first["user_id"], "item": first["item_id"], "port": free_port(),
            "pidfile": Path(env["COLDREC_DATA_DIR"]) / "serve" / "serve.pid"}


class Runs:
    """Each case's results, run at most once and in table order: asking for a case first runs the
    cases before it that have not run yet, so a case run alone (``-k``) still finds what it needs,
    and in a full run each case's own time is charged to its own test (``--durations``)."""

    def __init__(self, project: dict[str, Any]):
        self.project = project
        self.results: dict[str, list[subprocess.CompletedProcess]] = {}

    def of(self, command: str) -> list[subprocess.CompletedProcess]:
        for name, steps in SMOKE.items():
            if name not in self.results:
                self.results[name] = [coldrec(self.project, step.args(self.project)) for step in steps]
            if name == command:
                return self.results[name]
        raise KeyError(command)


@pytest.fixture(scope="module")
def runs(project):
    yield Runs(project)
    if project["pidfile"].exists():  # never leave a detached service behind, whatever failed
        coldrec(project, ["serve", "--stop"])


# ------------------------------------------------------------------------------ tests
def test_every_command_has_a_smoke_case():
    from coldrec.cli import app

    assert coverage_gaps(cli_commands(app), list(SMOKE)) == ""


def test_enumeration_matches_what_click_dispatches():
    from typer.main import get_command

    from coldrec.cli import app

    assert cli_commands(app) == click_commands(get_command(app))


def test_a_new_command_without_a_case_is_caught():
    """The check above is not vacuous: on a fake app, a command added later (nested, hidden or
    named from its function) shows up as missing, and a case for a removed command as extra."""
    fake, models, nested = typer.Typer(), typer.Typer(), typer.Typer()
    fake.command("train")(lambda: None)
    fake.command("hint", hidden=True)(lambda: None)
    fake.add_typer(models, name="models")
    models.command("list")(lambda: None)
    cases = ["train", "hint", "models list", "gone"]
    assert cli_commands(fake) == {"train", "hint", "models list"}

    def roll_back() -> None: ...

    models.command()(roll_back)
    models.add_typer(nested, name="extra")
    nested.command("deep", hidden=True)(lambda: None)
    assert cli_commands(fake) == click_commands(typer.main.get_command(fake))
    gaps = coverage_gaps(cli_commands(fake), cases)
    assert gaps == "commands without a smoke case: models extra deep, models roll-back; smoke cases for no command: gone"


@pytest.mark.parametrize("command", list(SMOKE))
def test_command_smoke(runs, command):
    for step, result in zip(SMOKE[command], runs.of(command), strict=True):
        step.check(result)
