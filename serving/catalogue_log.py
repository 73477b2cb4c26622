"""The ``/items`` change log: catalogue changes made through the service since training.

Why a log: an added or deleted item must survive a restart and a promotion until the next
training reads the catalogue from the data. Each change is appended as one JSON line
(:func:`coldrec.core.paths.catalogue_log`) and replayed onto every snapshot the service loads;
applying a change makes a new :class:`~serving.snapshots.Served` (and updates its Milvus
collection), never edits one in place.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core import paths
from coldrec.runtime import item_index
from coldrec.runtime.candidates import CandidateRanker
from serving.snapshots import Served, item_facts

log = logging.getLogger(__name__)


def log_file(dataset: str) -> Path:
    return paths.catalogue_log(dataset)


def apply_upsert(milvus: Any, s: Served, items: pd.DataFrame) -> Served:
    """``s`` with ``items`` added or replaced: vectors from their text, recommendable at once."""
    from coldrec.runtime.catalogue import upsert

    model, rows, vecs = upsert(s.model, items)
    item_index.upsert_items(milvus, s.collection, items, vecs, rows, np.asarray(model.parts.pop)[rows] > 0)
    ranker = CandidateRanker(model, s.ranker.index, s.ranker.sizes)
    removed = np.concatenate([s.removed, np.zeros(model.train.n_items - len(s.removed), bool)])
    removed[rows] = False  # a re-sent item is back
    return dataclasses.replace(s, model=model, ranker=ranker, **dict(zip(("categories", "prices", "in_stock"),
                                                                         item_facts(model.train.items))),
                               removed=removed)


def apply_delete(milvus: Any, s: Served, item_ids: list[str]) -> Served:
    """``s`` with ``item_ids`` never served (they stay in the version's files); unknown ids: nothing."""
    rows = [s.model.train.item_index[i] for i in item_ids if i in s.model.train.item_index]
    removed = s.removed.copy()
    removed[rows] = True
    item_index.delete_items(milvus, s.collection, rows)
    return dataclasses.replace(s, removed=removed)


def replay(dataset: str, milvus: Any, s: Served) -> Served:
    """Every logged change applied to a freshly loaded snapshot, in order; a bad line is skipped."""
    f = log_file(dataset)
    if not f.is_file():
        return s
    for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        try:
            change = json.loads(line)
            if change["op"] == "upsert":
                s = apply_upsert(milvus, s, pd.DataFrame(change["items"]))
            else:
                s = apply_delete(milvus, s, list(change["item_ids"]))
        except Exception as exc:  # noqa: BLE001 - one bad line must not stop serving
            log.error("%s line %d: skipped (%s: %s)", f, n, type(exc).__name__, exc)
    return s


def record(dataset: str, change: dict[str, Any]) -> None:
    f = log_file(dataset)
    f.parent.mkdir(parents=True, exist_ok=True)
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(change, default=str) + "\n")


def upsert(dataset: str, milvus: Any, s: Served, items: list[dict[str, Any]]) -> Served:
    """Apply then log an upsert (a change that fails to apply is not logged)."""
    served = apply_upsert(milvus, s, pd.DataFrame(items))
    record(dataset, {"op": "upsert", "items": items})
    return served


def delete(dataset: str, milvus: Any, s: Served, item_ids: list[str]) -> Served:
    """Apply then log a delete."""
    served = apply_delete(milvus, s, item_ids)
    record(dataset, {"op": "delete", "item_ids": item_ids})
    return served
