"""What the HTTP service does, as plain methods: recommend, similar items, profile, feedback.

Why apart from the BentoML class: tests, benchmarks and the evaluation call the same code
in-process (the HTTP cost is then measured as the difference), and the service file stays a
thin adapter.

Versions: the engine serves one :class:`Served` snapshot (model + ranker + Milvus collection +
version name). A request takes the snapshot once and uses only it, so an answer never mixes two
versions. Promotion builds the new snapshot completely (model loaded, collection built and
loaded), then swaps one reference and points the production alias at the new collection.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core import paths
from coldrec.core.config import load_params
from coldrec.core.errors import ColdrecError, DataError
from coldrec.core.params import typed, with_overrides
from coldrec.core.paths import CURRENT, current_version, feast_repo_dir, models_dir, resolve_model
from coldrec.runtime import item_index
from coldrec.runtime.candidates import CandidateRanker
from coldrec.runtime.profile import describe
from coldrec.runtime.recommender import Signals
from coldrec.runtime.version import load_version
from serving.schemas import Filters, RecommendRequest, ShopperSignals, SimilarRequest

log = logging.getLogger(__name__)


class NotReady(ColdrecError):
    """The engine has no version loaded yet (503)."""


class Unavailable(ColdrecError):
    """A part the request needs is not configured (e.g. feedback without a feature store: 503)."""


@dataclass(frozen=True)
class Served:
    version: str
    model_dir: Path
    model: Any  # ColdrecRuntime
    ranker: CandidateRanker
    collection: str
    categories: dict[str, np.ndarray]  # lower-cased category -> its catalogue rows (built once per snapshot)
    prices: np.ndarray
    in_stock: np.ndarray
    removed: np.ndarray | None = None  # items deleted since the version was trained (never served)

    def __post_init__(self) -> None:
        if self.removed is None or len(self.removed) != len(self.in_stock):
            old = np.zeros(0, bool) if self.removed is None else self.removed
            object.__setattr__(self, "removed", np.concatenate([old, np.zeros(len(self.in_stock) - len(old), bool)]))


def _categories(value: Any) -> frozenset[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return frozenset()
    return frozenset(t.strip().lower() for t in str(value).replace("|", ",").split(",") if t.strip())


def load_served(model_dir: Path, params: dict[str, Any], milvus: Any, dataset: str) -> Served:
    """A complete snapshot of one version: model, its Milvus collection (built if missing), ranker."""
    sv = typed(params).serving
    # one ONNX Runtime thread per query: requests already run in parallel on their own threads
    model = load_version(model_dir, with_overrides(params, {"quantize": {"intra_op_threads": sv.onnx_threads}}))
    name = item_index.collection_name(dataset, model_dir.name)
    ranker = item_index.served_ranker(model, sv, milvus, name, batching=sv.batch_searches)
    return Served(model_dir.name, model_dir, model, ranker, name, *_item_facts(model.train.items))


def _item_facts(items) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    cats, prices, stock = item_index.item_fields(items)
    rows: dict[str, list[int]] = {}
    for r, value in enumerate(cats):
        for c in _categories(value):
            rows.setdefault(c, []).append(r)
    return {c: np.array(r, np.int64) for c, r in rows.items()}, prices, stock


def catalogue_log(dataset: str) -> Path:
    return paths.catalogue_log(dataset)


class Engine:
    """Serves the promoted version of one dataset's models (``model`` may also name one version,
    which then stays fixed). ``feast_repo``: where users' online profiles live (None: none)."""

    def __init__(self, model: str | Path, milvus_uri: str, feast_repo: str | Path | None = None,
                 params: dict[str, Any] | None = None, dataset: str | None = None):
        self.params = params if params is not None else load_params()
        self.model_path = Path(model)
        self.follows = (self.model_path / CURRENT).exists() or not (self.model_path / "metadata.json").exists()
        self.dataset = dataset or (self.model_path.name if self.follows else self.model_path.parent.name)
        self.milvus_uri, self.feast_repo = milvus_uri, Path(feast_repo) if feast_repo else None
        self.served: Served | None = None
        self.store = None
        self._feast_lock = threading.Lock()  # Feast's online read-modify-write per user is not atomic
        self._swap_lock = threading.Lock()
        self.alias = item_index.alias_name(self.dataset)
        self._failed: Path | None = None  # the last version that could not be loaded

    @classmethod
    def from_settings(cls, model: str | None = None, milvus_uri: str | None = None, feast_repo: str | None = None,
                      dataset: str | None = None) -> Engine:
        """Defaults: the default dataset's models folder, Milvus Lite under the data dir, that
        dataset's Feast repo when it has been applied."""
        params = load_params()
        dataset = dataset or typed(params).data.default_dataset
        model = model or str(models_dir(dataset))
        milvus_uri = milvus_uri or paths.milvus_uri()
        if feast_repo is None:
            repo = feast_repo_dir(dataset, typed(params).features.online_store)
            feast_repo = str(repo) if (repo / "feature_store.yaml").exists() else None
        return cls(model, milvus_uri, feast_repo or None, params, dataset)

    # ------------------------------------------------------------------ lifecycle
    def _target(self) -> Path:
        return current_version(self.model_path) if self.follows else resolve_model(self.model_path)

    def load(self) -> Engine:
        if self.milvus_uri.endswith(".db"):
            Path(self.milvus_uri).parent.mkdir(parents=True, exist_ok=True)
        if self.feast_repo is not None:  # first: ready means every part is loaded
            from coldrec.feature_store.store import open_store

            self.store = open_store(self.feast_repo)
        self.milvus = item_index.client(self.milvus_uri)
        self.promote(self._target())
        return self

    @property
    def ready(self) -> bool:
        return self.served is not None

    def promote(self, model_dir: Path) -> Served:
        """Load ``model_dir`` completely, then switch to it (requests in flight finish on the old one)."""
        with self._swap_lock:
            if self.served is not None and self.served.model_dir == model_dir:
                return self.served
            served = self._replay(load_served(model_dir, self.params, self.milvus, self.dataset))
            self.served = served
            item_index.point_alias(self.milvus, self.alias, served.collection)
            log.info("serving %s (collection %s)", served.version, served.collection)
            return served

    def refresh(self) -> bool:
        """Follow the promoted version: switch when the ``current`` pointer names another one."""
        if not self.follows:
            return False
        target = self._target()
        if self.served is not None and target == self.served.model_dir or target == self._failed:
            return False
        try:
            self.promote(target)
        except Exception:
            self._failed = target  # not retried every few seconds: only when the pointer names another version
            raise
        self._failed = None
        return True

    def watch(self, every: float) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - a bad new version must not stop serving the old
                    log.error("not switching version: %s", exc)

        t = threading.Thread(target=loop, name="coldrec-version-watch", daemon=True)
        t.start()
        return t

    def snapshot(self) -> Served:
        s = self.served
        if s is None:
            raise NotReady("the model is still loading")
        return s

    # ------------------------------------------------------------------ requests
    def _stored(self, user_id: str | None) -> dict[str, Any] | None:
        if not user_id or self.store is None:
            return None
        from coldrec.feature_store.store import get_user_profile

        with self._feast_lock:
            prof = get_user_profile(self.store, user_id)
        return prof if prof.get("known") else None

    def _profile(self, s: Served, req: ShopperSignals) -> tuple[Signals, list[str], str, dict[str, Any] | None]:
        data = s.model.train
        stored = self._stored(req.user_id)
        items: list[str] = []
        types: list[str] = []
        query = req.query or None
        if stored:
            items += [str(i) for i in stored.get("recent_item_ids") or []]
            types += [str(t) for t in stored.get("recent_event_types") or []]
            if len(types) != len(items):
                types = ["view"] * len(items)
            if not query and stored.get("recent_queries"):
                query = str(stored["recent_queries"][-1])
        asked = [(r.item_id, r.event_type) for r in req.recent_items]
        ignored = [i for i, _ in asked if i not in data.item_index]
        for i, t in asked:
            if i in data.item_index:
                items.append(i)
                types.append(t)
        keep = [(i, t) for i, t in zip(items, types) if i in data.item_index]
        profile = Signals(items=[i for i, _ in keep], event_types=[t for _, t in keep], query=query,
                          interests=list(req.interests), attributes=dict(req.attributes))
        if stored and keep:
            strategy = "known_user"
        elif keep:
            strategy = "cold_start_items"
        elif query:
            strategy = "query"
        elif profile.interests:
            strategy = "interests"
        elif s.model.parts.attrs.known(profile):
            strategy = "attributes"
        else:
            strategy = "fallback_popular"
        return profile, ignored, strategy, stored

    def _allowed(self, s: Served, f: Filters | None) -> tuple[str | None, np.ndarray | None]:
        removed = s.removed
        if f is None or not (f.categories or f.price_min is not None or f.price_max is not None or f.in_stock):
            return None, (~removed if removed.any() else None)
        ok = ~removed
        if f.categories:
            in_any = np.zeros(len(ok), bool)
            for c in {c.lower() for c in f.categories}:
                in_any[s.categories.get(c, [])] = True
            ok &= in_any
        with np.errstate(invalid="ignore"):
            if f.price_min is not None:
                ok &= s.prices >= f.price_min
            if f.price_max is not None:
                ok &= s.prices <= f.price_max
        if f.in_stock:
            ok &= s.in_stock
        # the index gets the cheap scalar part; categories (several per item) are applied to every source here
        expr = item_index.filter_expr((), f.price_min, f.price_max, f.in_stock)
        return expr, ok

    def _items(self, s: Served, recs) -> list[dict[str, Any]]:
        titles = s.model.train.items["title"]
        idx = s.model.train.item_index
        return [{"item_id": r.item_id, "score": round(float(r.score), 6), "title": str(titles.iat[idx[r.item_id]]),
                 "reason": r.reason} for r in recs]

    def recommend(self, req: RecommendRequest) -> dict[str, Any]:
        s = self.snapshot()
        profile, ignored, strategy, _ = self._profile(s, req)
        expr, allowed = self._allowed(s, req.filters)
        ignored += [i for i in req.exclude if i not in s.model.train.item_index]
        recs = s.ranker.recommend(profile, req.k, exclude=req.exclude, mask_expr=expr, allowed=allowed)
        return {"items": self._items(s, recs), "strategy": strategy, "model_version": s.version,
                "recommendation_id": uuid.uuid4().hex, "ignored_items": ignored}

    def search(self, query: str, k: int) -> dict[str, Any]:
        """Items whose title, category or brand hold every word of ``query`` (case-insensitive), most
        popular first; an empty query: the most popular items. Deleted items never appear."""
        s = self.snapshot()
        items = s.model.train.items
        words = [w for w in query.lower().split() if w]
        ok = ~s.removed if s.removed is not None else np.ones(len(items), bool)
        if words:
            def col(name: str):
                return items[name].fillna("").astype(str) if name in items.columns else ""

            text = (col("title") + " " + col("category") + " " + col("brand")).str.lower()
            for w in words:
                ok &= text.str.contains(w, regex=False).to_numpy()
        rows = np.flatnonzero(ok)
        pop = np.asarray(s.model._popularity, dtype=np.float64)[rows]
        rows = rows[np.lexsort((rows, -pop))][:k]
        out = [{"item_id": str(items["item_id"].iat[r]), "title": str(items["title"].iat[r]),
                "category": _text(items, "category", r), "price": _number(items, "price", r)} for r in rows]
        return {"query": query, "items": out, "total": int(ok.sum()), "model_version": s.version}

    def similar(self, req: SimilarRequest) -> dict[str, Any]:
        """Items for someone looking at ``item_id``: the model's ranking for a one-item shopper."""
        s = self.snapshot()
        if req.item_id not in s.model.train.item_index:
            raise DataError(f"item_id: unknown item {req.item_id!r} (not in model version {s.version})")
        expr, allowed = self._allowed(s, req.filters)
        recs = s.ranker.recommend(Signals(items=[req.item_id], event_types=["view"]), req.k, mask_expr=expr,
                                  allowed=allowed)
        return {"item_id": req.item_id, "items": self._items(s, recs), "model_version": s.version}

    def profile(self, req: ShopperSignals) -> dict[str, Any]:
        s = self.snapshot()
        profile, ignored, strategy, stored = self._profile(s, req)
        used = set(s.model.parts.attrs.known(profile))
        unused = [f"{k}={v}" for k, v in profile.attributes.items() if (str(k), str(v)) not in used]
        out = describe(s.model, profile, ignored, unused)
        out.update(strategy=strategy, model_version=s.version, known_user=stored is not None,
                   stored_events=int(stored.get("n_events", 0)) if stored else 0)
        return out

    def feedback(self, event: dict[str, Any]) -> dict[str, Any]:
        s = self.snapshot()
        if self.store is None:
            raise Unavailable("feedback needs the Feast online store: run `coldrec features apply` and restart")
        item = event.get("item_id")
        if item and item not in s.model.train.item_index:
            raise DataError(f"item_id: unknown item {item!r} (not in model version {s.version})")
        from coldrec.feature_store.store import push_event

        with self._feast_lock:
            prof = push_event(self.store, {k: v for k, v in event.items() if k != "recommendation_id" and v is not None})
        return {"accepted": True, "user_id": event["user_id"], "events": int(prof.get("n_events", 0)),
                "recommendation_id": event.get("recommendation_id")}

    # ------------------------------------------------------------------ catalogue changes
    def _apply_upsert(self, s: Served, items: pd.DataFrame) -> Served:
        from coldrec.runtime.catalogue import upsert

        model, rows, vecs = upsert(s.model, items)
        item_index.upsert_items(self.milvus, s.collection, items, vecs, rows, np.asarray(model.parts.pop)[rows] > 0)
        ranker = CandidateRanker(model, s.ranker.index, s.ranker.sizes)
        removed = np.concatenate([s.removed, np.zeros(model.train.n_items - len(s.removed), bool)])
        removed[rows] = False  # a re-sent item is back
        return dataclasses.replace(s, model=model, ranker=ranker, **dict(zip(("categories", "prices", "in_stock"),
                                                                             _item_facts(model.train.items))),
                                   removed=removed)

    def _apply_delete(self, s: Served, item_ids: list[str]) -> Served:
        rows = [s.model.train.item_index[i] for i in item_ids if i in s.model.train.item_index]
        removed = s.removed.copy()
        removed[rows] = True
        item_index.delete_items(self.milvus, s.collection, rows)
        return dataclasses.replace(s, removed=removed)

    def _replay(self, s: Served) -> Served:
        log_file = catalogue_log(self.dataset)
        if not log_file.is_file():
            return s
        for n, line in enumerate(log_file.read_text(encoding="utf-8").splitlines(), 1):
            try:
                change = json.loads(line)
                if change["op"] == "upsert":
                    s = self._apply_upsert(s, pd.DataFrame(change["items"]))
                else:
                    s = self._apply_delete(s, list(change["item_ids"]))
            except Exception as exc:  # noqa: BLE001 - one bad line must not stop serving
                log.error("%s line %d: skipped (%s: %s)", log_file, n, type(exc).__name__, exc)
        return s

    def _record(self, change: dict[str, Any]) -> None:
        f = catalogue_log(self.dataset)
        f.parent.mkdir(parents=True, exist_ok=True)
        with open(f, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(change, default=str) + "\n")

    def upsert_items(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Add or replace catalogue items: recommendable at once (vector from their text)."""
        with self._swap_lock:
            s = self.snapshot()
            known = s.model.train.item_index
            df = pd.DataFrame(items)
            served = self._apply_upsert(s, df)
            self._record({"op": "upsert", "items": items})
            self.served = served
        ids = [str(i["item_id"]) for i in items]
        return {"upserted": len(ids), "new": [i for i in ids if i not in known], "model_version": served.version}

    def delete_items(self, item_ids: list[str]) -> dict[str, Any]:
        """Remove items from every answer (they stay in the version's files until the next training)."""
        with self._swap_lock:
            s = self.snapshot()
            unknown = [i for i in item_ids if i not in s.model.train.item_index]
            served = self._apply_delete(s, item_ids)
            self._record({"op": "delete", "item_ids": item_ids})
            self.served = served
        return {"deleted": len(item_ids) - len(unknown), "ignored_items": unknown, "model_version": served.version}


def _text(items, column: str, row: int) -> str | None:
    if column not in items.columns:
        return None
    v = items[column].iat[row]
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _number(items, column: str, row: int) -> float | None:
    if column not in items.columns:
        return None
    try:
        v = float(items[column].iat[row])
    except (TypeError, ValueError):
        return None
    return None if np.isnan(v) else round(v, 2)
