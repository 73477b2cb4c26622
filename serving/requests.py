"""From a request to what the runtime ranks, and from a ranking to the rows of an answer.

Why through :func:`coldrec.runtime.profile.build_profile`: it is the one place that turns a
shopper's signals into a profile, so ``/recommend`` ranks and ``/profile`` describes exactly what
offline callers and the tests build. This module adds only what belongs to the service: a known
shopper's stored state goes first, the strategy name, filters as a row mask (plus the part
Milvus can apply), an answer's item rows and the catalogue search.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from coldrec.runtime import item_index
from coldrec.runtime.profile import BuiltProfile, build_profile
from serving.schemas import Filters, ShopperSignals
from serving.snapshots import Served


@dataclass(frozen=True)
class Shopper:
    """A request's profile as the service uses it."""

    built: BuiltProfile
    strategy: str  # which signal leads, as the answer names it
    stored: dict[str, Any] | None  # the Feast user state it started from (None: an unknown or anonymous user)


def shopper(s: Served, req: ShopperSignals, stored: dict[str, Any] | None) -> Shopper:
    """The request's signals after the stored ones; the request's query, else a stored one.

    Request items the catalogue lacks come back in ``built.ignored_items``; stored ones are
    dropped silently (the catalogue changed since, not the caller's mistake)."""
    queries = [req.query] if req.query else []
    earlier_items: list[Any] = []
    earlier_types: list[Any] = []
    if stored:
        # the stored lists are newest first (coldrec.feature_store.user_state.apply_event), Signals
        # oldest first: reversed, the newest stored item gets the most recency weight, and the
        # newest stored query is the one used
        earlier_items = list(reversed(stored.get("recent_item_ids") or []))
        earlier_types = list(reversed(stored.get("recent_event_types") or []))
        if not queries and stored.get("recent_queries"):
            queries = [str(stored["recent_queries"][0])]
    built = build_profile(s.model, [r.item_id for r in req.recent_items], [r.event_type for r in req.recent_items],
                          queries, req.interests, req.attributes, earlier_items=earlier_items,
                          earlier_types=earlier_types, warn=False)
    return Shopper(built, _strategy(built, stored), stored)


def _strategy(built: BuiltProfile, stored: dict[str, Any] | None) -> str:
    p = built.signals
    if stored and p.items:
        return "known_user"
    if p.items:
        return "cold_start_items"
    if p.query:
        return "query"
    if p.interests:
        return "interests"
    if built.known_attributes:
        return "attributes"
    return "fallback_popular"


def allowed(s: Served, f: Filters | None) -> tuple[str | None, np.ndarray | None]:
    """(Milvus expression, row mask) for the filters; deleted items are always masked out.

    The index gets the cheap scalar part; categories (several per item) are applied to every
    candidate source through the mask."""
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
    expr = item_index.filter_expr((), f.price_min, f.price_max, f.in_stock)
    return expr, ok


def item_rows(s: Served, recs) -> list[dict[str, Any]]:
    """An answer's items: id, rounded score, title, reason."""
    titles = s.model.train.items["title"]
    idx = s.model.train.item_index
    return [{"item_id": r.item_id, "score": round(float(r.score), 6), "title": str(titles.iat[idx[r.item_id]]),
             "reason": r.reason} for r in recs]


def search(s: Served, query: str, k: int) -> tuple[list[dict[str, Any]], int]:
    """(up to k rows, how many match): items whose title, category or brand hold every word of
    ``query`` (case-insensitive), most popular first; deleted items never match."""
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
    pop = np.asarray(s.model.popularity, dtype=np.float64)[rows]
    rows = rows[np.lexsort((rows, -pop))][:k]
    out = [{"item_id": str(items["item_id"].iat[r]), "title": str(items["title"].iat[r]),
            "category": _text(items, "category", r), "price": _number(items, "price", r)} for r in rows]
    return out, int(ok.sum())


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
