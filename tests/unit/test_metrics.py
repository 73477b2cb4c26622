"""Metric code against hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluation.metrics import bootstrap_ci, top_n, user_metrics


def test_single_hit_at_rank_three():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.0])
    ranked = top_n(scores, np.array([2]), 10)
    assert ranked.tolist() == [0, 1, 2, 3, 4]
    m = user_metrics(ranked, np.array([2]), 10)
    assert m.ndcg == pytest.approx(1 / math.log2(4))  # hit at rank 3, ideal = 1
    assert (m.recall, m.hit, m.mrr) == (1.0, 1.0, pytest.approx(1 / 3))


def test_two_targets_ndcg_and_recall_by_hand():
    scores = np.arange(12, 0, -1, dtype=float)  # item i ranked at position i
    targets = np.array([0, 4, 11])  # rank 1 and 5 inside the top 10, rank 12 outside
    m = user_metrics(top_n(scores, targets, 10), targets, 10)
    dcg = 1 / math.log2(2) + 1 / math.log2(6)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg == pytest.approx(dcg / idcg)
    assert m.recall == pytest.approx(2 / 3) and m.mrr == 1.0


def test_fewer_targets_than_cutoff_can_reach_one():
    scores = np.array([5.0, 4.0, 3.0, 2.0])
    m = user_metrics(top_n(scores, np.array([0, 1]), 10), np.array([0, 1]), 10)
    assert m.ndcg == pytest.approx(1.0) and m.recall == 1.0


def test_ties_rank_targets_after_equal_non_targets():
    scores = np.zeros(5)  # everything tied: a method that knows nothing must not score
    ranked = top_n(scores, np.array([0]), 3)
    assert ranked.tolist() == [1, 2, 3]
    assert user_metrics(ranked, np.array([0]), 3).hit == 0.0
    # a tie at the boundary: the target shares the 2nd-best score with item 3
    scores = np.array([0.1, 0.9, 0.5, 0.5])
    ranked = top_n(scores, np.array([2]), 2)
    assert ranked.tolist() == [1, 3]


def test_excluded_items_are_never_ranked():
    scores = np.array([9.0, 8.0, 7.0, 6.0])
    assert top_n(scores, np.array([3]), 2, excluded=np.array([0, 1])).tolist() == [2, 3]
    assert top_n(scores, np.array([3]), 10, excluded=np.array([0, 1, 2, 3])).tolist() == []


def test_user_without_targets_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="without targets"):
        user_metrics(np.array([0, 1]), np.array([], dtype=int), 10)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    v = np.random.default_rng(0).random(200)
    lo, hi = bootstrap_ci(v, 500, seed=7)
    assert lo < v.mean() < hi
    assert (lo, hi) == bootstrap_ci(v, 500, seed=7)
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(v, 0)))  # evaluation.bootstrap: 0 turns it off, not an IndexError
