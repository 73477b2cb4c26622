"""The blend's vocabulary: component names, signal buckets, standardisation, profile weighting.

Shared by the runtime scorer (which blends) and the fit-time weight search (which tunes the
blend), so both read the same bucket of a profile and weight its items the same way.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from coldrec.runtime.recommender import Signals, TrainData

COMPONENTS = ("enc", "knn", "qknn", "session", "pop", "recent", "arrival", "attr", "new")
TEXT_COMPONENTS = ("enc", "qknn")  # zero-item profiles use these only when they carry text
NO_ITEM_COMPONENTS = ("enc", "qknn", "pop", "recent", "arrival", "attr", "new")  # usable without any known item
PERSONAL_COMPONENTS = ("knn", "session", "qknn", "enc")  # driven by what this shopper did or asked
QUERY_BUCKET = "query"
DEFAULT_WEIGHTS = {"0": {"pop": 0.5, "recent": 1.0}, QUERY_BUCKET: {"enc": 1.0, "qknn": 1.0, "recent": 0.25},
                   **{str(b): {"enc": 1.0, "knn": 1.0, "session": 0.5, "recent": 0.5} for b in range(1, 6)}}
EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "search": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "rate": 1.0}


def bucket_of(n_items: int, has_text: bool) -> str:
    """Blend weights depend on how much a shopper has shown: nothing, a query only, 1 .. 5+ items."""
    if n_items == 0:
        return QUERY_BUCKET if has_text else "0"
    return str(min(n_items, 5))


def standardise(s: np.ndarray) -> np.ndarray:
    """Per row: zero mean, unit variance (a flat row stays 0), so components blend on one scale."""
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    z: np.ndarray = np.divide(s - mu, sd, out=np.zeros_like(s), where=sd > 1e-9)
    return z


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weights for n items, oldest first: decay^(n-1), ..., decay, 1 (normalised)."""
    w = decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
    weights: NDArray[np.float32] = (w / w.sum()).astype(np.float32)
    return weights


def profile_matrix(data: TrainData, profiles: Sequence[Signals], history: int, decay: float) -> sp.csr_matrix:
    """Profiles x items (sparse): each profile's last ``history`` known items, weighted by recency."""
    rows, cols, vals = [], [], []
    for r, p in enumerate(profiles):
        known = data.known(p.items)[-history:]
        if known:
            rows += [r] * len(known)
            cols += known
            vals += list(recency_weights(len(known), decay))
    return sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(len(profiles), data.n_items))


def known_with_types(data: TrainData, p: Signals, history: int) -> tuple[list[int], list[str]]:
    """The profile's catalogue items (unknown ids dropped) with their event types, newest last."""
    types = p.event_types if len(p.event_types) == len(p.items) else ["view"] * len(p.items)
    pairs = [(data.item_index[i], t) for i, t in zip(p.items, types) if i in data.item_index][-history:]
    return [i for i, _ in pairs], [t for _, t in pairs]
