"""Why an item was recommended, in words a shopper can check.

The reason comes from the strongest of the shopper's own signals that lifted the item and can
truthfully explain it (a co-buy claim needs a co-buy); else from the strongest prior that lifted
it. Priors lift every top item alike, so they explain none of them unless nothing else can.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from coldrec.runtime.attributes import like_you
from coldrec.runtime.blend import COMPONENTS, PERSONAL_COMPONENTS
from coldrec.runtime.parts import CollaborativeParts, utc_ns
from coldrec.runtime.recommender import Signals, TrainData


class ComponentRows(Protocol):
    """A blend component's scores, read as ``comps[c][0, item]``: the scorer's dense (profiles x
    items) array, or the candidate ranker's row over its candidates."""

    def __getitem__(self, key: tuple[int, int], /) -> float: ...


def explain(data: TrainData, parts: CollaborativeParts, item_vecs: np.ndarray, history: int, profile: Signals,
            item: int, comps: Mapping[str, ComponentRows], w: dict[str, float], text_vec: np.ndarray | None,
            seeds: tuple[np.ndarray, np.ndarray] | None) -> str:
    """The reason for ``item`` given the blend's components for this one profile (row 0)."""
    contrib = {c: w.get(c, 0.0) * comps[c][0, item] for c in COMPONENTS if w.get(c)}
    known = data.known(profile.items)[-history:]
    titles = data.items["title"]
    asked = (f"your search '{profile.query}'" if profile.query
             else f"your interests ({', '.join(profile.interests)})")
    # the shopper's own signal first: priors lift every top item alike and explain none of them
    lifted = [c for c in contrib if contrib[c] > 0]
    for driver in sorted(lifted, key=lambda c: (c not in PERSONAL_COMPONENTS, -contrib[c])):
        if driver in ("knn", "session") and known:
            sim = parts.knn_sim if driver == "knn" else parts.session_sim
            src = max(known, key=lambda j: entry(sim, j, item))
            if entry(sim, src, item) > 0:
                return (f"often bought with '{titles.iat[src]}'" if driver == "knn"
                        else f"in the same baskets as '{titles.iat[src]}'")
        elif driver == "qknn" and seeds is not None:
            links = [wt * entry(parts.knn_sim, j, item) for j, wt in zip(*seeds)]
            if links and max(links) > 0:
                return f"often bought with '{titles.iat[seeds[0][int(np.argmax(links))]]}', a match for {asked}"
        elif driver == "enc" and (known or text_vec is not None):
            sims = {f"similar to '{titles.iat[j]}'": float(item_vecs[j] @ item_vecs[item]) for j in known}
            if text_vec is not None:
                sims[f"matches {asked}"] = float(text_vec @ item_vecs[item])
            return max(sims, key=sims.__getitem__)
        elif driver == "new":
            return "new arrival"
        elif driver == "recent":
            return "trending with shoppers right now"
        elif driver == "arrival":
            return arrival_reason(parts, profile)
        elif driver == "attr" and (pairs := parts.attrs.known(profile)):
            return like_you(pairs)
        elif driver == "pop":
            return "popular with shoppers"
    buyers = int(round(float(np.expm1(parts.pop[item]))))  # nothing above pulled it up: say what is true
    return f"bought by {buyers} shopper{'s' if buyers != 1 else ''}" if buyers else "new arrival"


def entry(m: sp.csr_matrix, i: int, j: int) -> float:
    """``m[i, j]`` of a CSR matrix without scipy's indexing machinery (~40 us a call, ten items with
    three sources each per request): one binary search in row i (indices sorted, else a scan)."""
    lo, hi = m.indptr[i], m.indptr[i + 1]
    idx = m.indices[lo:hi]
    if m.has_sorted_indices:
        k = int(np.searchsorted(idx, j))
        return float(m.data[lo + k]) if k < len(idx) and idx[k] == j else 0.0
    hit = np.flatnonzero(idx == j)
    return float(m.data[lo:hi][hit].sum()) if len(hit) else 0.0


def arrival_reason(parts: CollaborativeParts, profile: Signals) -> str:
    h = parts.history
    live = profile.at is None or not len(h.ns) or utc_ns(profile.at) >= h.ns[-1]
    span = window_words(h.days)
    if live:
        return f"popular with shoppers over the last {span}" if span else "popular with shoppers"
    return f"popular with shoppers in the {span} before you arrived" if span else "popular with shoppers when you arrived"


def window_words(days: float | None) -> str:
    if days is None:
        return ""
    return "year" if days == 365 else f"{days:g} days"
