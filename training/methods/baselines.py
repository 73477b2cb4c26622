"""Plain baselines: training popularity and item-KNN co-occurrence."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from coldrec.recommender import Profile, Recommender, TrainData


class Popularity(Recommender):
    """Most distinct buyers in the training window; ignores the profile."""

    name = "popularity"

    def has_signal(self, profile: Profile) -> bool:
        return False


class ItemKNN(Recommender):
    """Cosine item-item co-occurrence over training users; score = sum over the profile's items."""

    name = "item_knn"

    def __init__(self, shrink: float = 0.0):
        self.shrink = shrink

    def fit(self, train: TrainData) -> "ItemKNN":
        super().fit(train)
        x = train.matrix.tocsc().astype(np.float32)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.sim = (sp.diags(inv) @ co @ sp.diags(inv)).tocsr()
        if self.shrink:
            self.sim.data = self.sim.data * (co.data / (co.data + self.shrink))
        return self

    def _score(self, profiles: list[Profile]) -> np.ndarray:
        rows, cols = [], []
        for r, p in enumerate(profiles):
            idx = sorted(set(self.train.known(p.items)))
            rows += [r] * len(idx)
            cols += idx
        q = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(profiles), self.train.n_items))
        return np.asarray((q @ self.sim).todense(), dtype=np.float32)

