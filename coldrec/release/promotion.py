"""Register, promote and roll back model versions: the registry (GTO) plus what serving switches.

A promotion is complete or it does not happen. Everything a version needs to be served is made
ready first (its int8 files checked, its Milvus collection built, its Bento built when
``pipeline.bundle``), under the dataset's registry lock; only then does production move, in
this order: GTO assigns ``prod`` (the record), the Milvus production alias is pointed at the
version's collection, and ``models/<dataset>/current`` is replaced (one atomic rename: the
running service follows it and swaps to the new version as a whole). A failure before the GTO
assignment leaves production as it was; a failure after it puts the previous assignment back.

Rollback is a promotion of the version that was production before the current one.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed
from coldrec.release.model_registry import Entry, Registry, RegistryError


def lineage(version_dir: Path, gate: dict[str, Any] | None, parent: str | None) -> dict[str, Any]:
    """What a version was made from, for its registry entry."""
    from coldrec.runtime.version import read_metadata

    meta = read_metadata(version_dir)
    return {"dataset": meta.get("dataset"), "created": meta.get("created"), "data_fingerprint": meta.get("data_fingerprint"),
            "code_version": meta.get("code_version"), "params": meta.get("params"), "trained_until": meta.get("trained_until"),
            "events": meta.get("events"), "metrics": meta.get("metrics"), "parent": parent, "gate": gate,
            "path": str(version_dir)}


def register(dataset: str, version_dir: Path, gate: dict[str, Any] | None = None,
             registry: Registry | None = None) -> Entry:
    """Register a trained version (idempotent); its parent is production at that moment."""
    reg = registry or Registry()
    prod = reg.production(dataset)
    return reg.register(dataset, version_dir.name, lineage(version_dir, gate, prod.model_version if prod else None))


def _prepare(dataset: str, version_dir: Path, params: dict[str, Any], uri: str | None) -> dict[str, Any]:
    """Everything serving needs, built before anything switches (each step is idempotent)."""
    from coldrec.runtime import item_index
    from coldrec.runtime.version import SERVING_FILES, check_files, load_version

    check_files(version_dir, SERVING_FILES)
    uri = uri or paths.milvus_uri()
    if uri.endswith(".db"):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    client = item_index.client(uri)
    collection = item_index.collection_name(dataset, version_dir.name)
    if collection not in client.list_collections():
        item_index.build_for_model(client, collection, load_version(version_dir, params), typed(params).serving)
    bento = None
    if typed(params).pipeline.bundle:
        from coldrec.core.config import settings
        from coldrec.release.bundle import build_bento, find_bento

        bento = find_bento(dataset, version_dir.name) or build_bento(version_dir, dataset, settings().root)["bento"]
    return {"client": client, "collection": collection, "bento": bento}


def promote(dataset: str, name: str, params: dict[str, Any], uri: str | None = None, reason: str = "manual",
            force: bool = False, registry: Registry | None = None) -> dict[str, Any]:
    """Make registered version ``name`` (``v0.0.N`` or its model directory) production.

    Refused (nothing changes) when the version failed its gate, unless ``force``; when another
    promotion of the dataset is in progress; when its files are incomplete."""
    from coldrec.runtime import item_index

    reg = (registry or Registry()).ensure()
    entry = reg.get(dataset, name)
    gate = entry.lineage.get("gate") or {}
    if gate and not gate.get("passed", False) and not force:
        raise RegistryError(f"{dataset} {entry.version} ({entry.model_version}) failed its promotion gate: "
                            f"{'; '.join(gate.get('reasons') or [])} (--force promotes it anyway)")
    models = paths.models_dir(dataset)
    version_dir = models / entry.model_version
    if not version_dir.is_dir():
        raise RegistryError(f"{dataset} {entry.version}: its model directory {version_dir} is missing "
                            "(restore it with `dvc pull` or `dvc checkout`)")
    with reg.lock(dataset, wait=False):
        previous = reg.production(dataset)
        if previous is not None and previous.version == entry.version and _current(models) == entry.model_version:
            return {"dataset": dataset, "version": entry.version, "model_version": entry.model_version,
                    "changed": False, "previous": previous.version}
        ready = _prepare(dataset, version_dir, params, uri)
        message = json.dumps({"reason": reason, "from": previous.version if previous else None,
                              "at": datetime.now(UTC).isoformat(timespec="seconds")})
        reg.assign_production(dataset, entry.version, message)
        try:
            item_index.point_alias(ready["client"], item_index.alias_name(dataset), ready["collection"])
            paths.set_current(models, entry.model_version)
        except Exception:
            if previous is not None:  # the record follows what is served
                reg.assign_production(dataset, previous.version, json.dumps({"reason": f"undo failed promotion of {entry.version}"}))
            raise
    return {"dataset": dataset, "version": entry.version, "model_version": entry.model_version, "changed": True,
            "previous": previous.version if previous else None, "collection": ready["collection"],
            "bento": ready["bento"], "reason": reason}


def previous_production(dataset: str, registry: Registry | None = None) -> Entry:
    """The version production had before the current one (GTO's assignment history)."""
    reg = registry or Registry()
    history = reg.assignments(dataset)
    if not history:
        raise RegistryError(f"{dataset}: nothing has been promoted yet; nothing to roll back")
    current = history[-1]
    older = [v for v in history[:-1] if v != current]
    if not older:
        raise RegistryError(f"{dataset}: {current} is the only version ever in production; nothing to roll back to")
    return reg.get(dataset, older[-1])


def rollback(dataset: str, params: dict[str, Any], uri: str | None = None, registry: Registry | None = None
             ) -> dict[str, Any]:
    """Put back the version that was production before the current one (its gate passed when it
    was promoted, so it is not judged again)."""
    reg = registry or Registry()
    target = previous_production(dataset, reg)
    return promote(dataset, target.version, params, uri=uri, reason="rollback", force=True, registry=reg)


def _current(models: Path) -> str | None:
    try:
        return paths.current_version(models).name
    except ColdrecError:
        return None


def listing(dataset: str, registry: Registry | None = None) -> list[dict[str, Any]]:
    """Every registered version, newest first, with its stage and gate result."""
    rows = []
    for e in reversed((registry or Registry()).entries(dataset)):
        gate = e.lineage.get("gate") or {}
        rows.append({"version": e.version, "model_version": e.model_version, "stage": e.stage or "",
                     "created": e.lineage.get("created"), "parent": e.lineage.get("parent"),
                     "gate": "" if not gate else ("passed" if gate.get("passed") else "failed"),
                     "ndcg@10_k3": gate.get("candidate_value"), "code": e.lineage.get("code_version")})
    return rows
