"""Catalogue changes between trainings: new or changed items, and removed ones, for a loaded version.

Why: a shop adds items every day and retrains nightly at best. A new item must be recommendable
at once: its vector comes from its text through the version's own encoder, it has no
co-occurrence yet (zero rows and columns), no buyers (``pop`` 0) and is a new arrival (``new``
1, as fit time marks items nobody bought). A changed item gets a new vector and text; a removed
item is dropped from every candidate source by the serving filter (its row stays, so row
numbers, the similarity matrices and the Milvus primary keys stay aligned).

The result is a new model object (the old one keeps serving requests in flight).
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldrec.runtime.attributes import AttributePopularity
from coldrec.runtime.parts import ArrivalHistory, CollaborativeParts
from coldrec.runtime.recommender import TrainData
from coldrec.runtime.text import item_texts

if TYPE_CHECKING:
    from coldrec.runtime.scorer import ColdrecRuntime


def _grow(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    m = m.tocsr()
    indptr = np.concatenate([m.indptr, np.full(n - m.shape[0], m.indptr[-1], m.indptr.dtype)])
    return sp.csr_matrix((m.data, m.indices, indptr), shape=(n, n))


def item_vectors(model: ColdrecRuntime, items: pd.DataFrame) -> np.ndarray:
    """The version's encoder on the items' text, as at fit time (same template, same cut)."""
    texts = item_texts(items, model.template, model.max_chars)
    return np.asarray(model.st.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True),
                      dtype=np.float32)


def upsert(model: ColdrecRuntime, items: pd.DataFrame) -> tuple[ColdrecRuntime, np.ndarray, np.ndarray]:
    """``model`` with ``items`` added or replaced (by ``item_id``); returns (new model, the rows
    written, their vectors)."""
    items = items.reset_index(drop=True)
    vecs = item_vectors(model, items)
    old = model.train.items
    index = model.train.item_index
    rows = np.array([index.get(i, -1) for i in items["item_id"]], np.int64)
    fresh = rows < 0
    n_old = len(old)
    rows[fresh] = n_old + np.arange(int(fresh.sum()))
    cols = list(dict.fromkeys([*old.columns, *items.columns]))
    merged = old.reindex(columns=cols).copy()
    changed = items[~fresh].reindex(columns=cols)
    if len(changed):
        merged.loc[rows[~fresh], cols] = changed.to_numpy(dtype=object)
    merged = pd.concat([merged, items[fresh].reindex(columns=cols)], ignore_index=True)
    n = len(merged)

    out = copy.copy(model)
    out.item_vecs = np.vstack([model.item_vecs, np.zeros((n - n_old, model.item_vecs.shape[1]), np.float32)])
    out.item_vecs[rows] = vecs
    p = model.parts

    def pad(a: np.ndarray, v: float = 0.0) -> np.ndarray:
        return np.concatenate([np.asarray(a, np.float32), np.full(n - n_old, v, np.float32)])

    h = p.history
    attrs = p.attrs
    out.parts = CollaborativeParts(
        _grow(p.knn_sim, n), _grow(p.session_sim, n), pad(p.pop), pad(p.recent), pad(p.new, 1.0),
        ArrivalHistory(h.ns, h.idx, n, h.days),
        AttributePopularity(attrs.names, attrs.values,
                            np.hstack([attrs.scores, np.zeros((len(attrs.names), n - n_old), np.float32)]), n))
    empty = model.train.events.iloc[0:0]
    out.train = TrainData.build(empty, merged, seed=model.train.seed, protocol=model.train.protocol)
    out._popularity = np.concatenate([np.asarray(model._popularity, np.float32), np.zeros(n - n_old, np.float32)])
    return out, rows, vecs
