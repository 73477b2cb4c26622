"""MovieLens ml-latest-small -> canonical tables.

Rules: every rating becomes a ``rate`` event with the rating (0.5-5) as ``value`` and the Unix
timestamp as UTC time. Items are all films in ``movies.csv``: ``title`` without the year,
``year`` (extra column), ``category`` = the genres (``|`` -> ``, ``; "(no genres listed)" ->
empty), ``tags`` = the film's most frequent user tags (lower-cased, up to
``movielens.max_tags_per_item``), ``description`` = one sentence joining genres and tags so the
encoder sees them. There is no brand or price. There is no users table (ids only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.data.dataset import Dataset
from coldrec.data.contract import canonical_events, canonical_items, read_table

TITLE_YEAR = r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$"


def build(raw_dir: Path, params: dict[str, Any] | None = None) -> Dataset:
    params = params or {}
    max_tags = int(params.get("max_tags_per_item", 10))
    raw_dir = Path(raw_dir)
    ratings = read_table(raw_dir / "ratings.csv")
    movies = read_table(raw_dir / "movies.csv")
    tags = read_table(raw_dir / "tags.csv")

    events = pd.DataFrame(
        {
            "user_id": ratings["userId"],
            "item_id": ratings["movieId"],
            "event_type": "rate",
            "timestamp": ratings["timestamp"],
            "value": ratings["rating"],
        }
    )
    events.attrs.update(ratings.attrs)
    events = canonical_events(events)

    parts = movies["title"].str.strip().str.extract(TITLE_YEAR)
    title = parts["title"].fillna(movies["title"].str.strip())
    genres = movies["genres"].where(movies["genres"] != "(no genres listed)").str.replace("|", ", ", regex=False)
    tag_text = (
        tags.assign(tag=tags["tag"].str.strip().str.lower())
        .dropna(subset=["tag"])
        .groupby(["movieId", "tag"]).size().rename("n").reset_index()
        .sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
        .groupby("movieId")["tag"].apply(lambda s: ", ".join(s.head(max_tags)))
    )
    tag_col = movies["movieId"].map(tag_text)
    desc = ("Genres: " + genres.fillna("unknown") + ".") + tag_col.map(lambda t: f" Tags: {t}." if isinstance(t, str) else "")
    items = pd.DataFrame(
        {"item_id": movies["movieId"], "title": title, "description": desc, "category": genres,
         "year": parts["year"], "tags": tag_col}
    )
    items.attrs.update(movies.attrs)
    items = canonical_items(items)
    report = {"rules": [
        {"rule": "ratings", "rows": int(len(ratings))},
        {"rule": "events", "rows": int(len(events)), "why": "every rating kept as a rate event"},
        {"rule": "films", "rows": int(len(items)), "why": "all films in movies.csv, rated or not"},
        {"rule": "tags", "rows": int(len(tags)), "why": f"folded into item text (top {max_tags} per film)"},
    ]}
    return Dataset(name="movielens-small", events=events, items=items, users=None, report=report)
