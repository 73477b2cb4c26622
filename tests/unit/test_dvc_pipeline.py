"""dvc.yaml tracks what it runs: every module a stage's code can import lies under that stage's
``deps``, and every stage runs the CLI command that calls the stage function it claims to."""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGES = ("coldrec", "training", "serving")
# DVC stage -> (stage functions in coldrec/orchestration/stages.py, CLI command functions in coldrec/cli.py, CLI words in cmd)
STAGES = {
    "prepare": (["prepare"], ["data_prepare"], ["coldrec data prepare"]),
    "validate": (["validate"], ["validate_cmd"], ["coldrec validate"]),
    "features": (["build_features"], ["features_build"], ["coldrec features build"]),
    "train": (["train", "quantize"], ["train_cmd", "quantize_cmd"], ["coldrec train", "coldrec quantize"]),
    "evaluate": (["evaluate"], ["evaluate_cmd"], ["coldrec evaluate"]),
}


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _imported(node: ast.AST) -> list[str]:
    """Project modules named by the import statements anywhere under ``node``."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            for a in n.names:
                sub = f"{n.module}.{a.name}"
                out.append(sub if module_file(sub) else n.module)
    return [m for m in out if m.split(".")[0] in PACKAGES and module_file(m)]


@cache
def _tree(name: str) -> ast.Module:
    return ast.parse(module_file(name).read_text(encoding="utf-8"))


ENTRY_POINTS = ("coldrec.cli", "coldrec.orchestration.stages")  # one function per stage: only the stage's own imports count


def closure(roots: list[str]) -> set[Path]:
    """Files of every project module reachable from ``roots`` (module- and function-level imports,
    and each module's parent packages, whose ``__init__`` runs on import). The entry points are
    not expanded as a whole: their stage functions' imports are the roots."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if module_file(".".join(parts[:i]))]
        if m not in ENTRY_POINTS:
            todo += _imported(_tree(m))
    return {module_file(m) for m in seen}


def _function_imports(module: str, functions: list[str]) -> list[str]:
    tree = _tree(module)
    top = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]  # classes (Source.load) serve every stage
    out = [m for n in top for m in _imported(n)]
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for f in functions:
        assert f in defs, f"{module}.{f} not found"
        out += _imported(defs[f])
    return out


def stage_files(stage: str) -> set[Path]:
    functions, commands, _ = STAGES[stage]
    roots = ["coldrec.orchestration.stages", "coldrec.cli"]
    roots += _function_imports("coldrec.orchestration.stages", functions) + _function_imports("coldrec.cli", commands)
    return closure(roots)


def _dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def test_every_stage_is_known_and_runs_its_cli_command():
    stages = _dvc_stages()
    assert set(stages) == set(STAGES)
    for name, spec in stages.items():
        cmd = spec["do"]["cmd"] if "do" in spec else spec["cmd"]
        for words in STAGES[name][2]:
            assert words in cmd, f"dvc stage {name}: cmd {cmd!r} does not run {words!r}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_every_module_it_imports(stage):
    spec = _dvc_stages()[stage]
    deps = [d for d in (spec["do"] if "do" in spec else spec)["deps"] if "${" not in d]
    covered = [ROOT / d for d in deps]
    files = stage_files(stage)
    assert len(files) > 3
    missing = sorted(str(f.relative_to(ROOT)) for f in files
                     if not any(f == c or c in f.parents for c in covered))
    assert missing == [], f"dvc stage {stage}: add to deps: {missing}"


def test_the_closure_follows_function_level_imports():
    """The check above would pass vacuously if lazy imports were missed: train reaches the fine-tuning
    code only through a function-level import in coldrec/orchestration/stages.py."""
    files = {str(f.relative_to(ROOT)) for f in stage_files("train")}
    assert {"training/model/finetune.py", "training/quantize/export.py", "coldrec/runtime/scorer.py"} <= files
    assert "coldrec/quality/__init__.py" not in files
