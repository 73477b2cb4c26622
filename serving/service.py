"""The BentoML service: a thin HTTP adapter over :class:`serving.engine.Engine`.

Run it with ``coldrec serve`` (or ``bentoml serve serving.service:Coldrec``). Configuration by
environment, so a Bento and a checkout run it alike: ``COLDREC_MODEL`` (a models folder, which
is followed as versions are promoted, or one version), ``COLDREC_MILVUS_URI``,
``COLDREC_FEAST_REPO`` (empty: no user lookups, no feedback), ``COLDREC_DATASET``,
``COLDREC_API_KEY``.

Why sync APIs on threads: the work is NumPy, ONNX Runtime and gRPC calls to Milvus, which
release the GIL for most of their time; BentoML's default for a sync API is one thread, which
serialises every request. ``serving.threads`` in params.yaml sets the pool (see benchmarks/).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import InvalidArgument, ServiceUnavailable

from coldrec.core.config import load_params
from coldrec.core.errors import ColdrecError
from coldrec.core.params import typed
from coldrec.release.bundle import MARKER
from coldrec.runtime.item_index import ItemIndexError
from serving.engine import Engine, NotReady, Unavailable
from serving.http import Guard
from serving.schemas import (
    DeleteItems,
    FeedbackRequest,
    RecommendRequest,
    SearchRequest,
    ShopperSignals,
    SimilarRequest,
    UpsertItems,
)
from serving.web import ui_app

log = logging.getLogger("coldrec.serving")
_SERVING = typed(load_params()).serving


def _engine_from_env() -> Engine:
    env = os.environ.get
    model, dataset = env("COLDREC_MODEL") or None, env("COLDREC_DATASET") or None
    marker = Path(__file__).resolve().parent.parent / MARKER
    if marker.is_file():  # inside a Bento: the version it was built with, from its model store
        bento = json.loads(marker.read_text(encoding="utf-8"))
        model, dataset = bentoml.models.get(bento["model"]).path, bento["dataset"]
    return Engine.from_settings(model=model, milvus_uri=env("COLDREC_MILVUS_URI") or None,
                                feast_repo=env("COLDREC_FEAST_REPO"), dataset=dataset)


@bentoml.service(name="coldrec", workers=1, threads=_SERVING.threads, traffic={"timeout": 30},
                 logging={"access": {"enabled": _SERVING.access_log}})
class Coldrec:
    def __init__(self) -> None:
        self.engine = _engine_from_env()
        self.load_error: str | None = None
        threading.Thread(target=self._load, name="coldrec-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.engine.load()
            self.engine.watch(_SERVING.reload_seconds)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log, never a crash loop
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("coldrec: cannot load the model: %s", self.load_error)

    def __is_ready__(self) -> bool:
        return self.engine.ready

    def _call(self, fn, arg) -> dict[str, Any]:
        try:
            return fn(arg)
        except (NotReady, Unavailable, ItemIndexError) as exc:
            log.warning("503: %s", exc)
            raise ServiceUnavailable(str(exc)) from None
        except ColdrecError as exc:
            raise InvalidArgument(str(exc)) from None

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    def recommend(self, **body: Any) -> dict[str, Any]:
        """Top-k items for a shopper (known user id, recent items, a query, interests, attributes or nothing)."""
        return self._call(self.engine.recommend, RecommendRequest.model_validate(body))

    @bentoml.api(route="/similar-items", input_spec=SimilarRequest)
    def similar_items(self, **body: Any) -> dict[str, Any]:
        """Items to show beside one item."""
        return self._call(self.engine.similar, SimilarRequest.model_validate(body))

    @bentoml.api(route="/profile", input_spec=ShopperSignals)
    def profile(self, **body: Any) -> dict[str, Any]:
        """The readable profile the model builds from the same signals /recommend takes."""
        return self._call(self.engine.profile, ShopperSignals.model_validate(body))

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    def feedback(self, **body: Any) -> dict[str, Any]:
        """An event from the app (view, click, add_to_cart, purchase, search, rate), pushed to the
        Feast online store: the next /recommend for that user id uses it."""
        return self._call(self.engine.feedback, FeedbackRequest.model_validate(body).model_dump())

    @bentoml.api(route="/items", input_spec=UpsertItems)
    def upsert_items(self, **body: Any) -> dict[str, Any]:
        """Add or replace catalogue items (up to 500): recommendable at once, their vectors from their
        text through the served version's encoder; kept across restarts until the next training."""
        req = UpsertItems.model_validate(body)
        return self._call(self.engine.upsert_items, [i.model_dump() for i in req.items])

    @bentoml.api(route="/items/delete", input_spec=DeleteItems)
    def delete_items(self, **body: Any) -> dict[str, Any]:
        """Remove items from every answer (unknown ids are reported, not an error)."""
        return self._call(self.engine.delete_items, DeleteItems.model_validate(body).item_ids)

    @bentoml.api(route="/catalogue/search", input_spec=SearchRequest)
    def catalogue_search(self, **body: Any) -> dict[str, Any]:
        """Catalogue items by words of their title, category or brand (empty: the most popular)."""
        req = SearchRequest.model_validate(body)
        return self._call(lambda r: self.engine.search(r.query, r.k), req)

    @bentoml.api(route="/models", input_spec=None)
    def models(self) -> dict[str, Any]:
        """The registry's versions with stage, gate result, fidelity; which one serves; the newest
        evaluation (what the web page's "Model versions" view shows)."""
        from coldrec.release.model_report import versions_view

        s = self.engine.snapshot() if self.engine.ready else None
        folder = Path(self.engine.model_path)
        return versions_view(self.engine.dataset, s.version if s else None,
                             folder if self.engine.follows else folder.parent)

    @bentoml.api(route="/version", input_spec=None)
    def version(self) -> dict[str, Any]:
        """Which model version and item collection answer right now."""
        s = self.engine.snapshot() if self.engine.ready else None
        return {"model_version": s.version if s else None, "collection": s.collection if s else None,
                "dataset": self.engine.dataset, "ready": s is not None, "load_error": self.load_error}


def _plot() -> Path | None:
    from coldrec.release.model_report import evaluation

    ev = evaluation(os.environ.get("COLDREC_DATASET") or typed(load_params()).data.default_dataset)
    return Path(ev["plot_path"]) if ev and ev["plot"] else None


Coldrec.mount_asgi_app(ui_app(_plot), path="/ui")
Coldrec.add_asgi_middleware(Guard, max_body_bytes=_SERVING.max_body_bytes)
