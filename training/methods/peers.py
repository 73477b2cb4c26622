"""Peers from well-kept libraries, not re-implementations.

- ``implicit_als``: implicit's ALS; a new user is folded in with ``recalculate_user`` (one
  least-squares solve against the fixed item factors, no retraining).
- ``implicit_bpr``: implicit's BPR; implicit offers no fold-in for BPR, so a new user is the
  mean of the revealed items' factors (the usual item-based fold-in).
BPR and LightFM train with lock-free parallel SGD, which is not reproducible with more than one
thread: ``threads: 1`` (the default) keeps runs deterministic.

- ``lightfm``: LightFM hybrid (Kula 2015) with item features = item id + category + title/brand
  words, WARP loss; a new user is the mean of the revealed items' feature-based representations.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from coldrec.runtime.recommender import Recommender, Signals, TrainData


def _profile_matrix(train: TrainData, profiles: list[Signals]) -> sp.csr_matrix:
    rows, cols = [], []
    for r, p in enumerate(profiles):
        idx = sorted(set(train.known(p.items)))
        rows += [r] * len(idx)
        cols += idx
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(profiles), train.n_items))


def _mean_rows(vectors: np.ndarray, q: sp.csr_matrix) -> np.ndarray:
    counts = np.maximum(np.asarray(q.sum(axis=1)), 1.0)
    return np.asarray(q @ vectors) / counts


class ImplicitALS(Recommender):
    name = "implicit_als"

    def __init__(self, params: dict[str, Any]):
        self.p = dict(params)  # params.yaml methods.implicit_als

    def fit(self, train: TrainData) -> ImplicitALS:
        from implicit.cpu.als import AlternatingLeastSquares

        super().fit(train)
        with threadpool_limits(1, "blas"):  # implicit's own advice: BLAS threads fight its solver
            self.model = AlternatingLeastSquares(
                factors=int(self.p["factors"]), regularization=float(self.p["regularization"]), alpha=float(self.p["alpha"]),
                iterations=int(self.p["iterations"]), random_state=train.seed, num_threads=2)
            self.model.fit(train.matrix, show_progress=False)
        return self

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        q = _profile_matrix(self.train, profiles)
        users = self.model.recalculate_user(np.arange(len(profiles)), q)
        return np.asarray(users @ self.model.item_factors.T, dtype=np.float32)


class ImplicitBPR(Recommender):
    name = "implicit_bpr"

    def __init__(self, params: dict[str, Any]):
        self.p = dict(params)  # params.yaml methods.implicit_bpr

    def fit(self, train: TrainData) -> ImplicitBPR:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        super().fit(train)
        self.model = BayesianPersonalizedRanking(factors=int(self.p["factors"]), learning_rate=float(self.p["learning_rate"]),
                                                 regularization=float(self.p["regularization"]),
                                                 iterations=int(self.p["iterations"]), random_state=train.seed,
                                                 num_threads=int(self.p["threads"]))
        self.model.fit(train.matrix, show_progress=False)
        return self

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        f = np.asarray(self.model.item_factors)  # last column is the item bias in implicit's BPR
        users = _mean_rows(f, _profile_matrix(self.train, profiles))
        users[:, -1] = 1.0
        return np.asarray(users @ f.T, dtype=np.float32)


_WORD = re.compile(r"[a-z][a-z0-9]+")


def item_feature_matrix(train: TrainData, min_count: int = 2) -> tuple[sp.csr_matrix, list[str]]:
    """Identity + category + brand + title words (lower-cased, seen on >= min_count items)."""
    items = train.items
    tokens: list[set[str]] = []
    for col_values in zip(*(items[c].astype(object).where(items[c].notna(), "").astype(str)
                            if c in items.columns else [""] * len(items) for c in ("title", "category", "brand"))):
        title, category, brand = col_values
        t = {f"w:{w}" for w in _WORD.findall(title.lower())}
        t |= {f"c:{c.strip().lower()}" for c in category.split(",") if c.strip()}
        if brand.strip():
            t.add(f"b:{brand.strip().lower()}")
        tokens.append(t)
    counts: dict[str, int] = {}
    for t in tokens:
        for tok in t:
            counts[tok] = counts.get(tok, 0) + 1
    vocab = sorted(tok for tok, c in counts.items() if c >= min_count)
    vidx = {tok: train.n_items + i for i, tok in enumerate(vocab)}
    rows, cols = list(range(train.n_items)), list(range(train.n_items))
    for r, t in enumerate(tokens):
        for tok in t:
            if tok in vidx:
                rows.append(r)
                cols.append(vidx[tok])
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(train.n_items, train.n_items + len(vocab)))
    norms = np.asarray(m.sum(axis=1)).ravel()
    return (sp.diags(1.0 / norms) @ m).tocsr(), vocab


class LightFMHybrid(Recommender):
    name = "lightfm"

    def __init__(self, params: dict[str, Any]):
        self.p = dict(params)  # params.yaml methods.lightfm

    def fit(self, train: TrainData) -> LightFMHybrid:
        from lightfm import LightFM

        super().fit(train)
        self.features, _ = item_feature_matrix(train)
        self.model = LightFM(no_components=int(self.p["no_components"]), loss=str(self.p["loss"]),
                             learning_rate=float(self.p["learning_rate"]), item_alpha=float(self.p["item_alpha"]),
                             random_state=np.random.RandomState(train.seed))
        self.model.fit(train.matrix.tocoo(), item_features=self.features, epochs=int(self.p["epochs"]),
                       num_threads=int(self.p["threads"]))
        bias, emb = self.model.get_item_representations(self.features)
        self.item_bias, self.item_emb = bias.astype(np.float32), emb.astype(np.float32)
        return self

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        users = _mean_rows(self.item_emb, _profile_matrix(self.train, profiles))
        return (users @ self.item_emb.T + self.item_bias).astype(np.float32)
