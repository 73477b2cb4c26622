"""Splits: no test user leaks into training, reveal/target bookkeeping, clear failures."""
from __future__ import annotations

import pandas as pd
import pytest

from coldrec.core.errors import ColdrecError
from training.evaluation.splits import make_split


def _events(rows):
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["value"] = float("nan")
    df["query"] = None
    return df


EVENTS = _events([
    ("old", "a", "purchase", "2024-01-01"), ("old", "b", "purchase", "2024-01-02"),
    ("both", "a", "purchase", "2024-01-05"), ("both", "c", "purchase", "2024-02-10"),  # starts before cutoff
    ("new", "b", "view", "2024-02-02"), ("new", "b", "purchase", "2024-02-03"),
    ("new", "c", "purchase", "2024-02-04"), ("new", "d", "purchase", "2024-02-05"), ("new", "a", "click", "2024-02-06"),
    ("new2", "d", "purchase", "2024-02-07"),
])


def test_time_split_holds_out_only_users_first_seen_after_cutoff():
    s = make_split(EVENTS, "time", [0, 1, 3], cutoff="2024-02-01")
    assert set(s.train_events["user_id"]) == {"old", "both"}
    assert (s.train_events["timestamp"] < pd.Timestamp("2024-02-01", tz="UTC")).all()
    test_users = {c.user_id for cases in s.cases.values() for c in cases}
    assert test_users == {"new", "new2"}
    assert test_users.isdisjoint(s.train_events["user_id"])
    (k1,) = s.cases[1]  # new2 has one item: nothing left to predict at k=1
    assert (k1.user_id, k1.signals.items, k1.targets) == ("new", ["b"], ["c", "d", "a"])
    (k3,) = s.cases[3]
    assert (k3.signals.items, k3.targets) == (["b", "c", "d"], ["a"])
    assert {c.user_id for c in s.cases[0]} == {"new", "new2"}
    assert all(c.signals.items == [] for c in s.cases[0])
    assert s.cold_items == {"c", "d"}  # first sold on/after the cutoff
    arrived = {c.user_id: c.signals.at for cases in s.cases.values() for c in cases}  # "now", when they came
    assert arrived == {"new": pd.Timestamp("2024-02-02", tz="UTC"), "new2": pd.Timestamp("2024-02-07", tz="UTC")}

def test_user_split_is_seeded_and_disjoint():
    a = make_split(EVENTS, "users", [1], holdout=0.5, seed=3)
    b = make_split(EVENTS, "users", [1], holdout=0.5, seed=3)
    held = {c.user_id for c in a.cases[1]}
    assert held == {c.user_id for c in b.cases[1]}
    assert held.isdisjoint(a.train_events["user_id"])


def test_warm_split_hides_the_last_new_item():
    s = make_split(EVENTS, "warm", [1, 3])
    case = next(c for c in s.cases[3] if c.user_id == "new")
    assert case.targets == ["a"] and case.signals.items == ["b", "c", "d"] and case.exclude == ["b", "c", "d"]
    train = s.train_events
    assert train[(train["user_id"] == "new") & (train["item_id"] == "a")].empty
    assert not train[(train["user_id"] == "old") & (train["item_id"] == "a")].empty


def test_zero_test_users_fails_clearly():
    with pytest.raises(ColdrecError, match=r"time split \(cutoff 2030-01-01.*zero test users"):
        make_split(EVENTS, "time", [1], cutoff="2030-01-01", dataset="toy")
    with pytest.raises(ColdrecError, match="unknown split 'random'"):
        make_split(EVENTS, "random", [1])


def test_search_query_is_revealed_at_k0():
    ev = pd.concat([EVENTS, _events([("new", None, "search", "2024-02-01 12:00")]).assign(query="blue mug")])
    s = make_split(ev, "time", [0, 1], cutoff="2024-02-01")
    case = next(c for c in s.cases[0] if c.user_id == "new")
    assert case.signals.query == "blue mug" and case.signals.items == []
    assert next(c for c in s.cases[1] if c.user_id == "new").signals.query is None


@pytest.mark.parametrize("split", ["time", "users", "warm"])
def test_profiles_carry_the_test_users_attributes(split):
    users = pd.DataFrame({"user_id": sorted(EVENTS["user_id"].unique())})
    users["country"] = [f"c{i}" for i in range(len(users))]
    users.loc[users["user_id"] == "new", "country"] = None  # a missing value is left out, not passed as None
    s = make_split(EVENTS, split, [1], cutoff="2024-02-01", holdout=0.5, users=users)
    by_user = dict(zip(users["user_id"], users["country"]))
    cases = [c for cs in s.cases.values() for c in cs]
    assert cases
    for c in cases:
        expected = {} if by_user[c.user_id] is None else {"country": by_user[c.user_id]}
        assert c.signals.attributes == expected
