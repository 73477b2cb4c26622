"""What the HTTP service does, as plain methods: recommend, similar items, profile, feedback,
catalogue changes and search.

Why apart from the BentoML class: tests, benchmarks and the evaluation call the same code
in-process (the HTTP cost is then measured as the difference), and the service file stays a
thin adapter. This class only wires the parts, each a module with one job:
:mod:`serving.snapshots` (which version serves, swapped whole), :mod:`serving.requests` (a
request's profile through the runtime's ``build_profile``, filters, answer rows),
:mod:`serving.feedback` (the Feast user states) and :mod:`serving.catalogue_log` (``/items``
changes, kept across restarts and promotions). A request takes the snapshot once and uses only
it, so an answer never mixes two versions.
"""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from coldrec.core import paths
from coldrec.core.config import load_params
from coldrec.core.errors import DataError
from coldrec.core.params import typed
from coldrec.core.paths import CURRENT, feast_repo_dir, models_dir
from coldrec.runtime import item_index
from coldrec.runtime.recommender import Signals
from serving import catalogue_log, requests
from serving.feedback import Unavailable, UserStates
from serving.schemas import RecommendRequest, ShopperSignals, SimilarRequest
from serving.snapshots import NotReady, Served, Versions

__all__ = ["Engine", "NotReady", "Unavailable"]


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
        self.users = UserStates(self.feast_repo)
        self.versions = Versions(self.model_path, self.follows, self.params, self.dataset,
                                 prepare=lambda milvus, s: catalogue_log.replay(self.dataset, milvus, s))

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
    def load(self) -> Engine:
        if self.milvus_uri.endswith(".db"):
            Path(self.milvus_uri).parent.mkdir(parents=True, exist_ok=True)
        self.users.open()  # first: ready means every part is loaded
        self.milvus = item_index.client(self.milvus_uri)
        self.versions.start(self.milvus)
        return self

    @property
    def ready(self) -> bool:
        return self.versions.served is not None

    def snapshot(self) -> Served:
        return self.versions.snapshot()

    def promote(self, model_dir: Path) -> Served:
        """Load ``model_dir`` completely, then switch to it (requests in flight finish on the old one)."""
        return self.versions.promote(model_dir)

    def refresh(self) -> bool:
        """Follow the promoted version: switch when the ``current`` pointer names another one."""
        return self.versions.refresh()

    def watch(self, every: float) -> threading.Thread:
        return self.versions.watch(every)

    # ------------------------------------------------------------------ requests
    def recommend(self, req: RecommendRequest) -> dict[str, Any]:
        s = self.snapshot()
        who = requests.shopper(s, req, self.users.stored(req.user_id))
        expr, allowed = requests.allowed(s, req.filters)
        ignored = [*who.built.ignored_items, *(i for i in req.exclude if i not in s.model.train.item_index)]
        recs = s.ranker.recommend(who.built.signals, req.k, exclude=req.exclude, mask_expr=expr, allowed=allowed)
        return {"items": requests.item_rows(s, recs), "strategy": who.strategy, "model_version": s.version,
                "recommendation_id": uuid.uuid4().hex, "ignored_items": ignored}

    def search(self, query: str, k: int) -> dict[str, Any]:
        """Items whose title, category or brand hold every word of ``query`` (case-insensitive), most
        popular first; an empty query: the most popular items. Deleted items never appear."""
        s = self.snapshot()
        out, total = requests.search(s, query, k)
        return {"query": query, "items": out, "total": total, "model_version": s.version}

    def similar(self, req: SimilarRequest) -> dict[str, Any]:
        """Items for someone looking at ``item_id``: the model's ranking for a one-item shopper."""
        s = self.snapshot()
        if req.item_id not in s.model.train.item_index:
            raise DataError(f"item_id: unknown item {req.item_id!r} (not in model version {s.version})")
        expr, allowed = requests.allowed(s, req.filters)
        recs = s.ranker.recommend(Signals(items=[req.item_id], event_types=["view"]), req.k, mask_expr=expr,
                                  allowed=allowed)
        return {"item_id": req.item_id, "items": requests.item_rows(s, recs), "model_version": s.version}

    def profile(self, req: ShopperSignals) -> dict[str, Any]:
        s = self.snapshot()
        who = requests.shopper(s, req, self.users.stored(req.user_id))
        stored = who.stored
        return {**who.built.readable, "strategy": who.strategy, "model_version": s.version,
                "known_user": stored is not None, "stored_events": int(stored.get("n_events", 0)) if stored else 0}

    def feedback(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.users.push(self.snapshot(), event)

    # ------------------------------------------------------------------ catalogue changes
    def upsert_items(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Add or replace catalogue items: recommendable at once (vector from their text)."""
        before, served = self.versions.change(lambda s: catalogue_log.upsert(self.dataset, self.milvus, s, items))
        known = before.model.train.item_index
        ids = [str(i["item_id"]) for i in items]
        return {"upserted": len(ids), "new": [i for i in ids if i not in known], "model_version": served.version}

    def delete_items(self, item_ids: list[str]) -> dict[str, Any]:
        """Remove items from every answer (they stay in the version's files until the next training)."""
        before, served = self.versions.change(lambda s: catalogue_log.delete(self.dataset, self.milvus, s, item_ids))
        unknown = [i for i in item_ids if i not in before.model.train.item_index]
        return {"deleted": len(item_ids) - len(unknown), "ignored_items": unknown, "model_version": served.version}
