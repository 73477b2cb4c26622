"""The item index in Milvus: one collection per model version, an alias for production.

Why Milvus: the served ranking (:mod:`coldrec.runtime.candidates`) asks for the catalogue's
nearest items to a profile vector, with the request's filters, and that must scale past one
NumPy matrix and be shared by several serving processes. Milvus Lite (a ``.db`` path, in
process) is the embedded default; the same calls reach a Milvus server when ``uri`` is
``http://host:19530`` (``COLDREC_MILVUS_URI``).

Layout of a collection: primary key ``row`` (the item's row in the version's catalogue; items
added later get rows after it), ``item_id``, ``vector`` (the version's int8-encoder item vectors,
unit length, COSINE), and scalar fields for filters: ``category``, ``price``, ``in_stock``,
``bought`` (has training interactions: the query-seed search needs it).

Milvus Lite facts that shape the code (milvus-lite 3.2.2, measured; see the serving issue):
unflushed rows are rescanned on every search, so a collection is built schema -> insert in
chunks -> flush -> index -> load, and upserts flush; pymilvus' 10 s keepalive pings make lite
answer GOAWAY, hence the keepalive options; ``search`` without ``output_fields`` returns every
field (the vectors too), so we always ask for ``row`` only; an ``ARRAY_CONTAINS_ANY`` filter
costs ~110 ms on 4k rows (evaluated per row in Python) while ``category in [...]`` on a
VARCHAR field costs what an unfiltered search does.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from coldrec.core.errors import ColdrecError

if TYPE_CHECKING:
    from pymilvus import CollectionSchema, MilvusClient

    from coldrec.core.params import ServingParams
    from coldrec.runtime.candidates import CandidateRanker, CandidateSizes
    from coldrec.runtime.scorer import ColdrecRuntime

GRPC_OPTIONS = {"grpc.keepalive_time_ms": 3_600_000, "grpc.keepalive_permit_without_calls": 0}
CHUNK = 2000
MAX_VARCHAR = 512

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


class ItemIndexError(ColdrecError):
    """The item index is missing, incomplete or unreachable."""


def client(uri: str, token: str | None = None) -> MilvusClient:
    """One MilvusClient per URI per process (Milvus Lite allows one process per data dir)."""
    from pymilvus import MilvusClient

    key = f"{uri}|{token or ''}"
    with _LOCK:
        if key not in _CLIENTS:
            kw: dict[str, Any] = {"grpc_options": GRPC_OPTIONS}
            if token:
                kw["token"] = token
            try:
                _CLIENTS[key] = MilvusClient(uri, **kw)
            except Exception as exc:  # noqa: BLE001 - a lock held by another process, a dead server
                raise ItemIndexError(f"Milvus at {uri}: cannot connect ({type(exc).__name__}: {exc})") from None
        return _CLIENTS[key]


def collection_name(dataset: str, version: str) -> str:
    """``coldrec_<dataset>_<version>`` with every character Milvus refuses turned into ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"coldrec_{dataset}_{version}")[:255]


def alias_name(dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"coldrec_{dataset}_production")


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)[:MAX_VARCHAR]


def item_fields(items: pd.DataFrame) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Category, price (NaN when missing) and stock (True when no ``in_stock`` column) per item: what
    the collection's filter fields and the service's filter masks are made of."""
    cats = items["category"] if "category" in items else pd.Series(None, index=items.index, dtype=object)
    price = pd.to_numeric(items["price"], errors="coerce").to_numpy(float) if "price" in items else np.full(len(items), np.nan)
    stock = items["in_stock"].fillna(True).astype(bool).to_numpy() if "in_stock" in items else np.ones(len(items), bool)
    return cats, price, stock


def item_rows(items: pd.DataFrame, vecs: np.ndarray, bought: np.ndarray, rows: Sequence[int] | None = None
              ) -> list[dict[str, Any]]:
    """Collection rows (primary key ``rows``, default 0..n-1); a missing price is stored as -1."""
    cats, price, stock = item_fields(items)
    keys = range(len(items)) if rows is None else rows
    return [{"row": int(r), "item_id": _text(iid), "vector": vecs[j].astype(np.float32), "category": _text(c),
             "price": float(p) if np.isfinite(p) else -1.0, "in_stock": bool(s), "bought": bool(b)}
            for j, (r, iid, c, p, s, b) in enumerate(zip(keys, items["item_id"], cats, price, stock, bought))]


def _schema(dim: int) -> CollectionSchema:
    from pymilvus import DataType, MilvusClient

    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("item_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("category", DataType.VARCHAR, max_length=MAX_VARCHAR)
    s.add_field("price", DataType.FLOAT)
    s.add_field("in_stock", DataType.BOOL)
    s.add_field("bought", DataType.BOOL)
    return s


def index_params(serving: ServingParams) -> dict[str, Any]:
    """Milvus index parameters from ``params.yaml``'s ``serving`` section."""
    if serving.index_type == "FLAT":
        return {"index_type": "FLAT", "metric_type": "COSINE", "params": {}}
    return {"index_type": "HNSW", "metric_type": "COSINE",
            "params": {"M": serving.hnsw_m, "efConstruction": serving.hnsw_ef_construction}}


def build_collection(c: MilvusClient, name: str, items: pd.DataFrame, vecs: np.ndarray, bought: np.ndarray,
                     index_params: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Create collection ``name`` with every catalogue item; idempotent: a complete collection
    of the same size is kept unless ``force``. Built under a temporary name and renamed when
    complete, so a crash never leaves a half-filled collection under the real name."""
    n = len(items)
    if len(vecs) != n or len(bought) != n:
        raise ItemIndexError(f"{name}: {len(vecs)} vectors / {len(bought)} flags for {n} items")
    if c.has_collection(name) and not force:
        count = int(c.get_collection_stats(name).get("row_count", -1))
        if count == n:
            c.load_collection(name)
            return {"collection": name, "items": n, "built": False}
    tmp = f"{name}__building"[:255]
    if c.has_collection(tmp):  # left by a build that crashed
        c.drop_collection(tmp)
    c.create_collection(tmp, schema=_schema(int(vecs.shape[1])))
    rows = item_rows(items, vecs, bought)
    for s in range(0, n, CHUNK):
        c.insert(tmp, rows[s:s + CHUNK])
    c.flush(tmp)
    ip = c.prepare_index_params()
    ip.add_index(field_name="vector", index_type=index_params["index_type"], metric_type=index_params["metric_type"],
                 params=index_params.get("params", {}))
    # lite builds the index within the call; waiting for it (sync=True) asks for AllocTimestamp,
    # which lite lacks (an ERROR with a traceback in its log each time)
    c.create_index(tmp, ip, sync=False)
    if c.has_collection(name):
        for a in c.list_aliases(collection_name=name).get("aliases", []):
            c.alter_alias(collection_name=tmp, alias=a)  # keep an alias pointing at a complete collection
        c.drop_collection(name)
    c.rename_collection(tmp, name)
    c.load_collection(name)
    return {"collection": name, "items": n, "built": True}


def build_for_model(c: MilvusClient, name: str, model: ColdrecRuntime, serving: ServingParams,
                    force: bool = False) -> dict[str, Any]:
    """The collection of a loaded or fitted model (its catalogue, item vectors, bought flags), with
    ``params.yaml``'s ``serving`` index settings: what the index stage, the service and the
    evaluation's ``coldrec_served`` all build."""
    return build_collection(c, name, model.train.items, model.item_vecs, np.asarray(model.parts.pop) > 0,
                            index_params(serving), force=force)


def served_ranker(model: ColdrecRuntime, serving: ServingParams, c: MilvusClient, name: str,
                  batching: bool = False) -> CandidateRanker:
    """The two-stage ranker the service ranks with, on collection ``name`` (built if missing)."""
    from coldrec.runtime.candidates import CandidateRanker

    build_for_model(c, name, model, serving)
    index: Any = MilvusItemIndex(c, name)
    if batching:
        index = BatchingIndex(index, gather_ms=serving.batch_gather_ms)
    return CandidateRanker(model, index, candidate_sizes(serving))


def candidate_sizes(serving: ServingParams) -> CandidateSizes:
    from coldrec.runtime.candidates import CandidateSizes

    return CandidateSizes(serving.ann_candidates, serving.neighbour_candidates, serving.prior_candidates)


def aliased(c: MilvusClient, alias: str) -> str | None:
    """The collection ``alias`` names, or None (asked via list_aliases: describe_alias on a missing
    alias makes pymilvus log a traceback at ERROR level)."""
    name: str
    for name in c.list_collections():
        if alias in c.list_aliases(collection_name=name).get("aliases", []):
            return name
    return None


def point_alias(c: MilvusClient, alias: str, name: str) -> str | None:
    """Point ``alias`` at collection ``name`` (one atomic switch); returns what it named before."""
    if not c.has_collection(name):
        raise ItemIndexError(f"cannot point {alias} at {name}: no such collection")
    previous = aliased(c, alias)
    if previous is None:
        c.create_alias(collection_name=name, alias=alias)
    elif previous != name:
        c.alter_alias(collection_name=name, alias=alias)
    return previous


def upsert_items(c: MilvusClient, name: str, items: pd.DataFrame, vecs: np.ndarray, rows: Sequence[int],
                 bought: np.ndarray | None = None) -> int:
    """Insert or replace items at the given rows (new items: rows after the catalogue), then flush
    (unflushed rows would be rescanned by every search)."""
    data = item_rows(items, vecs, np.zeros(len(items), bool) if bought is None else bought, rows)
    for s in range(0, len(data), CHUNK):
        c.upsert(name, data[s:s + CHUNK])
    c.flush(name)
    return len(data)


def delete_items(c: MilvusClient, name: str, rows: Sequence[int]) -> int:
    if not len(rows):
        return 0
    c.delete(name, ids=[int(r) for r in rows])
    c.flush(name)
    return len(rows)


def filter_expr(categories: Sequence[str] = (), price_min: float | None = None, price_max: float | None = None,
                in_stock: bool | None = None) -> str | None:
    """A Milvus boolean expression for a request's filters (None: no filter)."""
    parts = []
    if categories:
        quoted = ", ".join('"' + str(c).replace("\\", "\\\\").replace('"', '\\"') + '"' for c in categories)
        parts.append(f"category in [{quoted}]")
    if price_min is not None:
        parts.append(f"price >= {float(price_min)!r}")
    if price_max is not None:
        parts.append(f"price <= {float(price_max)!r}")
    if in_stock:
        parts.append("in_stock == true")
    return " and ".join(parts) or None


@dataclass
class MilvusItemIndex:
    """:class:`coldrec.runtime.candidates.ItemIndex` over one collection (by name, not by alias:
    a request keeps the collection of the version it started on, even across a promotion)."""

    client: Any
    collection: str

    def search(self, vectors: np.ndarray, limit: int, mask_expr: str | None = None,
               bought_only: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if not len(vectors):
            return []
        expr = " and ".join(filter(None, [mask_expr, "bought == true" if bought_only else None]))
        try:
            res = self.client.search(self.collection, data=list(vectors), limit=int(limit), filter=expr,
                                     output_fields=["row"], anns_field="vector")
        except Exception as exc:  # noqa: BLE001 - a stopped server, a dropped collection: say which
            raise ItemIndexError(f"item index {self.collection}: search failed ({type(exc).__name__}: {exc})") from None
        out = []
        for hits in res:
            rows = np.fromiter((h["row"] for h in hits), np.int64, len(hits))
            sims = np.fromiter((h["distance"] for h in hits), np.float32, len(hits))
            out.append((rows, sims))
        return out


_SearchKey = tuple[int, str | None, bool]  # a search's (limit, filter expression, bought_only)


class BatchingIndex:
    """Concurrent searches sent as one: a request thread queues its query; a thread that finds no
    search in flight leads: it takes every query queued by then (with the first one's limit and
    filter) and sends them to the index in one call, while the others wait. With ``gather_ms`` 0
    there is no timer: alone, a query goes out at once; under load, queries that arrive while a
    search runs share the next. A small ``gather_ms`` lets the leader wait that long for company.

    Why: Milvus Lite's search costs mostly per call (a Python loop over the collection), so a
    batch of n queries costs far less than n searches (measured in benchmarks/README.md)."""

    def __init__(self, inner: Any, max_batch: int = 64, gather_ms: float = 0.0):
        self.inner, self.max_batch, self.gather_s = inner, max_batch, gather_ms / 1000
        self._cond = threading.Condition()
        self._pending: list[tuple[_SearchKey, np.ndarray, dict[str, Any]]] = []
        self._busy = False
        self.calls = 0  # searches sent to the index (the batching test and benchmark read it)

    def search(self, vectors: np.ndarray, limit: int, mask_expr: str | None = None,
               bought_only: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        slot: dict[str, Any] = {}
        key = (int(limit), mask_expr, bool(bought_only))
        with self._cond:
            self._pending.append((key, np.atleast_2d(np.asarray(vectors, np.float32)), slot))
            while "done" not in slot:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True  # lead: take what is queued with the first query's limit and filter
                if self.gather_s:  # let requests that are on their way join (the lock is released meanwhile)
                    self._cond.wait(self.gather_s)
                first = self._pending[0][0]
                batch = [p for p in self._pending if p[0] == first][: self.max_batch]
                taken = {id(p) for p in batch}
                self._pending = [p for p in self._pending if id(p) not in taken]
                self._cond.release()
                try:
                    self._run(first, batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if "error" in slot:
            raise slot["error"]
        result: list[tuple[np.ndarray, np.ndarray]] = slot["result"]
        return result

    def _run(self, key: _SearchKey, batch: list[tuple[_SearchKey, np.ndarray, dict[str, Any]]]) -> None:
        limit, expr, bought = key
        try:
            self.calls += 1
            res = self.inner.search(np.vstack([v for _, v, _ in batch]), limit, expr, bought)
            at = 0
            for _, v, slot in batch:
                slot["result"] = res[at:at + len(v)]
                at += len(v)
        except Exception as exc:  # noqa: BLE001 - every waiter gets the error, none hangs
            for _, _, slot in batch:
                slot["error"] = exc
        finally:
            for _, _, slot in batch:
                slot["done"] = True
