"""The item index on a real Milvus Lite collection: built once per version (idempotent, never
half-built under its name), searched like brute force, filtered, switched by alias, upserted
and deleted."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coldrec.runtime import item_index as ix
from coldrec.runtime.candidates import NumpyIndex


def _catalogue(n=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "category": [f"c{i % 3}" for i in range(n)],
                          "price": [float(i % 20) if i % 17 else np.nan for i in range(n)],
                          "in_stock": [i % 4 != 0 for i in range(n)]})
    return items, v, np.arange(n) % 2 == 0


@pytest.fixture
def milvus(tmp_path):
    return ix.client(str(tmp_path / "milvus.db"))


def test_build_search_filter_alias_upsert_delete(milvus):
    items, v, bought = _catalogue()
    # FLAT: exact, so the comparison with brute force is exact too
    flat = {"index_type": "FLAT", "metric_type": "COSINE", "params": {}}
    info = ix.build_collection(milvus, "coldrec_t_v1", items, v, bought, index_params=flat)
    assert info == {"collection": "coldrec_t_v1", "items": 300, "built": True}
    assert ix.build_collection(milvus, "coldrec_t_v1", items, v, bought, index_params=flat)["built"] is False
    assert not milvus.has_collection("coldrec_t_v1__building")

    index, brute = ix.MilvusItemIndex(milvus, "coldrec_t_v1"), NumpyIndex(v, bought)
    got, want = index.search(v[:5], 10), brute.search(v[:5], 10)
    for (gr, gs), (wr, ws) in zip(got, want):
        assert list(gr) == list(wr)
        np.testing.assert_allclose(gs, ws, atol=1e-4)
    (rows, _), = index.search(v[1:2], 20, bought_only=True)
    assert len(rows) == 20 and bought[rows].all()

    expr = ix.filter_expr(categories=["c1"], price_min=5, price_max=10, in_stock=True)
    (rows, _), = index.search(v[:1], 50, expr)
    ok = (items["category"] == "c1") & items["price"].between(5, 10) & items["in_stock"]
    assert len(rows) and set(rows) <= set(np.flatnonzero(ok.to_numpy()))
    assert set(rows) == set(np.flatnonzero(ok.to_numpy())) or len(rows) == 50

    assert ix.point_alias(milvus, "coldrec_t_production", "coldrec_t_v1") is None
    ix.build_collection(milvus, "coldrec_t_v2", items.iloc[:100], v[:100], bought[:100], index_params=flat)
    assert ix.point_alias(milvus, "coldrec_t_production", "coldrec_t_v2") == "coldrec_t_v1"
    assert ix.aliased(milvus, "coldrec_t_production") == "coldrec_t_v2"
    with pytest.raises(ix.ItemIndexError, match="no such collection"):
        ix.point_alias(milvus, "coldrec_t_production", "coldrec_t_missing")

    # a new item is searchable at once; a deleted one is gone
    new = pd.DataFrame({"item_id": ["brand-new"], "category": ["c9"], "price": [3.0]})
    ix.upsert_items(milvus, "coldrec_t_v1", new, v[7:8] * -1, [300])
    (rows, _), = index.search(-v[7:8], 1)
    assert list(rows) == [300]
    ix.delete_items(milvus, "coldrec_t_v1", [300, 7])
    (rows, _), = index.search(v[7:8], 3)
    assert 7 not in rows and 300 not in rows


def test_rebuild_keeps_the_alias_on_a_complete_collection(milvus):
    items, v, bought = _catalogue(50)
    hnsw = {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 16, "efConstruction": 200}}
    ix.build_collection(milvus, "coldrec_r_v1", items, v, bought, hnsw)
    ix.point_alias(milvus, "coldrec_r_production", "coldrec_r_v1")
    info = ix.build_collection(milvus, "coldrec_r_v1", items, v, bought, hnsw, force=True)
    assert info["built"] and ix.aliased(milvus, "coldrec_r_production") == "coldrec_r_v1"


def test_names_are_what_milvus_accepts():
    assert ix.collection_name("online-retail", "20261203-abc.1") == "coldrec_online_retail_20261203_abc_1"
    assert ix.filter_expr() is None
    assert ix.filter_expr(categories=['a "quoted" one']) == 'category in ["a \\"quoted\\" one"]'


def test_concurrent_searches_are_batched_and_answer_like_single_ones(milvus):
    import threading

    items, v, bought = _catalogue(400)
    ix.build_collection(milvus, "coldrec_b_v1", items, v, bought,
                        index_params={"index_type": "FLAT", "metric_type": "COSINE", "params": {}})
    single = ix.MilvusItemIndex(milvus, "coldrec_b_v1")
    batching = ix.BatchingIndex(single)
    want = {i: single.search(v[i:i + 1], 7, None, i % 3 == 0)[0] for i in range(48)}
    got: dict[int, tuple] = {}
    errors = []

    def worker(rows):
        try:
            for i in rows:
                got[i] = batching.search(v[i:i + 1], 7, None, i % 3 == 0)[0]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(range(t, 48, 8),)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and sorted(got) == list(range(48))
    for i in range(48):
        assert list(got[i][0]) == list(want[i][0])  # each caller gets its own answer, bought-only or not
    assert batching.calls < 48  # some searches were shared
    with pytest.raises(Exception, match="collection"):
        ix.BatchingIndex(ix.MilvusItemIndex(milvus, "coldrec_missing")).search(v[:1], 3)
