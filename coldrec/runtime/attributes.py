"""``attr``: what shoppers who share a new shopper's attributes (country, ...) bought.

A brand-new shopper often has nothing but attributes: the country of the shipping address, a
segment chosen at sign-up. Per categorical attribute value, the score of an item is
``log(1 + N * (n_vi + m * p_i) / (N_v + m))``: the buyers it would have among all ``N`` training
users if they were all like value v, on the same log1p scale as the ``pop`` component. ``N_v``
users carry value v, ``n_vi`` of them bought item i, ``p_i`` is item i's share among all users
and ``m`` (``prior_users``) pulls a value seen on few users towards the overall shares. An item
nobody bought scores 0, as in ``pop``; a log of the bare share would put it at log(1e-9), so far
below everything that no weight on the "new arrival" prior could lift it (it buried every cold
item on online-retail). A profile's score is the mean over its attributes with
a known value; an unknown value or no attributes scores every item alike (no contribution).
Numeric columns are ignored: bin them into categories in the users file to use them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from coldrec.runtime.recommender import Signals, TrainData


class AttributePopularity:
    def __init__(self, names: np.ndarray, values: np.ndarray, scores: np.ndarray, n_items: int):
        self.names, self.values = np.asarray(names, dtype=str), np.asarray(values, dtype=str)
        self.scores = np.asarray(scores, dtype=np.float32).reshape(len(self.names), n_items)
        self.n_items = n_items
        self.row = {(n, v): r for r, (n, v) in enumerate(zip(self.names, self.values))}

    @classmethod
    def empty(cls, n_items: int) -> AttributePopularity:
        return cls(np.zeros(0, str), np.zeros(0, str), np.zeros((0, n_items), np.float32), n_items)

    @classmethod
    def fit(cls, train: TrainData, prior_users: float = 10.0, max_values: int = 1000) -> AttributePopularity:
        users = train.users
        if users is None or users.empty or train.matrix.shape[0] == 0:
            return cls.empty(train.n_items)
        x = train.matrix
        n_users = x.shape[0]
        share = np.asarray(x.sum(axis=0)).ravel() / max(n_users, 1)
        by_user = users.drop_duplicates("user_id").set_index("user_id").reindex(train.user_ids)
        names, values, rows = [], [], []
        for col in categorical_columns(users, max_values):
            col_values = by_user[col]
            for value, idx in col_values.groupby(col_values.astype("string"), sort=True).indices.items():
                n_v = len(idx)
                bought = np.asarray(x[idx].sum(axis=0)).ravel()
                rows.append(np.log1p(n_users * (bought + prior_users * share) / (n_v + prior_users)))
                names.append(col)
                values.append(str(value))
        if not rows:
            return cls.empty(train.n_items)
        return cls(np.array(names), np.array(values), np.stack(rows), train.n_items)

    def __bool__(self) -> bool:
        return len(self.names) > 0

    def known(self, profile: Signals) -> list[tuple[str, str]]:
        """The profile's (attribute, value) pairs this table has seen on training users."""
        return [(str(k), str(v)) for k, v in profile.attributes.items()
                if v is not None and (str(k), str(v)) in self.row]

    def profile_scores(self, profiles: list[Signals]) -> np.ndarray:
        out = np.zeros((len(profiles), self.n_items), np.float32)
        for r, p in enumerate(profiles):
            pairs = self.known(p)
            if pairs:
                out[r] = self.scores[[self.row[kv] for kv in pairs]].mean(axis=0)
        return out


def like_you(pairs: list[tuple[str, str]]) -> str:
    """The reason an attribute-driven pick carries."""
    return "popular with shoppers like you (" + ", ".join(f"{k}: {v}" for k, v in pairs) + ")"


def categorical_columns(users: pd.DataFrame, max_values: int) -> list[str]:
    """Non-numeric attribute columns with 2..max_values distinct values (an id-like column is no segment)."""
    cols = []
    for col in users.columns:
        if col == "user_id" or pd.api.types.is_numeric_dtype(users[col]) and not pd.api.types.is_bool_dtype(users[col]):
            continue
        n = users[col].nunique(dropna=True)
        if 2 <= n <= max_values:
            cols.append(col)
    return cols
