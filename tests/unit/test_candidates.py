"""Two-stage ranking: a candidate's blended score equals the full scorer's score for it (exact
catalogue-wide standardisation), and with candidates covering the catalogue the served
recommendations are the model's own, reasons included."""
from __future__ import annotations

import numpy as np
import pytest

from coldrec.runtime.blend import COMPONENTS
from coldrec.runtime.candidates import CandidateRanker, CandidateSizes, NumpyIndex
from coldrec.runtime.recommender import Signals, TrainData
from tests.conftest import make_items, params_with
from tests.unit.test_model import TINY_OVERRIDES, ZERO_SHOT, _shop_events, _shop_users

PROFILES = [
    Signals(),
    Signals(items=["i0"], event_types=["purchase"]),
    Signals(items=["i0", "i2", "i9-unknown"], event_types=["view", "purchase", "view"]),
    Signals(query="item 3 toy"),
    Signals(items=["i1"], query="item 5", attributes={"country": "France"}),
    Signals(attributes={"country": "United Kingdom"}),
    Signals(items=["i4"], at="2024-01-20"),
]


@pytest.fixture(scope="module")
def model():
    from training.model.hybrid import ColdrecModel

    m = ColdrecModel(params_with(TINY_OVERRIDES, ZERO_SHOT))
    m.fit(TrainData.build(_shop_events(), make_items(8), seed=3, users=_shop_users()))
    # every component weighted in every bucket, unequally: each one's standardisation is exercised
    m.weights = {b: {c: 0.3 + 0.1 * j for j, c in enumerate(COMPONENTS)} for b in m.weights}
    return m


def _ranker(model, **sizes):
    return CandidateRanker(model, NumpyIndex(model.item_vecs, np.asarray(model.parts.pop) > 0), CandidateSizes(**sizes))


@pytest.mark.parametrize("sizes", [{"ann": 100, "neighbours": 100, "prior": 100}, {"ann": 2, "neighbours": 1, "prior": 1}])
def test_candidate_scores_equal_the_full_blend(model, sizes):
    full = model._blend(PROFILES)[0]
    ranked = _ranker(model, **sizes).rank(PROFILES)
    for r, got in enumerate(ranked):
        assert len(got.items) and len(set(got.items)) == len(got.items)
        np.testing.assert_allclose(got.scores, full[r, got.items], rtol=1e-4, atol=1e-4)
    small = sizes["ann"] == 2
    assert any(len(g.items) < model.train.n_items for g in ranked) == small  # small sizes: a strict subset


def test_covering_candidates_recommend_what_the_model_recommends(model):
    ranker = _ranker(model, ann=100, neighbours=100, prior=100)
    for p in PROFILES:
        want = model.recommend(p, n=4, exclude=["i6"])
        got = ranker.recommend(p, n=4, exclude=["i6"])
        assert [g.item_id for g in got] == [w.item_id for w in want]
        assert [g.reason for g in got] == [w.reason for w in want]
        np.testing.assert_allclose([g.score for g in got], [w.score for w in want], rtol=1e-4, atol=1e-4)


def test_dense_scores_rank_candidates_first_and_the_rest_never(model):
    s = _ranker(model, ann=2, neighbours=1, prior=1).score(PROFILES)
    assert s.shape == (len(PROFILES), model.train.n_items)
    assert np.isfinite(s).any(axis=1).all() and np.isneginf(s).any()


def test_allowed_mask_filters_every_source(model):
    allowed = np.zeros(model.train.n_items, bool)
    allowed[[model.train.item_index["i3"], model.train.item_index["i5"]]] = True
    for p in PROFILES:
        got = _ranker(model, ann=100, neighbours=100, prior=100).recommend(p, n=5, allowed=allowed)
        assert {g.item_id for g in got} <= {"i3", "i5"}


def test_sparse_entry_matches_scipy_indexing_sorted_or_not():
    import scipy.sparse as sp

    from coldrec.runtime.reasons import entry

    m = sp.random(40, 50, density=0.2, format="csr", random_state=0, dtype=np.float32)
    unsorted = sp.csr_matrix((m.data[::-1].copy(), m.indices[::-1].copy(), m.indptr.copy()), shape=m.shape)
    unsorted.has_sorted_indices = False  # scipy would otherwise trust the flag
    for mat in (m, unsorted):
        dense = mat.toarray()
        for i in range(40):
            for j in range(0, 50, 3):
                assert entry(mat, i, j) == pytest.approx(float(dense[i, j]))
