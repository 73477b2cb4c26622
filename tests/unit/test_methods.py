"""The method contract every recommender honours (baselines, peers, the zero-shot encoder)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldrec.runtime.recommender import Signals, TrainData
from tests.conftest import make_items, params_with
from training import methods

ALL = ["popularity", "segment_popularity", "item_knn", "zero_shot", "implicit_als", "implicit_bpr", "lightfm"]
PARAMS = params_with({"methods": {"implicit_bpr": {"iterations": 20}, "lightfm": {"epochs": 3}}})


@pytest.fixture(scope="module")
def train():
    rows = []
    for u in range(30):
        for j in range(5):
            ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=u * 10 + j)
            rows.append((f"u{u}", f"i{(u % 2) + 2 * ((u + j) % 4)}", "purchase", ts))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])
    return TrainData.build(ev, make_items(8), seed=1)


@pytest.mark.parametrize("name", ALL)
def test_scores_whole_catalogue_and_recommends_unseen_items(train, name):
    m = methods.make(name, PARAMS).fit(train)
    profiles = [Signals(items=["i0", "i2"]), Signals(), Signals(items=["no-such-item"])]
    s = m.score(profiles)
    assert s.shape == (3, train.n_items) and np.isfinite(s).all()
    np.testing.assert_allclose(s[1], train.popularity())  # no signal: popularity fallback
    np.testing.assert_allclose(s[2], train.popularity())  # unknown ids are ignored, not a crash
    recs = m.recommend(Signals(items=["i0", "i2"]), n=4)
    ids = [r.item_id for r in recs]
    assert len(ids) == 4 and not {"i0", "i2"} & set(ids)
    assert all(r.reason for r in recs)


@pytest.mark.parametrize("name", ["implicit_als", "implicit_bpr", "lightfm"])
def test_seeded_fit_is_reproducible(train, name):
    a = methods.make(name, PARAMS).fit(train).score([Signals(items=["i1"])])
    b = methods.make(name, PARAMS).fit(train).score([Signals(items=["i1"])])
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_item_knn_follows_co_occurrence(train):
    m = methods.make("item_knn", PARAMS).fit(train)
    s = m.score([Signals(items=["i0"])])[0]
    even = [train.item_index[f"i{i}"] for i in (2, 4, 6)]
    odd = [train.item_index[f"i{i}"] for i in (1, 3, 5, 7)]
    assert s[even].min() > s[odd].max()  # even-item buyers never buy odd items


def test_zero_shot_reads_a_query_without_items(train):
    m = methods.make("zero_shot", PARAMS).fit(train)
    s = m.score([Signals(query="a fine garden thing")])[0]
    best = train.item_ids[int(np.argmax(s))]
    assert train.items.set_index("item_id").loc[best, "category"] == "garden"


def test_unknown_method_is_a_clear_error():
    from coldrec.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        methods.make("magic", PARAMS)


def _knn_sim(rows, n_items, **kw):
    from training.methods.baselines import ItemKNN

    ev = pd.DataFrame([(f"u{u}", f"i{i}", "purchase", pd.Timestamp("2024-01-01", tz="UTC"))
                       for u, items in enumerate(rows) for i in items],
                      columns=["user_id", "item_id", "event_type", "timestamp"])
    data = TrainData.build(ev, make_items(n_items))
    return ItemKNN(**kw).fit(data).sim.toarray()


def test_item_knn_asymmetric_cosine_leans_to_popular_neighbours():
    """i0 is bought with i1 (by 1 of i1's 1 buyers) and with i2 (by 1 of i2's 3 buyers)."""
    rows = [[0, 1], [0, 2], [2, 3], [2, 4]]
    cos = _knn_sim(rows, 8)
    np.testing.assert_allclose(cos[0, 1], 1 / np.sqrt(2 * 1))
    np.testing.assert_allclose(cos[0, 2], 1 / np.sqrt(2 * 3))
    cond = _knn_sim(rows, 8, alpha=1.0)  # P(j | i): both neighbours of i0 are equally likely
    np.testing.assert_allclose([cond[0, 1], cond[0, 2]], [0.5, 0.5])
    np.testing.assert_allclose(_knn_sim(rows, 8, alpha=0.9)[0, 2], 1 / (2 ** 0.9 * 3 ** 0.1), rtol=1e-6)


def test_item_knn_user_weight_discounts_shoppers_who_buy_everything():
    rows = [[0, 1], [0, 2, 3, 4, 5, 6, 7]]  # i1 and i2 each co-occur once with i0
    plain = _knn_sim(rows, 8)
    assert plain[0, 1] == pytest.approx(plain[0, 2])
    weighted = _knn_sim(rows, 8, user_weight="log")
    np.testing.assert_allclose(weighted[0, 1] / weighted[0, 2], np.log2(8) / np.log2(3), rtol=1e-5)
    np.testing.assert_allclose(weighted, weighted.T, rtol=1e-6)


@pytest.mark.parametrize("kw, match", [({"alpha": 1.5}, "alpha"), ({"user_weight": "idf"}, "user_weight")])
def test_item_knn_rejects_bad_options(kw, match):
    from training.methods.baselines import ItemKNN

    with pytest.raises(ValueError, match=match):
        ItemKNN(**kw)


def test_segment_popularity_ranks_what_the_shoppers_segment_bought(train):
    users = pd.DataFrame({"user_id": train.user_ids, "country": ["fr" if int(u[1:]) % 2 else "uk" for u in train.user_ids]})
    data = TrainData.build(train.events, train.items, users=users)
    m = methods.make("segment_popularity", PARAMS).fit(data)
    s = m.score([Signals(attributes={"country": "fr"}), Signals(attributes={"country": "mars"})])
    odd, even = [data.item_index[f"i{i}"] for i in (1, 3, 5, 7)], [data.item_index[f"i{i}"] for i in (0, 2, 4, 6)]
    assert s[0, odd].min() > s[0, even].max()  # odd users (fr) buy odd items only
    np.testing.assert_allclose(s[1], data.popularity())  # an unknown segment: overall popularity
    assert m.recommend(Signals(attributes={"country": "fr"}), n=1)[0].reason == "popular with shoppers like you (country: fr)"


def test_listed_names_are_the_factories():
    """--help lists methods.NAMES without importing any method; it must say what make() accepts."""
    assert list(methods.NAMES) == list(methods._factories())
