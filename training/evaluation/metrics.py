"""Ranking metrics over the full catalogue.

Ties are broken *pessimistically*: among items with equal scores, targets rank after
non-targets (then by catalogue order), so a method cannot gain from returning many equal
scores. Recall@N = hits / |targets|; NDCG@N uses the ideal DCG of min(|targets|, N) hits.
Users without targets are skipped (they are not counted in n_users).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def top_n(scores: np.ndarray, targets: np.ndarray, n: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """Indices of the n best items for one user, pessimistic on ties, excluded items removed."""
    s = scores.astype(np.float64, copy=True)
    if excluded is not None and len(excluded):
        s[excluded] = -np.inf
    valid = np.isfinite(s)
    n = min(n, int(valid.sum()))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    thr = np.partition(s[valid], len(s[valid]) - n)[len(s[valid]) - n]
    cand = np.flatnonzero(valid & (s >= thr))
    is_target = np.isin(cand, targets)
    order = np.lexsort((cand, is_target, -s[cand]))
    return cand[order][:n]


@dataclass
class UserMetrics:
    ndcg: float
    recall: float
    hit: float
    mrr: float


def user_metrics(ranked: np.ndarray, targets: np.ndarray, n: int) -> UserMetrics:
    ranked = ranked[:n]
    hits = np.isin(ranked, targets)
    if len(targets) == 0:
        raise ValueError("a user without targets has no metrics")
    gains = hits / np.log2(np.arange(2, len(ranked) + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(len(targets), n) + 2))).sum()
    first = np.flatnonzero(hits)
    return UserMetrics(
        ndcg=float(gains.sum() / ideal),
        recall=float(hits.sum() / len(targets)),
        hit=float(hits.any()),
        mrr=float(1.0 / (first[0] + 1)) if len(first) else 0.0,
    )


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 42, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean over users resampled with replacement."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0 or n_boot <= 0:  # evaluation.bootstrap: 0 turns the interval off
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))
