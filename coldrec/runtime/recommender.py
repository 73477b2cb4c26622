"""What every recommender shares: the training view of the data, the user profile, the method API.

Baselines, peers and the product's own model are all :class:`Recommender` subclasses, so the
evaluation harness and the serving endpoint treat them alike. A method scores the *whole*
catalogue (evaluation ranks everything, no sampled negatives); ``recommend`` is derived from it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class Signals:
    """What we know about a (possibly brand-new) shopper, oldest signal first."""

    items: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)  # parallel to items; empty = unknown
    query: str | None = None
    interests: list[str] = field(default_factory=list)  # categories / keywords chosen at onboarding
    attributes: dict[str, Any] = field(default_factory=dict)
    at: Any = None  # when the shopper arrived (a timestamp; naive = UTC); None = now

    def has_text(self) -> bool:
        return bool((self.query and self.query.strip()) or self.interests)


@dataclass
class TrainData:
    """The training part of a split, indexed once and shared by every method."""

    events: pd.DataFrame  # canonical events, training period / users only
    items: pd.DataFrame  # the full catalogue (ranked in full at evaluation time)
    item_ids: np.ndarray
    item_index: dict[str, int]
    user_ids: np.ndarray
    matrix: sp.csr_matrix  # users x items, 1.0 where the user interacted with the item
    seed: int = 42
    # how new users will arrive: "time" (after the training period: production, time split) or
    # "users" / "warm" (the evaluation split's protocol); a method's own validation slice mirrors it
    protocol: str = "time"
    users: pd.DataFrame | None = None  # user attributes (user_id + columns), where the data has them

    @classmethod
    def build(cls, events: pd.DataFrame, items: pd.DataFrame, seed: int = 42, protocol: str = "time",
              users: pd.DataFrame | None = None) -> TrainData:
        item_ids = items["item_id"].to_numpy(dtype=object)
        item_index = {iid: i for i, iid in enumerate(item_ids)}
        ev = events[events["item_id"].notna()]
        ev = ev[ev["item_id"].isin(item_index.keys())]
        user_ids = np.array(sorted(ev["user_id"].unique()), dtype=object)
        uidx = {u: i for i, u in enumerate(user_ids)}
        pairs = ev[["user_id", "item_id"]].drop_duplicates()
        rows = pairs["user_id"].map(uidx).to_numpy()
        cols = pairs["item_id"].map(item_index).to_numpy()
        matrix = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                               shape=(len(user_ids), len(item_ids)))
        return cls(events=events, items=items.reset_index(drop=True), item_ids=item_ids, item_index=item_index,
                   user_ids=user_ids, matrix=matrix, seed=seed, protocol=protocol, users=users)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def popularity(self) -> np.ndarray:
        """Distinct training users per item."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.float32)

    def known(self, item_ids: Sequence[str]) -> list[int]:
        return [self.item_index[i] for i in item_ids if i in self.item_index]


@dataclass
class Recommendation:
    item_id: str
    score: float
    reason: str


class Recommender:
    """Base class. Subclasses implement :meth:`fit` and :meth:`_score` for profiles with signal.

    A profile with no usable signal (no known items and, for text-aware methods, no text) gets
    the training popularity ranking: the honest fallback every method shares, so k = 0 rows
    compare methods on their cold fallback only.
    """

    name = "base"
    uses_text = False  # True: can score a query / interests without any items

    def fit(self, train: TrainData) -> Recommender:
        self.train = train
        self._popularity = train.popularity()
        return self

    def has_signal(self, profile: Signals) -> bool:
        return bool(self.train.known(profile.items)) or (self.uses_text and profile.has_text())

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        raise NotImplementedError

    def score(self, profiles: list[Signals]) -> np.ndarray:
        """(len(profiles), n_items) scores, higher is better."""
        out = np.tile(self._popularity, (len(profiles), 1)).astype(np.float32)
        with_signal = [i for i, p in enumerate(profiles) if self.has_signal(p)]
        if with_signal:
            out[with_signal] = self._score([profiles[i] for i in with_signal])
        return out

    def reason(self, profile: Signals, item: int) -> str:
        return "popular with shoppers" if not self.has_signal(profile) else f"recommended by {self.name}"

    def recommend(self, profile: Signals, n: int = 10, exclude: Sequence[str] = ()) -> list[Recommendation]:
        scores = self.score([profile])[0]
        banned = self.train.known(list(exclude) + list(profile.items))
        scores[banned] = -np.inf
        top = np.argsort(-scores, kind="stable")[:n]
        return [Recommendation(str(self.train.item_ids[i]), float(scores[i]), self.reason(profile, int(i)))
                for i in top if np.isfinite(scores[i])]
