"""Evaluation splits. Each returns the training events and, per reveal size k, the test cases.

- ``time``  (cold-start users, default): train = events before the cutoff; test users are those
  whose *first* event is on/after it, so no test user appears in training.
- ``users`` (cold-start users): a seeded random share of users is held out entirely; for data
  whose timestamps are only an ordering.
- ``warm``  (reference): each user's last new item is held out; the profile is the k most recent
  items before it, and the user's whole history is excluded from the ranking.

For cold-start splits a test user's distinct items, in order of first interaction, are split
into the first k (revealed) and the rest (targets). k = 0 reveals nothing but the user's first
search query, where the data has one. Users with no target left for a k are not counted at it.

Query probe (key ``"query"``): where the data has no search events, a query is made from the
first item's title (its first ``QUERY_WORDS`` content words, e.g. "white hanging heart") and the
first item itself is dropped from the targets: the shopper searched, then bought other things.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from coldrec.core.errors import ColdrecError
from coldrec.runtime.recommender import Signals

SPLITS = ("time", "users", "warm")
QUERY = "query"
QUERY_WORDS = 3
_STOP = {"the", "and", "for", "with", "of", "set", "in", "a", "an", "to", "on", "by", "from"}


@dataclass
class Case:
    user_id: str
    signals: Signals
    targets: list[str]
    exclude: list[str] = field(default_factory=list)  # ranked out besides the profile's items


@dataclass
class Split:
    name: str
    train_events: pd.DataFrame
    cases: dict[int | str, list[Case]]  # k -> cases; "query" -> query-only probe
    cold_items: set[str]  # items with no training interaction
    info: dict


def _sequences(events: pd.DataFrame) -> dict[str, tuple[list[str], list[str], str | None, pd.Timestamp]]:
    """user -> (distinct items in order of first interaction, their first event types, first query,
    first event time: when the user arrived, which a live system knows as "now")."""
    ev = events.sort_values("timestamp", kind="stable")
    arrived = ev.groupby("user_id")["timestamp"].min()
    out: dict[str, tuple[list[str], list[str], str | None, pd.Timestamp]] = {}
    with_items = ev[ev["item_id"].notna()].drop_duplicates(["user_id", "item_id"])
    for uid, g in with_items.groupby("user_id", sort=True):
        out[uid] = (g["item_id"].tolist(), g["event_type"].tolist(), None, arrived[uid])
    if "query" not in ev.columns:
        return out
    searches = ev[(ev["event_type"] == "search") & ev["query"].notna()].drop_duplicates("user_id")
    for uid, q in zip(searches["user_id"], searches["query"]):
        items, types, _, _ = out.get(uid, ([], [], None, None))
        out[uid] = (items, types, q, arrived[uid])
    return out


def probe_query(title: str) -> str | None:
    words = [w for w in re.findall(r"[a-z][a-z'-]+", str(title).lower()) if len(w) > 2 and w not in _STOP]
    return " ".join(words[:QUERY_WORDS]) or None


def _reveal_cases(seqs: dict[str, tuple[list[str], list[str], str | None, pd.Timestamp]], ks: list[int],
                  titles: dict[str, str] | None = None,
                  attributes: dict[str, dict[str, Any]] | None = None) -> dict[int | str, list[Case]]:
    cases: dict[int | str, list[Case]] = {k: [] for k in ks}
    if titles is not None:
        cases[QUERY] = []
    attributes = attributes or {}
    for uid, (items, types, query, arrived) in seqs.items():
        attrs = attributes.get(uid, {})
        for k in ks:
            if len(items) <= k:
                continue
            profile = Signals(items=items[:k], event_types=types[:k], query=query if k == 0 else None,
                              attributes=dict(attrs), at=arrived)
            cases[k].append(Case(uid, profile, items[k:]))
        if titles is not None and len(items) >= 2:
            q = probe_query(titles.get(items[0], ""))
            if q:
                cases[QUERY].append(Case(uid, Signals(query=q, attributes=dict(attrs), at=arrived), items[1:],
                                         exclude=[items[0]]))
    return cases


def user_attributes(users: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """user id -> its attributes (missing values left out): what a shopper states or we know at sign-up
    (e.g. the shipping country), so a test profile carries it from the first request."""
    if users is None or users.empty:
        return {}
    cols = [c for c in users.columns if c != "user_id"]
    out: dict[str, dict[str, Any]] = {}
    for row in users.drop_duplicates("user_id").itertuples(index=False):
        rec = dict(zip(users.columns, row))
        out[str(rec["user_id"])] = {c: rec[c] for c in cols if rec[c] is not None and not pd.isna(rec[c])}
    return out


def has_searches(events: pd.DataFrame) -> bool:
    return bool((events["event_type"] == "search").any())


def probe_titles(events: pd.DataFrame, items: pd.DataFrame) -> dict[str, str] | None:
    """item id -> title for the query probe; None where the data has real searches (k = 0 reveals those)."""
    return None if has_searches(events) else dict(zip(items["item_id"], items["title"]))


def _limit(users: list[str], max_users: int | None, seed: int) -> list[str]:
    if max_users and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(np.array(users, dtype=object), size=max_users, replace=False).tolist())
    return users


def time_split(events: pd.DataFrame, cutoff: str | pd.Timestamp, ks: list[int], max_users: int | None = None,
               seed: int = 42, titles: dict[str, str] | None = None, users: pd.DataFrame | None = None) -> Split:
    cutoff = pd.Timestamp(cutoff)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    train = events[events["timestamp"] < cutoff]
    first_seen = events.groupby("user_id")["timestamp"].min()
    test_users = _limit(sorted(first_seen.index[first_seen >= cutoff]), max_users, seed)
    test = events[events["user_id"].isin(test_users)]
    item_first = events.dropna(subset=["item_id"]).groupby("item_id")["timestamp"].min()
    cold = set(item_first.index[item_first >= cutoff])
    return Split("time", train, _reveal_cases(_sequences(test), ks, titles, user_attributes(users)), cold,
                 {"cutoff": cutoff.isoformat(), "train_events": len(train), "test_users": len(test_users)})


def user_split(events: pd.DataFrame, holdout: float, ks: list[int], seed: int = 42, max_users: int | None = None,
               titles: dict[str, str] | None = None, users: pd.DataFrame | None = None) -> Split:
    all_users = np.array(sorted(events["user_id"].unique()), dtype=object)
    rng = np.random.default_rng(seed)
    n_test = int(round(len(all_users) * holdout))
    test_users = sorted(rng.choice(all_users, size=n_test, replace=False).tolist())
    test_set = set(test_users)
    train = events[~events["user_id"].isin(test_set)]
    test_users = _limit(test_users, max_users, seed)
    test = events[events["user_id"].isin(test_users)]
    cold = set(events["item_id"].dropna().unique()) - set(train["item_id"].dropna().unique())
    return Split("users", train, _reveal_cases(_sequences(test), ks, titles, user_attributes(users)), cold,
                 {"holdout": holdout, "train_events": len(train), "test_users": len(test_users)})


def warm_split(events: pd.DataFrame, ks: list[int], seed: int = 42, max_users: int | None = None,
               users: pd.DataFrame | None = None) -> Split:
    seqs = _sequences(events)
    held = {u: s[0][-1] for u, s in seqs.items() if len(s[0]) >= 2}
    test_users = _limit(sorted(held), max_users, seed)
    pairs = pd.MultiIndex.from_arrays([events["user_id"], events["item_id"]])
    train = events[~pairs.isin(list(held.items()))]
    cases: dict[int, list[Case]] = {k: [] for k in ks if k > 0}
    attributes = user_attributes(users)
    for u in test_users:
        items, types, _, _ = seqs[u]
        history = items[:-1]
        for k in cases:
            profile = Signals(items=history[-k:], event_types=types[:-1][-k:], attributes=dict(attributes.get(u, {})))
            cases[k].append(Case(u, profile, [items[-1]], exclude=history))
    cold = set(events["item_id"].dropna().unique()) - set(train["item_id"].dropna().unique())
    return Split("warm", train, cases, cold, {"train_events": len(train), "test_users": len(test_users)})


def make_split(events: pd.DataFrame, split: str, ks: list[int], *, cutoff=None, holdout: float = 0.2, seed: int = 42,
               max_users: int | None = None, dataset: str = "dataset", titles: dict[str, str] | None = None,
               users: pd.DataFrame | None = None) -> Split:
    """``titles`` (item id -> title) turns on the query probe for data without search events;
    ``users`` (user_id + attributes) puts each test user's attributes in its profiles."""
    if titles is not None and has_searches(events):
        titles = None  # real queries exist: k = 0 already reveals them
    if split == "time":
        if cutoff is None:  # a dataset nobody configured: the last 20% of time
            cutoff = events["timestamp"].quantile(0.8)
        s = time_split(events, cutoff, ks, max_users, seed, titles, users)
    elif split == "users":
        s = user_split(events, holdout, ks, seed, max_users, titles, users)
    elif split == "warm":
        s = warm_split(events, ks, seed, max_users, users)
    else:
        raise ColdrecError(f"unknown split {split!r} (choose from: {', '.join(SPLITS)})")
    n = sum(len(c) for c in s.cases.values())
    if n == 0:
        where = f" (cutoff {s.info.get('cutoff')})" if split == "time" else ""
        raise ColdrecError(
            f"{dataset}: the {split} split{where} has zero test users with a target to predict;"
            " pick another cutoff/holdout or check the data"
        )
    if s.train_events.empty:
        raise ColdrecError(f"{dataset}: the {split} split leaves no training events")
    return s
