"""The collaborative half of a fitted model: co-occurrence similarities and popularity priors.

A plain container the runtime scores with. It is computed at fit time
(``training.model.collaborative.fit_parts``) and saved in a version's ``collab.npz``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldrec.runtime.attributes import AttributePopularity
from coldrec.runtime.recommender import TrainData


class ArrivalHistory:
    """Each (user, item) first interaction in time order, to ask "what was popular when this shopper arrived"."""

    def __init__(self, ns: np.ndarray, idx: np.ndarray, n_items: int, days: float | None = None):
        self.ns, self.idx, self.n_items, self.days = ns, idx, n_items, days

    @classmethod
    def fit(cls, train: TrainData, days: float | None) -> ArrivalHistory:
        ev = train.events.dropna(subset=["item_id"])
        ev = ev[ev["item_id"].isin(train.item_index.keys())].sort_values("timestamp", kind="stable")
        ev = ev.drop_duplicates(["user_id", "item_id"])
        ns = pd.DatetimeIndex(ev["timestamp"]).asi8 if len(ev) else np.zeros(0, np.int64)
        return cls(np.asarray(ns, np.int64), ev["item_id"].map(train.item_index).to_numpy(np.int64), train.n_items, days)

    def scores(self, ats: Sequence[Any], days: float | None | str = "fitted") -> np.ndarray:
        """log(1 + distinct buyers) per item in the ``days`` before each arrival (None: all before);
        an arrival after the training period (or None = now) counts up to its end."""
        days = self.days if days == "fitted" else days
        out = np.zeros((len(ats), self.n_items), np.float32)
        if not len(self.ns):
            return out
        cache: dict[tuple[int, int], np.ndarray] = {}
        for r, at in enumerate(ats):
            key = self.window(at, days)
            if key not in cache:
                cache[key] = self.counts(key)
            out[r] = cache[key]
        return out

    def window(self, at: Any, days: float | None | str = "fitted") -> tuple[int, int]:
        """The slice of first interactions an arrival at ``at`` counts (a cache key: every shopper
        arriving after the training period shares one)."""
        days = self.days if days == "fitted" else days
        if not len(self.ns):
            return (0, 0)
        end = self.ns[-1] if at is None else min(utc_ns(at), int(self.ns[-1]))
        hi = int(np.searchsorted(self.ns, end, side="right"))
        lo = 0 if days is None else int(np.searchsorted(self.ns, end - int(float(days) * 86_400e9)))
        return (lo, hi)

    def counts(self, window: tuple[int, int]) -> np.ndarray:
        lo, hi = window
        return np.log1p(np.bincount(self.idx[lo:hi], minlength=self.n_items)).astype(np.float32)


def utc_ns(at: Any) -> int:
    """A timestamp (naive = UTC) as nanoseconds since the epoch."""
    ts = pd.Timestamp(at)
    ns: int = (ts.tz_localize("UTC") if ts.tzinfo is None else ts).value
    return ns


class CollaborativeParts:
    """Co-occurrence similarities and popularity priors for one set of training events."""

    def __init__(self, knn_sim: sp.csr_matrix, session_sim: sp.csr_matrix, pop: np.ndarray, recent: np.ndarray, new: np.ndarray,
                 history: ArrivalHistory | None = None, attrs: AttributePopularity | None = None):
        self.knn_sim, self.session_sim, self.pop, self.recent, self.new = knn_sim, session_sim, pop, recent, new
        self.history = history or ArrivalHistory(np.zeros(0, np.int64), np.zeros(0, np.int64), len(pop))
        self.attrs = attrs if attrs is not None else AttributePopularity.empty(len(pop))
