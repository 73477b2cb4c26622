"""Rows that fail a row-level *warning*, set aside with their reasons (``quarantine/<table>.csv``).

Why: a warning does not stop the batch, and validation never edits the data, so those rows stay
in it. Writing them aside (as delivered, with their row number and the names of the
expectations they fail) makes sure nobody drops or keeps them without seeing them.
"""
from __future__ import annotations

import pandas as pd

from coldrec.quality.lenient import RawTable
from coldrec.quality.results import Outcome


def quarantine(outcomes: list[Outcome], raws: dict[str, RawTable]) -> dict[str, pd.DataFrame]:
    """Table -> its quarantined rows (``_row``, ``_reasons``, then the delivered columns).

    Sets ``Outcome.quarantined`` (rows it sent) on each failed row-level warning."""
    out: dict[str, pd.DataFrame] = {}
    for table, raw in raws.items():
        reasons: dict[int, list[str]] = {}
        for o in outcomes:
            if o.table == table and o.severity == "warning" and o.status == "failed" and o.rows:
                o.quarantined = len(o.rows)
                for i in o.rows:
                    reasons.setdefault(i, []).append(o.name)
        if reasons and raw.frame is not None:
            idx = sorted(reasons)
            rows = raw.frame.loc[idx].copy()
            rows.insert(0, "_reasons", ["; ".join(reasons[i]) for i in idx])
            rows.insert(0, "_row", [i + 1 for i in idx])
            out[table] = rows
    return out
