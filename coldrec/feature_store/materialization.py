"""Materialisation: loading the feature tables' latest rows into the online store.

Its own module because it is the one scheduled batch step between building the tables
(``coldrec.feature_store.compute``) and serving them online, with a start-date rule of its own
(see :func:`materialize`).
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from typing import TYPE_CHECKING

from coldrec.feature_store.errors import store_errors

if TYPE_CHECKING:  # feast takes ~10 s to import: callers pass an opened store
    from feast import FeatureStore


@store_errors
def materialize(store: FeatureStore, end: datetime | None = None, views: Sequence[str] | None = None) -> dict[str, str]:
    """Load the latest feature rows up to ``end`` (default now) into the online store.

    Views materialised before go through ``materialize_incremental`` (from their last end time);
    a view never materialised is loaded from the beginning of its data (Feast's incremental
    start would otherwise be now - ttl, which skips historical datasets). Returns what ran.
    """
    end = end or datetime.now(UTC)
    fvs = [fv for fv in store.list_feature_views() if views is None or fv.name in views]
    fresh = [fv.name for fv in fvs if fv.most_recent_end_time is None]
    known = [fv.name for fv in fvs if fv.most_recent_end_time is not None]
    out = StringIO()
    with redirect_stdout(out):
        if fresh:
            store.materialize(start_date=datetime(1970, 1, 1, tzinfo=UTC), end_date=end, feature_views=fresh)
        if known:
            store.materialize_incremental(end_date=end, feature_views=known)
    return {**{n: "full" for n in fresh}, **{n: "incremental" for n in known}}
