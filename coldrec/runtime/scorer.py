"""The product's scorer: a fitted ``coldrec`` model's components, blended per signal bucket.

Components, each scored over the whole catalogue and standardised per profile:
  ``enc``     cosine between the user vector (recency/event-weighted mean of the fine-tuned item
              vectors of the shopper's items, plus query / interest text) and every item;
  ``knn``     recency-weighted item-item co-occurrence (shrunk cosine); ``session`` the same
              over same-day baskets;
  ``qknn``    co-occurrence from the items that best match the query / interest text: a shopper
              who searched "toy story" is scored like one who picked the matching film;
  ``pop`` / ``recent`` / ``arrival`` / ``new``  popularity priors (whole window, last days,
              the window before the shopper arrived, never bought yet);
  ``attr``    what shoppers sharing the profile's attributes bought.
Blend weights depend on how much the shopper has shown (0 items, query only, 1 .. 5+ items).

Why a class of its own: serving loads this from a model version without any fit-time code;
``training.model.hybrid.ColdrecModel`` subclasses it and adds fitting, so evaluation scores with
exactly the code that serves.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from coldrec.core.params import ModelParams
from coldrec.runtime import reasons
from coldrec.runtime.blend import (
    DEFAULT_WEIGHTS,
    EVENT_WEIGHTS,
    bucket_of,
    known_with_types,
    profile_matrix,
    recency_weights,
    standardise,
)
from coldrec.runtime.parts import CollaborativeParts
from coldrec.runtime.recommender import Recommendation, Recommender, Signals, TrainData


class ColdrecRuntime(Recommender):
    """Scores, recommends and explains from fitted parts; ``st`` is any encoder with
    ``encode(texts, batch_size=, normalize_embeddings=, convert_to_numpy=)`` (the int8
    :class:`~coldrec.runtime.onnx_encoder.OnnxEncoder` when serving)."""

    name = "coldrec"
    uses_text = True

    train: TrainData
    parts: CollaborativeParts
    item_vecs: np.ndarray
    st: Any
    # set by coldrec.runtime.version.attach_int8 when the int8 encoder replaces an attached one
    st_fp32: Any
    item_vecs_fp32: np.ndarray

    def __init__(self, cfg: ModelParams, template: str, max_chars: int):
        self.cfg = cfg
        self.template = template
        self.max_chars = int(max_chars)
        self.weights: dict[str, dict[str, float]] = {k: dict(v) for k, v in DEFAULT_WEIGHTS.items()}
        self.report: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    # ---------------------------------------------------------------- scoring
    def _text_vectors(self, profiles: Sequence[Signals]) -> dict[int, np.ndarray]:
        texts = {i: " ".join(filter(None, [p.query, *p.interests])) for i, p in enumerate(profiles) if p.has_text()}
        if not texts:
            return {}
        vecs = self.st.encode(list(texts.values()), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return dict(zip(texts.keys(), vecs))

    def _user_vectors(self, data: TrainData, profiles: Sequence[Signals],
                      text: dict[int, np.ndarray] | None = None) -> np.ndarray:
        out = np.zeros((len(profiles), self.item_vecs.shape[1]), np.float32)
        text = self._text_vectors(profiles) if text is None else text
        for r, p in enumerate(profiles):
            known, types = known_with_types(data, p, self.cfg.history)
            if known:
                w = recency_weights(len(known), self.cfg.recency_decay)
                w = w * np.array([EVENT_WEIGHTS.get(t, 1.0) for t in types], np.float32)
                out[r] = (self.item_vecs[known] * (w / w.sum())[:, None]).sum(0)
            if r in text:
                out[r] += text[r]
        unit: np.ndarray = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return unit

    def _enc_scores(self, data: TrainData, profiles: Sequence[Signals],
                    text: dict[int, np.ndarray] | None = None) -> np.ndarray:
        sims: np.ndarray = self._user_vectors(data, profiles, text) @ self.item_vecs.T
        return sims

    def _query_seeds(self, text_vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The items with training interactions that best match a text vector, and softmax weights."""
        sims = self.item_vecs @ text_vec
        sims = np.where(self.parts.pop > 0, sims, -np.inf)  # a never-bought item has no co-occurrence row
        m = min(self.cfg.query_seeds, int(np.isfinite(sims).sum()))
        if m <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        top = np.argpartition(-sims, m - 1)[:m]
        top = top[np.argsort(-sims[top], kind="stable")]
        w = np.exp((sims[top] - sims[top[0]]) / self.cfg.query_seed_tau)
        return top, (w / w.sum()).astype(np.float32)

    def _query_knn_scores(self, n: int, text: dict[int, np.ndarray]) -> np.ndarray:
        out = np.zeros((n, len(self.item_vecs)), np.float32)
        for r, vec in text.items():
            seeds, w = self._query_seeds(vec)
            if len(seeds):
                out[r] = np.asarray(self.parts.knn_sim[seeds].T @ w).ravel()
        return out

    def _knn_scores(self, data: TrainData, profiles: Sequence[Signals], sim: sp.csr_matrix | None = None
                    ) -> np.ndarray:
        q = profile_matrix(data, profiles, self.cfg.history, self.cfg.recency_decay)
        return np.asarray((q @ (self.parts.knn_sim if sim is None else sim)).todense(), dtype=np.float32)

    def _components(self, data: TrainData, profiles: Sequence[Signals],
                    text: dict[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        n = len(profiles)
        text = self._text_vectors(profiles) if text is None else text
        return {
            "enc": standardise(self._enc_scores(data, profiles, text)),
            "knn": standardise(self._knn_scores(data, profiles)),
            "qknn": standardise(self._query_knn_scores(n, text)),
            "session": standardise(self._knn_scores(data, profiles, self.parts.session_sim)),
            "pop": standardise(np.tile(self.parts.pop, (n, 1))),
            "recent": standardise(np.tile(self.parts.recent, (n, 1))),
            "arrival": standardise(self.parts.history.scores([p.at for p in profiles])),
            "attr": standardise(self.parts.attrs.profile_scores(list(profiles))),
            "new": standardise(np.tile(self.parts.new, (n, 1))),
        }

    @property
    def popularity(self) -> np.ndarray:
        """Distinct training shoppers per item, in catalogue order (0 for items added since): the
        order of a catalogue listing with nothing else to rank by (the service's catalogue search)."""
        return self._popularity

    def has_signal(self, profile: Signals) -> bool:
        return True  # even "nothing" has its own tuned blend (popular + trending)

    def _blend(self, profiles: Sequence[Signals], text: dict[int, np.ndarray] | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, float]]]:
        comps = self._components(self.train, profiles, text)
        ws = [self.weights[bucket_of(len(self.train.known(p.items)), p.has_text())] for p in profiles]
        out = np.zeros((len(profiles), self.train.n_items), np.float32)
        for r, w in enumerate(ws):
            for name, weight in w.items():
                if weight:
                    out[r] += weight * comps[name][r]
        return out, comps, ws

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        return self._blend(profiles)[0]

    def score(self, profiles: list[Signals]) -> np.ndarray:
        out = np.zeros((len(profiles), self.train.n_items), np.float32)
        for s in range(0, len(profiles), 256):
            out[s:s + 256] = self._score(profiles[s:s + 256])
        return out

    # ---------------------------------------------------------------- serving
    def recommend(self, profile: Signals, n: int = 10, exclude: Sequence[str] = ()) -> list[Recommendation]:
        """Top n with a reason each; with no signal at all, near-duplicates are skipped (diverse picks)."""
        text = self._text_vectors([profile])  # encoded once: the blend and every reason use it
        scores, comps, (w,) = self._blend([profile], text)
        text_vec = text.get(0)
        seeds = self._query_seeds(text_vec) if text_vec is not None else None
        s = scores[0].copy()
        s[self.train.known(list(exclude) + list(profile.items))] = -np.inf
        order = [i for i in np.argsort(-s, kind="stable")[:max(n * 5, n)] if np.isfinite(s[i])]
        if bucket_of(len(self.train.known(profile.items)), profile.has_text()) == "0":
            order = diverse(order, self.item_vecs, n, self.cfg.diversity_max_cosine)
        return [Recommendation(str(self.train.item_ids[i]), float(s[i]),
                               reasons.explain(self.train, self.parts, self.item_vecs, self.cfg.history, profile, i,
                                               comps, w, text_vec, seeds)) for i in order[:n]]


def diverse(order: list[int], vecs: np.ndarray, n: int, max_cos: float) -> list[int]:
    """Greedy: keep an item unless it is a near-duplicate (cosine > max_cos) of one already kept."""
    kept: list[int] = []
    for i in order:
        if all(float(vecs[i] @ vecs[j]) <= max_cos for j in kept):
            kept.append(i)
        if len(kept) == n:
            break
    return kept + [i for i in order if i not in kept][: n - len(kept)]
