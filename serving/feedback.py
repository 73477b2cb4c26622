"""Shoppers' stored state in the Feast online store: read for a request, updated by feedback.

Why apart: it is the engine's only part with state outside the model version (and optional:
without a Feast repository there are no user lookups and ``/feedback`` answers 503). Feast's
online read-modify-write per user is not atomic, so reads and pushes share one lock.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from coldrec.core.errors import ColdrecError, DataError
from serving.snapshots import Served


class Unavailable(ColdrecError):
    """A part the request needs is not configured (e.g. feedback without a feature store: 503)."""


class UserStates:
    """The online user states of one Feast repository (``repo`` None: none)."""

    def __init__(self, repo: Path | None):
        self.repo = repo
        self.store: Any = None  # a feast.FeatureStore once opened
        self._lock = threading.Lock()

    def open(self) -> None:
        if self.repo is not None:
            from coldrec.feature_store.store import open_store

            self.store = open_store(self.repo)

    def stored(self, user_id: str | None) -> dict[str, Any] | None:
        """The user's stored state (:mod:`coldrec.feature_store.user_state`); None for no id, no
        store or a user the store has never seen."""
        if not user_id or self.store is None:
            return None
        from coldrec.feature_store.store import get_user_profile

        with self._lock:
            prof = get_user_profile(self.store, user_id)
        return prof if prof.get("known") else None

    def push(self, s: Served, event: dict[str, Any]) -> dict[str, Any]:
        """Fold one app event into the user's state; its item must be in the served version."""
        if self.store is None:
            raise Unavailable("feedback needs the Feast online store: run `coldrec features apply` and restart")
        item = event.get("item_id")
        if item and item not in s.model.train.item_index:
            raise DataError(f"item_id: unknown item {item!r} (not in model version {s.version})")
        from coldrec.feature_store.store import push_event

        with self._lock:
            prof = push_event(self.store, {k: v for k, v in event.items() if k != "recommendation_id" and v is not None})
        return {"accepted": True, "user_id": event["user_id"], "events": int(prof.get("n_events", 0)),
                "recommendation_id": event.get("recommendation_id")}
