"""The pretrained encoder without any training: profile = mean of the revealed items' text
vectors (and the query / interests text, when given); score = cosine to every item's text."""
from __future__ import annotations

from typing import Any

import numpy as np

from coldrec.core.params import typed
from coldrec.runtime.recommender import Recommender, Signals, TrainData
from coldrec.runtime.text import item_texts
from training.encoder import encode, resolve_model_path


class ZeroShotEncoder(Recommender):
    name = "zero_shot"
    uses_text = True

    def __init__(self, params: dict[str, Any]):
        enc = typed(params).encoder
        self.model_path = resolve_model_path(params)
        self.template = enc.item_template
        self.max_chars = enc.max_chars
        self.batch_size = enc.batch_size

    def fit(self, train: TrainData) -> ZeroShotEncoder:
        super().fit(train)
        self.item_vecs = encode(item_texts(train.items, self.template, self.max_chars), self.model_path, self.batch_size)
        return self

    def _profile_vectors(self, profiles: list[Signals]) -> np.ndarray:
        texts = [" ".join(filter(None, [p.query, *p.interests])) for p in profiles]
        need = [i for i, t in enumerate(texts) if t.strip()]
        text_vecs = encode([texts[i] for i in need], self.model_path, self.batch_size, cache=False, progress=False) if need else None
        out = np.zeros((len(profiles), self.item_vecs.shape[1]), np.float32)
        for j, i in enumerate(need):
            out[i] += text_vecs[j]
        for i, p in enumerate(profiles):
            idx = self.train.known(p.items)
            if idx:
                out[i] += self.item_vecs[idx].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _score(self, profiles: list[Signals]) -> np.ndarray:
        return self._profile_vectors(profiles) @ self.item_vecs.T
