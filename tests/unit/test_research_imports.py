"""research/ and benchmarks/ use the product's public API only, and run as modules from the checkout.

Rules, checked on the source (``ast``) of every file under both folders:
- no private name (``_x``; dunders such as ``__version__`` are fine) imported from ``coldrec``,
  ``training`` or ``serving``, nor a private module of theirs, nor reached as an attribute of an
  imported product module (``hybrid._helper``): refactoring product code must not break them;
- no ``sys.path`` manipulation (nor ``site.addsitedir``): they run as ``python -m research.<name>``
  / ``python -m benchmarks.<name>`` from the repository root.
And every research module imports without doing work: its top level only imports, defines and
assigns; the work runs under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("coldrec", "training", "serving")
FOLDERS = ("research", "benchmarks")
FILES = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))
RESEARCH_MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                          for p in (ROOT / "research").rglob("*.py") if p.name != "__init__.py")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_product(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in PRODUCT


def violations(source: str) -> list[str]:
    """Each private product import / attribute and each sys.path manipulation in ``source``, with its line."""
    tree = ast.parse(source)
    found: list[str] = []
    product_aliases: set[str] = set()  # names bound to a product module (import coldrec.x as y, from training import model)
    sys_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "sys":
                    sys_aliases.add(a.asname or "sys")
                if _is_product(a.name):
                    if any(_private(part) for part in a.name.split(".")):
                        found.append(f"line {node.lineno}: import {a.name} (private module)")
                    product_aliases.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.module == "sys" and node.level == 0 and any(a.name == "path" for a in node.names):
                found.append(f"line {node.lineno}: from sys import path")
            if node.module == "site" and any(a.name == "addsitedir" for a in node.names):
                found.append(f"line {node.lineno}: from site import addsitedir")
            if node.level == 0 and _is_product(node.module):
                if any(_private(part) for part in node.module.split(".")):
                    found.append(f"line {node.lineno}: from {node.module} import ... (private module)")
                for a in node.names:
                    if _private(a.name):
                        found.append(f"line {node.lineno}: from {node.module} import {a.name}")
                    else:
                        product_aliases.add(a.asname or a.name)  # may be a module: its private attributes count
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if not isinstance(base, ast.Name):
                continue
            if base.id in sys_aliases and node.attr == "path" and node.value is base:
                found.append(f"line {node.lineno}: {base.id}.path")
            elif base.id == "site" and node.attr == "addsitedir":
                found.append(f"line {node.lineno}: site.addsitedir")
            elif base.id in product_aliases and _private(node.attr):
                found.append(f"line {node.lineno}: {ast.unparse(node)} (private attribute of a product module)")
    return found


def work_at_import(source: str) -> list[str]:
    """Top-level statements that do work at import (anything but imports, definitions, assignments,
    the docstring and the ``__main__`` guard)."""
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
               ast.AnnAssign)
    out = []
    for i, node in enumerate(ast.parse(source).body):
        if isinstance(node, allowed):
            continue
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # module docstring
        if isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"':
            continue
        out.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]}")
    return out


def test_the_folders_are_packages_with_modules():
    assert (ROOT / "research" / "__init__.py").exists()
    assert (ROOT / "benchmarks" / "__init__.py").exists()
    assert {"research.blend_ceiling", "research.co_occurrence_variants", "research.quick_fit"} <= set(RESEARCH_MODULES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_public_api_only_and_no_sys_path(path: Path):
    found = violations(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("module", RESEARCH_MODULES)
def test_research_module_imports_without_work(module: str, capsys):
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    found = work_at_import(path.read_text(encoding="utf-8"))
    assert not found, f"{module} does work at import (move it under main()):\n  " + "\n  ".join(found)
    mod = importlib.import_module(module)
    assert callable(getattr(mod, "main", None)), f"{module}: no main()"
    assert capsys.readouterr().out == "", f"{module} printed at import"


@pytest.mark.parametrize("source, expected", [
    ("from training.model.hybrid import _fast_ndcg\n", "_fast_ndcg"),
    ("from coldrec._private import x\n", "private module"),
    ("import training.model.hybrid as h\nh._sequences(1)\n", "h._sequences"),
    ("from training.model import hybrid\nhybrid._sessions(1)\n", "hybrid._sessions"),
    ("import sys\nsys.path.insert(0, '.')\n", "sys.path"),
    ("import sys as s\ns.path.append('.')\n", "s.path"),
    ("from sys import path\n", "from sys import path"),
    ("import site\nsite.addsitedir('.')\n", "site.addsitedir"),
])
def test_the_checker_catches(source: str, expected: str):
    assert any(expected in v for v in violations(source)), violations(source)


def test_the_checker_allows_public_and_other_private_names():
    ok = ("import sys\nimport numpy as np\nfrom training.methods.baselines import shrunk\n"
          "from research.blend_ceiling import ordered_pairs\nnp._NoValue\nsys.argv\nimport coldrec\ncoldrec.__file__\n")
    assert violations(ok) == []
    assert work_at_import('"""doc"""\nimport os\nX = 1\ndef main():\n    pass\nif __name__ == "__main__":\n    main()\n') == []
    assert work_at_import("import os\nprint('hi')\n") != []
