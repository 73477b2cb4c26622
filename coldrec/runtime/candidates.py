"""Two-stage ranking: gather candidates, then rank only them with the model's own blend.

Why: the scorer (:mod:`coldrec.runtime.scorer`) scores every component over the whole catalogue,
one dense row per profile: fine for evaluation on a few thousand items, not for a 1M-item
catalogue at serving latency. Here the catalogue-wide work is replaced by

* **candidates**: the item index's nearest items to the profile vector (an :class:`ItemIndex`,
  Milvus when serving, brute-force NumPy as the floor), the co-occurrence neighbours of the
  shopper's items (sparse rows), the query's seed items' neighbours, and the top items of each
  prior (popular, trending, new, popular when you arrived, popular with shoppers like you);
* **exact standardisation**: each component is standardised with its mean and standard deviation
  over the *whole* catalogue, computed without scoring it: ``enc`` from the catalogue's mean
  vector and second-moment matrix (``mean = u.v_bar``, ``E[s^2] = u'Gu``), sparse components
  from their non-zeros, priors once (or once per arrival window / attribute set, cached).

So a candidate's blended score equals the full scorer's score for it; the only approximation is
an item missing from the candidates (and the index's own recall).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from coldrec.runtime import reasons
from coldrec.runtime.blend import bucket_of, profile_matrix
from coldrec.runtime.recommender import Recommendation, Signals
from coldrec.runtime.scorer import ColdrecRuntime, diverse

PRIORS = ("pop", "recent", "new")  # the same vector for every profile
SPARSE = ("knn", "session", "qknn")

# a dense prior row over the catalogue, its (mean, standard deviation) and its top rows
DensePrior = tuple[np.ndarray, tuple[float, float], np.ndarray]


class ItemIndex(Protocol):
    """Nearest catalogue rows to query vectors (inner product on unit vectors)."""

    def search(self, vectors: np.ndarray, limit: int, mask_expr: str | None = None,
               bought_only: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (catalogue row indices, similarities), best first."""
        ...


class NumpyIndex:
    """Brute-force top-k over the item vectors: exact, the physical floor the Milvus index is
    measured against, and the index tests use. ``mask_expr`` is not understood here: pass
    ``allowed`` (a boolean row mask) to the ranker instead, which applies to every source."""

    def __init__(self, vecs: np.ndarray, bought: np.ndarray | None = None):
        self.vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        self.bought = bought

    def search(self, vectors: np.ndarray, limit: int, mask_expr: str | None = None,
               bought_only: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        sims = np.atleast_2d(vectors).astype(np.float32) @ self.vecs.T
        if bought_only and self.bought is not None:
            sims[:, ~self.bought] = -np.inf
        out = []
        for row in sims:
            m = min(limit, int(np.isfinite(row).sum()))
            if m <= 0:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            top = np.argpartition(-row, m - 1)[:m]
            top = top[np.argsort(-row[top], kind="stable")]
            out.append((top.astype(np.int64), row[top]))
        return out


@dataclass(frozen=True)
class CandidateSizes:
    ann: int  # nearest items to the profile vector (params.yaml serving.ann_candidates)
    neighbours: int  # strongest co-occurrence neighbours per sparse component
    prior: int  # top items of each prior


class _Row:
    """One component's values on the candidates, read by global item index (``comps[c][0, i]``)
    so :func:`coldrec.runtime.reasons.explain` reads it like a dense row."""

    def __init__(self, values: np.ndarray, pos: dict[int, int]):
        self.values, self.pos = values, pos

    def __getitem__(self, key: tuple[int, int]) -> float:
        return float(self.values[self.pos[int(key[1])]])


@dataclass
class Ranked:
    """One profile's candidates (global item rows), their blended scores and per-component values."""

    items: np.ndarray
    scores: np.ndarray
    comps: dict[str, _Row]
    weights: dict[str, float]
    text_vec: np.ndarray | None
    seeds: tuple[np.ndarray, np.ndarray] | None


def _moments(x: np.ndarray, n: int) -> tuple[float, float]:
    """Mean and population standard deviation of an n-long row whose non-zeros are ``x``."""
    x = np.asarray(x, np.float64)
    mu = float(x.sum()) / n
    return mu, float(np.sqrt(max(float((x * x).sum()) / n - mu * mu, 0.0)))


def _nonzeros(rows: sp.csr_matrix, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Row r of a CSR matrix as sorted (column indices, values)."""
    lo, hi = rows.indptr[r], rows.indptr[r + 1]
    idx, vals = rows.indices[lo:hi].astype(np.int64), rows.data[lo:hi].astype(np.float32)
    order = np.argsort(idx, kind="stable")
    return idx[order], vals[order]


def _lookup(idx: np.ndarray, vals: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Values of a sparse row (sorted ``idx``) at ``cand`` (0 where absent)."""
    out = np.zeros(len(cand), np.float32)
    if len(idx):
        pos = np.minimum(np.searchsorted(idx, cand), len(idx) - 1)
        hit = idx[pos] == cand
        out[hit] = vals[pos[hit]]
    return out


def _top(row: np.ndarray, m: int) -> np.ndarray:
    m = min(m, len(row))
    if m <= 0:
        return np.zeros(0, np.int64)
    return np.argpartition(-row, m - 1)[:m].astype(np.int64)


class CandidateRanker:
    """The served ranking of one model version: ``index`` finds nearest items, ``model`` blends."""

    def __init__(self, model: ColdrecRuntime, index: ItemIndex, sizes: CandidateSizes, cache_size: int = 256):
        self.model, self.index, self.sizes = model, index, sizes
        v = model.item_vecs.astype(np.float64)
        self.n = len(v)
        self.v_bar = v.mean(axis=0)
        self.gram = (v.T @ v) / self.n  # second moments: enc's catalogue-wide variance per profile
        parts = model.parts
        self.priors = {name: np.asarray(getattr(parts, name), np.float32) for name in PRIORS}
        self.prior_stats = {name: _moments(row, self.n) for name, row in self.priors.items()}
        self.prior_top = {name: _top(row, sizes.prior) for name, row in self.priors.items()}
        self.bought = np.asarray(parts.pop) > 0
        self._cache: OrderedDict[tuple[str, tuple[object, ...]], DensePrior] = OrderedDict()
        self.cache_size = cache_size

    # ------------------------------------------------------------ dense priors, cached
    def _cached(self, key: tuple[str, tuple[object, ...]], compute: Callable[[], np.ndarray]) -> DensePrior:
        hit = self._cache.get(key)
        if hit is None:
            row = compute()
            hit = (row, _moments(row, self.n), _top(row, self.sizes.prior))
            self._cache[key] = hit
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return hit

    def _arrival(self, p: Signals) -> DensePrior:
        h = self.model.parts.history
        w = h.window(p.at)
        return self._cached(("arrival", w), lambda: h.counts(w) if w[1] > w[0] else np.zeros(self.n, np.float32))

    def _attr(self, p: Signals) -> DensePrior | None:
        attrs = self.model.parts.attrs
        pairs = tuple(attrs.known(p))
        if not pairs:
            return None
        return self._cached(("attr", pairs), lambda: attrs.scores[[attrs.row[kv] for kv in pairs]].mean(axis=0))

    # ------------------------------------------------------------ ranking
    def _query_seeds(self, text_vec: np.ndarray, hits: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`ColdrecRuntime._query_seeds`: the bought items nearest the text. ``hits``: the
        index's answer for this very vector (a profile with text only), best first; when it holds
        enough bought items they are the answer and no second search is needed."""
        cfg = self.model.cfg
        top = sims = None
        if hits is not None:
            rows, hs = hits
            keep = self.bought[rows]
            if keep.sum() >= cfg.query_seeds:
                top, sims = rows[keep][:cfg.query_seeds], hs[keep][:cfg.query_seeds]
        if top is None:
            (top, sims), = self.index.search(text_vec[None, :], cfg.query_seeds, bought_only=True)
        assert sims is not None  # set with top, in either branch
        if not len(top):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        w = np.exp((sims - sims[0]) / cfg.query_seed_tau)
        return top, (w / w.sum()).astype(np.float32)

    def rank(self, profiles: Sequence[Signals], mask_expr: str | None = None,
             allowed: np.ndarray | None = None) -> list[Ranked]:
        """Candidates and blended scores per profile. ``mask_expr`` filters the index search (a
        Milvus expression); ``allowed`` (bool per catalogue row) filters every candidate source."""
        m = self.model
        text = m._text_vectors(profiles)
        users = m._user_vectors(m.train, profiles, text)
        hits = [(rows[rows < self.n], sims[rows < self.n]) for rows, sims in self.index.search(users, self.sizes.ann, mask_expr)]
        q = profile_matrix(m.train, profiles, m.cfg.history, m.cfg.recency_decay)
        knn_rows = (q @ m.parts.knn_sim).tocsr()
        session_rows = (q @ m.parts.session_sim).tocsr()
        out = []
        for r, p in enumerate(profiles):
            w = m.weights[bucket_of(len(m.train.known(p.items)), p.has_text())]
            text_vec = text.get(r)
            text_only = text_vec is not None and not m.train.known(p.items)  # the profile vector is the text's
            seeds = self._query_seeds(text_vec, hits[r] if text_only and mask_expr is None else None) \
                if text_vec is not None else None
            sparse = {"knn": _nonzeros(knn_rows, r), "session": _nonzeros(session_rows, r)}
            if seeds is not None and len(seeds[0]):
                sparse["qknn"] = _nonzeros(sp.csr_matrix(seeds[1][None, :]) @ m.parts.knn_sim[seeds[0]], 0)
            dense_prior = {name: (self.priors[name], self.prior_stats[name], self.prior_top[name]) for name in PRIORS}
            dense_prior["arrival"] = self._arrival(p)
            attr = self._attr(p)
            if attr is not None:
                dense_prior["attr"] = attr
            pool = [hits[r][0]]
            for name, (idx, vals) in sparse.items():
                if w.get(name) and len(idx):
                    pool.append(idx[_top(vals, self.sizes.neighbours)])
            for name, (_, _, top) in dense_prior.items():
                if w.get(name):
                    pool.append(top)
            cand = np.unique(np.concatenate(pool).astype(np.int64))
            if allowed is not None:
                cand = cand[allowed[cand]]
            comps: dict[str, np.ndarray] = {}
            if w.get("enc"):
                u = users[r].astype(np.float64)
                mu = float(u @ self.v_bar)
                sd = float(np.sqrt(max(float(u @ self.gram @ u) - mu * mu, 0.0)))
                comps["enc"] = self._z(m.item_vecs[cand] @ users[r], mu, sd)
            for name, (idx, vals) in sparse.items():
                if w.get(name):
                    comps[name] = self._z(_lookup(idx, vals, cand), *_moments(vals, self.n))
            if w.get("qknn") and "qknn" not in comps:
                comps["qknn"] = np.zeros(len(cand), np.float32)
            for name, (row, stats, _) in dense_prior.items():
                if w.get(name):
                    comps[name] = self._z(row[cand], *stats)
            for name in w:
                if w[name] and name not in comps:  # a component with no data for this profile: flat
                    comps[name] = np.zeros(len(cand), np.float32)
            scores = np.zeros(len(cand), np.float32)
            for name, weight in w.items():
                if weight:
                    scores += np.float32(weight) * comps[name]
            pos = {int(i): j for j, i in enumerate(cand)}
            out.append(Ranked(cand, scores, {k: _Row(v, pos) for k, v in comps.items()}, w, text_vec, seeds))
        return out

    @staticmethod
    def _z(x: np.ndarray, mu: float, sd: float) -> np.ndarray:
        if sd <= 1e-9:
            return np.zeros(len(x), np.float32)
        return ((np.asarray(x, np.float64) - mu) / sd).astype(np.float32)

    def score(self, profiles: list[Signals]) -> np.ndarray:
        """Dense scores for the evaluation harness: the blend on candidates, -inf elsewhere."""
        out = np.full((len(profiles), self.n), -np.inf, np.float32)
        for r, ranked in enumerate(self.rank(profiles)):
            out[r, ranked.items] = ranked.scores
        return out

    def recommend(self, profile: Signals, n: int = 10, exclude: Sequence[str] = (), mask_expr: str | None = None,
                  allowed: np.ndarray | None = None) -> list[Recommendation]:
        """As :meth:`ColdrecRuntime.recommend` (same exclusions, diversity and reasons), on candidates."""
        m = self.model
        (ranked,) = self.rank([profile], mask_expr, allowed)
        s = ranked.scores.copy()
        banned = set(m.train.known(list(exclude) + list(profile.items)))
        if banned:
            s[np.isin(ranked.items, list(banned))] = -np.inf
        order_local = [j for j in np.argsort(-s, kind="stable")[:max(n * 5, n)] if np.isfinite(s[j])]
        order = [int(ranked.items[j]) for j in order_local]
        score_of = {int(ranked.items[j]): float(s[j]) for j in order_local}
        if bucket_of(len(m.train.known(profile.items)), profile.has_text()) == "0":
            order = diverse(order, m.item_vecs, n, m.cfg.diversity_max_cosine)
        return [Recommendation(str(m.train.item_ids[i]), score_of[i],
                               reasons.explain(m.train, m.parts, m.item_vecs, m.cfg.history, profile, i,
                                               ranked.comps, ranked.weights, ranked.text_vec, ranked.seeds))
                for i in order[:n]]
