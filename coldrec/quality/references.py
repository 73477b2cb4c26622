"""Helper columns for referential integrity: is an event's item in the catalogue, its user known?

Why: GX 1.x expectations look at one table at a time. Validation therefore left-joins the ids the
other tables hold onto the events frame (null = not found) and the suites check those columns.
:data:`JOINED` also says why such a column can be absent, so the runner can report an
expectation on it as skipped with a reason rather than as a missing column.
"""
from __future__ import annotations

import pandas as pd

# Left-join columns added to the events frame (null = not found), and why they can be absent.
JOINED = {
    "catalogue_item_id": "no readable catalogue (items table) to check against",
    "known_user_id": "no users table",
}


def join_references(frames: dict[str, pd.DataFrame | None]) -> None:
    """events.catalogue_item_id / known_user_id: the id where the items / users table has it."""
    ev = frames.get("events")
    if ev is None:
        return
    for column, (table, key) in {"catalogue_item_id": ("items", "item_id"), "known_user_id": ("users", "user_id")}.items():
        ref = frames.get(table)
        if ref is not None and key in ref.columns and key in ev.columns:
            ev[column] = ev[key].where(ev[key].isin(ref[key].dropna()), None)
