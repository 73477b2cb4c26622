"""Cold-start profile builder: whatever a new shopper has shown -> a vector and a readable profile.

Inputs, any mix: recent item ids (with event types: views weigh less than purchases), search
queries, stated interests (categories or keywords from onboarding), attributes. Unknown item
ids, and attribute values no training shopper had (or columns the model does not segment by),
are ignored with a warning, never a crash. With no signal at all the profile says so and
the model falls back to popular, diverse picks.

Why one function: the service's request path (``serving/requests.py``, which adds a known
shopper's stored state as earlier items) and every offline caller build a profile here, so what
``/recommend`` ranks and what ``/profile`` describes are the profile the tests check.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from coldrec.runtime.recommender import Signals

if TYPE_CHECKING:
    from coldrec.runtime.scorer import ColdrecRuntime

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = {"the", "and", "for", "with", "set", "from", "this", "that", "genres", "tags", "unknown"}
BANDS = ("budget", "lower-mid", "mid", "upper-mid", "premium")


@dataclass
class BuiltProfile:
    """A shopper's profile: the :class:`Signals` the scorer ranks from, what was left out of them,
    and, computed on first use, the user vector and the readable summary.

    Why lazy: the request path needs only ``signals`` (the scorer encodes the text once itself, so
    an eager vector would encode every query twice), ``/profile`` only ``readable``.
    """

    signals: Signals
    ignored_items: list[str]  # the caller's item ids the catalogue does not have, in the order given
    ignored_attributes: list[str]  # "key=value" no training shopper had
    known_attributes: list[tuple[str, str]]  # the (key, value) pairs the attribute component scores
    model: ColdrecRuntime = field(repr=False, compare=False)

    @cached_property
    def vector(self) -> np.ndarray:
        return np.asarray(self.model._user_vectors(self.model.train, [self.signals])[0])

    @cached_property
    def readable(self) -> dict[str, Any]:
        return describe(self.model, self.signals, self.ignored_items, self.ignored_attributes)


def build_profile(model: ColdrecRuntime, items: Sequence[str] = (), event_types: Sequence[str] = (), queries: Sequence[str] = (),
                  interests: Sequence[str] = (), attributes: dict[str, Any] | None = None, *,
                  earlier_items: Sequence[str] = (), earlier_types: Sequence[str] = (),
                  warn: bool = True) -> BuiltProfile:
    """``model`` is a loaded or fitted :class:`coldrec.runtime.scorer.ColdrecRuntime` (it owns the catalogue).

    ``event_types`` (``earlier_types``) parallel to ``items`` (``earlier_items``), else every one
    is a view. ``earlier_items``: what the shopper did before (a stored user state), placed before
    ``items``; ids the catalogue no longer has are dropped without being reported, as they are
    not the caller's mistake. ``warn``: log what is ignored (the service says it in its answer).
    """
    data = model.train
    earlier = [str(i) for i in earlier_items]
    earlier_t = [str(t) for t in earlier_types] if len(earlier_types) == len(earlier) else ["view"] * len(earlier)
    items = [str(i) for i in items]
    types = [str(t) for t in event_types] if len(event_types) == len(items) else ["view"] * len(items)
    unknown = [i for i in items if i not in data.item_index]
    if unknown and warn:
        log.warning("ignoring %d unknown item id(s): %s", len(unknown), ", ".join(unknown[:10]))
    known_pairs = [(i, t) for i, t in zip(earlier + items, earlier_t + types) if i in data.item_index]
    query = " ".join(q.strip() for q in queries if q and q.strip()) or None
    profile = Signals(items=[i for i, _ in known_pairs], event_types=[t for _, t in known_pairs], query=query,
                      interests=[s.strip() for s in interests if s and s.strip()], attributes=dict(attributes or {}))
    known = model.parts.attrs.known(profile)
    used = set(known)
    unused = [f"{k}={v}" for k, v in profile.attributes.items() if (str(k), str(v)) not in used]
    if unused and warn:
        log.warning("ignoring %d attribute(s) no training shopper had: %s", len(unused), ", ".join(unused[:10]))
    return BuiltProfile(profile, unknown, unused, known, model)


def describe(model: ColdrecRuntime, profile: Signals, ignored: Sequence[str] = (), ignored_attributes: Sequence[str] = ()
             ) -> dict[str, Any]:
    data = model.train
    cat = data.items.set_index("item_id")
    rows = cat.loc[profile.items] if profile.items else cat.iloc[0:0]
    based_on = []
    if profile.items:
        counts = Counter(profile.event_types)
        based_on.append(f"{len(profile.items)} item(s): " + ", ".join(f"{n} {t}" for t, n in counts.most_common()))
    if profile.query:
        based_on.append(f"search '{profile.query}'")
    if profile.interests:
        based_on.append("interests: " + ", ".join(profile.interests))
    skipped = set(ignored_attributes)
    used = [f"{k}={v}" for k, v in profile.attributes.items() if f"{k}={v}" not in skipped]
    if used:
        based_on.append("attributes: " + ", ".join(used))
    categories: Counter[str] = Counter()
    if "category" in rows.columns:
        for c in rows["category"].dropna():
            categories.update(x.strip() for x in str(c).split(",") if x.strip())
    words: Counter[str] = Counter()
    for text in [*rows["title"].astype(str), profile.query or "", *profile.interests]:
        words.update(w for w in _WORD.findall(text.lower()) if w not in _STOP)
    price_band = None
    prices = data.items["price"].dropna()
    mine = rows["price"].dropna() if "price" in rows.columns else []
    if len(prices) >= 5 and len(mine):
        edges = np.quantile(prices, [0.2, 0.4, 0.6, 0.8])
        median = float(np.median(mine))
        band = int(np.searchsorted(edges, median, side="right"))
        lo = float(prices.min()) if band == 0 else float(edges[band - 1])
        hi = float(prices.max()) if band == len(edges) else float(edges[band])
        price_band = {"band": BANDS[band], "median_price": round(median, 2), "range": [round(lo, 2), round(hi, 2)]}
    return {
        "based_on": based_on or ["nothing yet: popular and diverse picks"],
        "top_categories": [c for c, _ in categories.most_common(5)],
        "keywords": [w for w, _ in words.most_common(8)],
        "price_band": price_band,
        "ignored_items": list(ignored),
        "ignored_attributes": list(ignored_attributes),
    }
