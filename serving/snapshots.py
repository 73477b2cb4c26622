"""Which model version serves: immutable snapshots, and the one reference that swaps between them.

Why snapshots: a request takes the current :class:`Served` once and uses only it, so an answer
never mixes two versions (or a catalogue before and after a change). Promotion builds the new
snapshot completely (model loaded, Milvus collection built and loaded, catalogue changes
replayed), then swaps one reference and points the production alias at the new collection;
requests in flight finish on the old one.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed, with_overrides
from coldrec.core.paths import current_version, resolve_model
from coldrec.runtime import item_index
from coldrec.runtime.candidates import CandidateRanker
from coldrec.runtime.version import load_version

log = logging.getLogger(__name__)


class NotReady(ColdrecError):
    """The engine has no version loaded yet (503)."""


@dataclass(frozen=True)
class Served:
    """One loaded version as served: never changed in place (a catalogue change makes a new one)."""

    version: str
    model_dir: Path
    model: Any  # ColdrecRuntime
    ranker: CandidateRanker
    collection: str
    categories: dict[str, np.ndarray]  # lower-cased category -> its catalogue rows (built once per snapshot)
    prices: np.ndarray
    in_stock: np.ndarray
    removed: np.ndarray | None = None  # items deleted since the version was trained (never served)

    def __post_init__(self) -> None:
        if self.removed is None or len(self.removed) != len(self.in_stock):
            old = np.zeros(0, bool) if self.removed is None else self.removed
            object.__setattr__(self, "removed", np.concatenate([old, np.zeros(len(self.in_stock) - len(old), bool)]))


def _categories(value: Any) -> frozenset[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return frozenset()
    return frozenset(t.strip().lower() for t in str(value).replace("|", ",").split(",") if t.strip())


def item_facts(items) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """What the filters read, per catalogue row: category -> rows, prices, in stock."""
    cats, prices, stock = item_index.item_fields(items)
    rows: dict[str, list[int]] = {}
    for r, value in enumerate(cats):
        for c in _categories(value):
            rows.setdefault(c, []).append(r)
    return {c: np.array(r, np.int64) for c, r in rows.items()}, prices, stock


def load_served(model_dir: Path, params: dict[str, Any], milvus: Any, dataset: str) -> Served:
    """A complete snapshot of one version: model, its Milvus collection (built if missing), ranker."""
    sv = typed(params).serving
    # one ONNX Runtime thread per query: requests already run in parallel on their own threads
    model = load_version(model_dir, with_overrides(params, {"quantize": {"intra_op_threads": sv.onnx_threads}}))
    name = item_index.collection_name(dataset, model_dir.name)
    ranker = item_index.served_ranker(model, sv, milvus, name, batching=sv.batch_searches)
    return Served(model_dir.name, model_dir, model, ranker, name, *item_facts(model.train.items))


class Versions:
    """The snapshot that serves one dataset: loaded from a models folder's ``current`` pointer
    (followed as it moves) or from one fixed version (``follows`` False).

    ``prepare(milvus, served)`` turns every freshly loaded snapshot into the one to serve (the
    engine replays the catalogue change log there). Every swap, promotion or catalogue change,
    holds one lock, so two changes never race on the reference.
    """

    def __init__(self, model_path: Path, follows: bool, params: dict[str, Any], dataset: str,
                 prepare: Callable[[Any, Served], Served]):
        self.model_path, self.follows, self.params, self.dataset = model_path, follows, params, dataset
        self.prepare = prepare
        self.alias = item_index.alias_name(dataset)
        self.milvus: Any = None
        self.served: Served | None = None
        self._lock = threading.Lock()
        self._failed: Path | None = None  # the last version that could not be loaded

    def target(self) -> Path:
        return current_version(self.model_path) if self.follows else resolve_model(self.model_path)

    def start(self, milvus: Any) -> Served:
        self.milvus = milvus
        return self.promote(self.target())

    def snapshot(self) -> Served:
        s = self.served
        if s is None:
            raise NotReady("the model is still loading")
        return s

    def promote(self, model_dir: Path) -> Served:
        """Load ``model_dir`` completely, then switch to it (requests in flight finish on the old one)."""
        with self._lock:
            if self.served is not None and self.served.model_dir == model_dir:
                return self.served
            served = self.prepare(self.milvus, load_served(model_dir, self.params, self.milvus, self.dataset))
            self.served = served
            item_index.point_alias(self.milvus, self.alias, served.collection)
            log.info("serving %s (collection %s)", served.version, served.collection)
            return served

    def refresh(self) -> bool:
        """Follow the promoted version: switch when the ``current`` pointer names another one."""
        if not self.follows:
            return False
        target = self.target()
        if self.served is not None and target == self.served.model_dir or target == self._failed:
            return False
        try:
            self.promote(target)
        except Exception:
            self._failed = target  # not retried every few seconds: only when the pointer names another version
            raise
        self._failed = None
        return True

    def watch(self, every: float) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - a bad new version must not stop serving the old
                    log.error("not switching version: %s", exc)

        t = threading.Thread(target=loop, name="coldrec-version-watch", daemon=True)
        t.start()
        return t

    def change(self, make: Callable[[Served], Served]) -> tuple[Served, Served]:
        """Swap in ``make(current)`` (under the swap lock); (before, after)."""
        with self._lock:
            before = self.snapshot()
            after = make(before)
            self.served = after
        return before, after
