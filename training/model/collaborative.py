"""Fit the collaborative parts of the model: co-occurrence similarities and popularity priors.

The runtime scores with :class:`coldrec.runtime.parts.CollaborativeParts`; this module computes
one from training events (and the item sequences fine-tuning samples from).
"""
from __future__ import annotations

import numpy as np

from coldrec.core.params import ModelParams
from coldrec.runtime.attributes import AttributePopularity
from coldrec.runtime.parts import ArrivalHistory, CollaborativeParts
from coldrec.runtime.recommender import TrainData
from training.methods.baselines import ItemKNN


def fit_parts(train: TrainData, cfg: ModelParams, knn_choice: tuple[float, str] | None = None) -> CollaborativeParts:
    """``knn_choice`` = (alpha, user_weight) of both co-occurrence similarities; default: the first candidates."""
    alpha, user_weight = knn_choice or (cfg.knn_alpha[0], cfg.knn_user_weight[0])
    knn = item_similarity(train, cfg.knn_shrink, alpha, user_weight)
    session = item_similarity(sessions(train), cfg.knn_shrink, alpha, user_weight)
    pop = np.log1p(train.popularity())
    recent_pop = recent_popularity(train, cfg.recent_days)
    new = (train.popularity() == 0).astype(np.float32)  # no training interaction: a new arrival
    attrs = AttributePopularity.fit(train, cfg.attribute_prior_users, cfg.attribute_max_values)
    return CollaborativeParts(knn, session, pop, recent_pop, new, ArrivalHistory.fit(train, cfg.arrival_days[0]), attrs)


def item_similarity(train: TrainData, shrink: float, alpha: float, user_weight: str):
    return ItemKNN(shrink=shrink, alpha=alpha, user_weight=user_weight).fit(train).sim


def recent_popularity(train: TrainData, days: int) -> np.ndarray:
    """log(1 + distinct buyers) per item over the last ``days`` of the training events ("trending")."""
    import pandas as pd

    ev = train.events.dropna(subset=["item_id"])
    recent = ev[ev["timestamp"] >= ev["timestamp"].max() - pd.Timedelta(days=days)]
    counts = recent.drop_duplicates(["user_id", "item_id"])["item_id"].map(train.item_index).dropna().astype(int)
    return np.log1p(np.bincount(counts, minlength=train.n_items).astype(np.float32))


def sessions(train: TrainData) -> TrainData:
    """Rows = one user's day (a basket / viewing session) instead of a whole user history."""
    ev = train.events.dropna(subset=["item_id"])
    day = ev["timestamp"].dt.strftime("%Y-%m-%d")
    by_day = ev.assign(user_id=ev["user_id"].astype(str) + "@" + day)
    return TrainData.build(by_day, train.items, seed=train.seed)


def sequences(data: TrainData) -> list[np.ndarray]:
    """Each user's distinct catalogue items (indices) in the order first touched."""
    ev = data.events.dropna(subset=["item_id"]).sort_values("timestamp", kind="stable")
    ev = ev.drop_duplicates(["user_id", "item_id"])
    idx = ev["item_id"].map(data.item_index)
    ev = ev.assign(idx=idx).dropna(subset=["idx"])
    return [g.to_numpy(dtype=np.int64) for _, g in ev.groupby("user_id", sort=True)["idx"]]
