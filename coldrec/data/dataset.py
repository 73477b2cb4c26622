"""A canonical dataset in memory and on disk (``<dir>/{events,items,users}.parquet`` + manifest).

Writes are atomic: everything goes to a temporary sibling directory that is renamed into place
only when complete, so a failed run never leaves a half-written dataset behind.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.core.errors import DataError
from coldrec.core.outputs import owned_dir
from coldrec.data.contract import canonical_events, canonical_items, canonical_users, read_table

TABLES = ("events", "items", "users")


@dataclass
class Dataset:
    name: str
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    report: dict[str, Any] = field(default_factory=dict)  # cleaning rules and what each removed
    # where the tables came from: {"dataset": name} (a shipped dataset) or {"files": [...]} (the user's)
    source: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ev = self.events
        return {
            "dataset": self.name,
            "users": int(ev["user_id"].nunique()),
            "items_in_catalogue": int(len(self.items)),
            "items_with_events": int(ev["item_id"].nunique()),
            "events": int(len(ev)),
            "event_types": {k: int(v) for k, v in ev["event_type"].value_counts().sort_index().items()},
            "first_event": ev["timestamp"].min().isoformat(),
            "last_event": ev["timestamp"].max().isoformat(),
            "user_attributes": [] if self.users is None else [c for c in self.users.columns if c != "user_id"],
        }

    def fingerprint(self) -> str:
        """Content hash of the three tables: names a model version's data, stable across runs."""
        h = hashlib.sha256()
        for table in (self.events, self.items, self.users):
            if table is not None:
                h.update(pd.util.hash_pandas_object(table.astype(str), index=False).values.tobytes())
        return h.hexdigest()[:16]


PREPARED_FILES = ("events.parquet", "items.parquet", "users.parquet", "manifest.json")


def save(ds: Dataset, out_dir: str | Path, inputs: Iterable[str | Path | None] = (), force: bool = False) -> Path:
    """Write the tables under coldrec's output rule (:mod:`coldrec.core.outputs`): never over a user's
    files or the inputs, atomically."""
    out_dir = Path(out_dir)
    with owned_dir(out_dir, stage="prepare", inputs=inputs, force=force, legacy=PREPARED_FILES) as tmp:
        ds.events.to_parquet(tmp / "events.parquet", index=False)
        ds.items.to_parquet(tmp / "items.parquet", index=False)
        if ds.users is not None:
            ds.users.to_parquet(tmp / "users.parquet", index=False)
        manifest = {"summary": ds.summary(), "fingerprint": ds.fingerprint(), "cleaning": ds.report,
                    "source": ds.source}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return out_dir


def from_files(events: str | Path, items: str | Path, users: str | Path | None = None, name: str | None = None) -> Dataset:
    """Bring-your-own-data: read CSV/Parquet files in the canonical schema and enforce it."""
    ev = canonical_events(read_table(events))
    it = canonical_items(read_table(items))
    us = canonical_users(read_table(users)) if users else None
    files = {"events": Path(events).name, "items": Path(items).name, **({"users": Path(users).name} if users else {})}
    return Dataset(name=name or Path(events).parent.name or "custom", events=ev, items=it, users=us,
                   source={"files": files})


def load_prepared(directory: str | Path, name: str | None = None) -> Dataset:
    """Load a dataset written by :func:`save` (re-checked against the contract: files may be edited)."""
    d = Path(directory)
    if not (d / "events.parquet").exists() or not (d / "items.parquet").exists():
        raise DataError(f"{d}: no prepared dataset here (expected events.parquet and items.parquet)")
    users = d / "users.parquet"
    ds = from_files(d / "events.parquet", d / "items.parquet", users if users.exists() else None, name=name or d.name)
    manifest = d / "manifest.json"
    if manifest.exists():
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        ds.report, ds.source = doc.get("cleaning", {}), doc.get("source", {})
    return ds
