"""The model registry: GTO (DVC's registry) on a git repository of its own.

Why GTO and why its own repository: GTO keeps versions and stage assignments as annotated git
tags (``coldrec-<dataset>@v0.0.3`` registers a version, ``coldrec-<dataset>#prod#7`` assigns it to
production), which any git host shows and any GTO/DVC Studio tool reads. A scheduled retrain
must not commit into the source checkout (a user's working tree, a CI clone), so the registry
is a small repository under ``artifacts/registry`` (``$COLDREC_REGISTRY``) whose commits hold one
lineage file per version: data fingerprint, params, metrics and gate report, code commit, parent
version, and the version directory it names. Push it to a remote to share it.

Registry versions are SemVer (GTO's rule: ``v0.0.N``); the model version directory
(``v-<hash>``) is in the lineage. Every command accepts either name.

Writers hold a per-dataset lock (``fcntl``): a registration waits for it; a promotion does not,
so of two promotions at once one wins and the other is told another promotion is in progress.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.errors import ColdrecError

PROD = "prod"
IDENTITY = {"GIT_AUTHOR_NAME": "coldrec registry", "GIT_AUTHOR_EMAIL": "registry@coldrec.local",
            "GIT_COMMITTER_NAME": "coldrec registry", "GIT_COMMITTER_EMAIL": "registry@coldrec.local"}


# GTO reads the repository through scmrepo/dulwich objects that are not safe to use from two
# threads at once (seen: corrupt-looking artifacts.yaml, "'bytes' object has no attribute
# 'encode'" when two promotions in one process read the registry together). Every GTO call in
# this process goes through this lock; other processes have their own objects (and the file lock).
_GTO_LOCK = threading.RLock()


def _gto(call, *args: Any, **kwargs: Any) -> Any:
    with _GTO_LOCK:
        return call(*args, **kwargs)


class RegistryError(ColdrecError):
    pass


class Busy(RegistryError):
    """Another writer holds the dataset's lock (e.g. a promotion in progress)."""


def artifact(dataset: str) -> str:
    """GTO artifact name of a dataset's model (GTO allows lowercase letters, digits and dashes)."""
    name = "coldrec-" + re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-")
    return name


@dataclass(frozen=True)
class Entry:
    """One registered version: GTO's version, the model directory it names, and its lineage."""

    version: str  # v0.0.N
    model_version: str  # the directory under artifacts/models/<dataset>/
    lineage: dict[str, Any]
    stage: str | None  # "prod" while it is production

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "model_version": self.model_version, "stage": self.stage, **self.lineage}


class Registry:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else paths.registry_dir()

    # ------------------------------------------------------------------------------- plumbing
    def _git(self, *args: str) -> str:
        env = {**os.environ, **IDENTITY}
        r = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, env=env, timeout=60)
        if r.returncode != 0:
            raise RegistryError(f"registry {self.root}: git {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def ensure(self) -> Registry:
        """Create the repository on first use (a commit and an identity are what GTO needs)."""
        if (self.root / ".git").is_dir():
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked("init", wait=True):
            if (self.root / ".git").is_dir():
                return self
            self._git("init", "-q", "-b", "main")
            self._git("config", "user.name", IDENTITY["GIT_AUTHOR_NAME"])
            self._git("config", "user.email", IDENTITY["GIT_AUTHOR_EMAIL"])
            (self.root / "README.md").write_text(
                "# coldrec model registry\n\nGTO tags: `coldrec-<dataset>@vX.Y.Z` (a version), `coldrec-<dataset>#prod#N`"
                " (production assignments). `lineage/<dataset>/<version>.json`: what each version was made from.\n"
                "Read it with `coldrec models list` or `gto show`.\n", encoding="utf-8")
            (self.root / ".gitignore").write_text("*.lock\n", encoding="utf-8")
            self._git("add", "README.md", ".gitignore")
            self._git("commit", "-q", "-m", "registry created")
        return self

    @contextmanager
    def _locked(self, dataset: str, wait: bool, timeout: float = 120.0):
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / f"{dataset}.lock", "a+")  # noqa: SIM115 - held for the block
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        raise Busy(f"another promotion or rollback of {dataset} is in progress; "
                                   "nothing was changed (retry when it has finished)") from None
                    if time.monotonic() > deadline:
                        raise Busy(f"registry lock for {dataset} held for more than {timeout:.0f} s") from None
                    time.sleep(0.2)
            yield
        finally:
            fh.close()

    def lock(self, dataset: str, wait: bool = False):
        """The dataset's writer lock (see the module doc)."""
        return self._locked(dataset, wait)

    # --------------------------------------------------------------------------------- reading
    def entries(self, dataset: str) -> list[Entry]:
        """Every registered version, oldest first."""
        if not (self.root / ".git").is_dir():
            return []
        from gto import api

        prod = self.production_version(dataset)
        out = []
        for row in _gto(api.history, str(self.root), artifact(dataset), ascending=True):
            if row["event"] != "registration":
                continue
            lineage = self._lineage(dataset, row["version"], row["commit"])
            out.append(Entry(row["version"], lineage.get("model_version", ""), lineage,
                             PROD if row["version"] == prod else None))
        return sorted(out, key=lambda e: _semver(e.version))

    def _lineage(self, dataset: str, version: str, commit: str) -> dict[str, Any]:
        try:
            return json.loads(self._git("show", f"{commit}:lineage/{dataset}/{version}.json"))
        except (RegistryError, ValueError):
            return {}

    def production_version(self, dataset: str) -> str | None:
        """GTO's production version of the dataset's artifact, or None."""
        history = self.assignments(dataset)
        return history[-1] if history else None

    def assignments(self, dataset: str) -> list[str]:
        """Versions in the order they were assigned to production (GTO's ``#prod#N`` tags, by N)."""
        if not (self.root / ".git").is_dir():
            return []
        from gto import api

        rows = [r for r in _gto(api.history, str(self.root), artifact(dataset)) if r["event"] == "assignment"
                and r["stage"] == PROD]
        return [r["version"] for r in sorted(rows, key=lambda r: int(str(r["ref"]).rsplit("#", 1)[-1]))]

    def production(self, dataset: str) -> Entry | None:
        v = self.production_version(dataset)
        return self.get(dataset, v) if v else None

    def get(self, dataset: str, name: str) -> Entry:
        """A version by registry name (``v0.0.3``) or model directory (``v-<hash>``)."""
        for e in self.entries(dataset):
            if name in (e.version, e.model_version):
                return e
        known = ", ".join(f"{e.version} ({e.model_version})" for e in self.entries(dataset)) or "none"
        raise RegistryError(f"{dataset}: no registered version {name!r} (registered: {known})")

    def find(self, dataset: str, model_version: str) -> Entry | None:
        return next((e for e in self.entries(dataset) if e.model_version == model_version), None)

    # --------------------------------------------------------------------------------- writing
    def register(self, dataset: str, model_version: str, lineage: dict[str, Any]) -> Entry:
        """Register a model version with its lineage (idempotent: a version registered before is
        returned as it is, so a rerun after a killed task does not register it twice)."""
        from gto import api

        self.ensure()
        with self._locked(dataset, wait=True):
            if (known := self.find(dataset, model_version)) is not None:
                return known
            entries = self.entries(dataset)
            version = f"v0.0.{max((_semver(e.version)[2] for e in entries), default=0) + 1}"
            doc = {"model_version": model_version, **lineage}
            f = self.root / "lineage" / dataset / f"{version}.json"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
            self._annotate(dataset)
            self._git("add", str(f.relative_to(self.root)), "artifacts.yaml")
            self._git("commit", "-q", "-m", f"{artifact(dataset)} {version}: {model_version}")
            _gto(api.register, str(self.root), artifact(dataset), "HEAD", version=version,
                         message=f"model {model_version}", author=IDENTITY["GIT_AUTHOR_NAME"],
                         author_email=IDENTITY["GIT_AUTHOR_EMAIL"])
        return Entry(version, model_version, doc, None)

    def _annotate(self, dataset: str) -> None:
        """GTO's artifact declaration (``artifacts.yaml``): a model, where its versions live."""
        import yaml

        f = self.root / "artifacts.yaml"
        doc = (yaml.safe_load(f.read_text(encoding="utf-8")) if f.is_file() else None) or {}
        if artifact(dataset) not in doc:
            doc[artifact(dataset)] = {"type": "model", "path": os.path.relpath(paths.models_dir(dataset), self.root),
                                      "description": f"coldrec model versions for {dataset} (lineage/{dataset}/)"}
            f.write_text(yaml.safe_dump(doc, sort_keys=True), encoding="utf-8")

    def describe(self, dataset: str) -> dict[str, Any]:
        """GTO's view of the artifact (type, path, description)."""
        from gto import api

        found = _gto(api.describe, str(self.root), artifact(dataset))
        return {} if found is None else found.model_dump() if hasattr(found, "model_dump") else dict(found)

    def assign_production(self, dataset: str, version: str, message: str) -> None:
        """GTO ``assign --stage prod`` (the caller holds the dataset's lock). ``force``: GTO keeps an
        older assignment active, so putting a version back (rollback) needs a new tag regardless."""
        from gto import api

        _gto(api.assign, str(self.root), artifact(dataset), PROD, version=version, message=message, force=True,
                   author=IDENTITY["GIT_AUTHOR_NAME"], author_email=IDENTITY["GIT_AUTHOR_EMAIL"])


def _semver(v: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", v)
    return (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)
