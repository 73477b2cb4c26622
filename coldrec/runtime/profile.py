"""Cold-start profile builder: whatever a new shopper has shown -> a vector and a readable profile.

Inputs, any mix: recent item ids (with event types: views weigh less than purchases), search
queries, stated interests (categories or keywords from onboarding), attributes. Unknown item
ids, and attribute values no training shopper had (or columns the model does not segment by),
are ignored with a warning, never a crash. With no signal at all the profile says so and
the model falls back to popular, diverse picks.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coldrec.runtime.recommender import Signals

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = {"the", "and", "for", "with", "set", "from", "this", "that", "genres", "tags", "unknown"}
BANDS = ("budget", "lower-mid", "mid", "upper-mid", "premium")


@dataclass
class BuiltProfile:
    signals: Signals
    vector: np.ndarray
    readable: dict[str, Any] = field(default_factory=dict)


def build_profile(model, items: Sequence[str] = (), event_types: Sequence[str] = (), queries: Sequence[str] = (),
                  interests: Sequence[str] = (), attributes: dict[str, Any] | None = None) -> BuiltProfile:
    """``model`` is a loaded or fitted :class:`coldrec.runtime.scorer.ColdrecRuntime` (it owns the catalogue)."""
    data = model.train
    items = [str(i) for i in items]
    types = [str(t) for t in event_types] if len(event_types) == len(items) else ["view"] * len(items)
    unknown = [i for i in items if i not in data.item_index]
    if unknown:
        log.warning("ignoring %d unknown item id(s): %s", len(unknown), ", ".join(unknown[:10]))
    known_pairs = [(i, t) for i, t in zip(items, types) if i in data.item_index]
    query = " ".join(q.strip() for q in queries if q and q.strip()) or None
    profile = Signals(items=[i for i, _ in known_pairs], event_types=[t for _, t in known_pairs], query=query,
                      interests=[s.strip() for s in interests if s and s.strip()], attributes=dict(attributes or {}))
    used = set(model.parts.attrs.known(profile))
    unused = [f"{k}={v}" for k, v in profile.attributes.items() if (str(k), str(v)) not in used]
    if unused:
        log.warning("ignoring %d attribute(s) no training shopper had: %s", len(unused), ", ".join(unused[:10]))
    vector = model._user_vectors(data, [profile])[0]
    return BuiltProfile(profile, vector, describe(model, profile, unknown, unused))


def describe(model, profile: Signals, ignored: Sequence[str] = (), ignored_attributes: Sequence[str] = ()
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
