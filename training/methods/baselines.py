"""Plain baselines: training popularity, popularity within the shopper's segment, item-KNN co-occurrence."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from coldrec.runtime.recommender import Recommender, Signals, TrainData


class Popularity(Recommender):
    """Most distinct buyers in the training window; ignores the profile."""

    name = "popularity"

    def has_signal(self, profile: Signals) -> bool:
        return False


class SegmentPopularity(Recommender):
    """Most bought by training shoppers who share the profile's attributes (country, ...); overall
    popularity for a profile without a known attribute. The yardstick for ``coldrec``'s ``attr``
    component: without it, a k = 0 gain could be "popular in your country" and nothing more."""

    name = "segment_popularity"

    def __init__(self, prior_users: float = 10.0, max_values: int = 1000):
        self.prior_users, self.max_values = float(prior_users), int(max_values)

    def fit(self, train: TrainData) -> SegmentPopularity:
        from coldrec.runtime.attributes import AttributePopularity

        super().fit(train)
        self.attrs = AttributePopularity.fit(train, self.prior_users, self.max_values)
        return self

    def has_signal(self, profile: Signals) -> bool:
        return bool(self.attrs.known(profile))

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        return self.attrs.profile_scores(profiles)

    def reason(self, profile: Signals, item: int) -> str:
        from coldrec.runtime.attributes import like_you

        pairs = self.attrs.known(profile)
        return like_you(pairs) if pairs else "popular with shoppers"


class ItemKNN(Recommender):
    """Cosine item-item co-occurrence over training users; score = sum over the profile's items.

    ``alpha`` makes the cosine asymmetric: sim(i, j) = co(i, j) / (n_i^alpha * n_j^(1 - alpha)).
    0.5 is the plain cosine; towards 1 it becomes P(j | i), which leans to popular j (movielens'
    user-split validation slice prefers 0.9, though its test users did not gain from it).
    ``user_weight="log"`` counts each user's co-occurrences with weight 1 / log2(1 + items they
    touched), so one wholesaler's 500-line history does not link everything to everything
    (inverse user frequency).
    """

    name = "item_knn"

    def __init__(self, shrink: float = 0.0, alpha: float = 0.5, user_weight: str = "none"):
        if user_weight not in ("none", "log"):
            raise ValueError(f"item_knn user_weight: {user_weight!r} is not 'none' or 'log'")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"item_knn alpha: {alpha!r} is outside [0, 1]")
        self.shrink, self.alpha, self.user_weight = shrink, float(alpha), user_weight

    def fit(self, train: TrainData) -> ItemKNN:
        super().fit(train)
        x = train.matrix.tocsr().astype(np.float32)
        counts = _off_diagonal(x.T @ x)  # raw co-occurrence counts: what the shrinkage trusts
        co = counts
        if self.user_weight == "log":
            per_user = np.asarray(x.sum(axis=1)).ravel()
            xw = sp.diags(1.0 / np.log2(1.0 + np.maximum(per_user, 1.0))).astype(np.float32) @ x
            co = _off_diagonal(xw.T @ x)
        n = np.asarray(x.sum(axis=0)).ravel()
        left = np.divide(1.0, n ** self.alpha, out=np.zeros_like(n), where=n > 0)
        right = np.divide(1.0, n ** (1.0 - self.alpha), out=np.zeros_like(n), where=n > 0)
        self.sim = (sp.diags(left) @ co @ sp.diags(right)).tocsr()
        if self.shrink:
            self.sim = self.sim.multiply(shrunk(counts, self.shrink)).tocsr()
        return self

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        rows, cols = [], []
        for r, p in enumerate(profiles):
            idx = sorted(set(self.train.known(p.items)))
            rows += [r] * len(idx)
            cols += idx
        q = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(profiles), self.train.n_items))
        return np.asarray((q @ self.sim).todense(), dtype=np.float32)


def _off_diagonal(m) -> sp.csr_matrix:
    """An item's co-occurrence with itself is no similarity."""
    m = m.tocsr()
    m.setdiag(0)
    m.eliminate_zeros()
    return m


def shrunk(counts: sp.csr_matrix, shrink: float) -> sp.csr_matrix:
    """co / (co + shrink) on the same sparsity pattern: damps pairs seen only once or twice."""
    out = counts.copy()
    out.data = out.data / (out.data + shrink)
    return out
