"""The shipped datasets: where their raw files come from and how to check them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawDatasetSpec:
    name: str  # the name users type: --dataset NAME
    dirname: str  # folder under a raw-data directory (e.g. ../shared/datasets/<dirname>)
    files: dict[str, str | None]  # file name -> sha256 (None: publisher gives none, checked by content)
    url: str  # the publisher's download
    licence: str
    archive_members: dict[str, str] = field(default_factory=dict)  # file name -> path inside the archive


ONLINE_RETAIL = RawDatasetSpec(
    name="online-retail",
    dirname="online-retail",
    files={"online_retail.csv.xz": "2c120f1baead5e0f3017592eeac11d9befabccfd6da375b30daa126c2d99341e"},
    url="https://archive.ics.uci.edu/static/public/352/online+retail.zip",
    licence="CC BY 4.0 - Chen, Sain & Guo (2012), UCI ML Repository, DOI 10.24432/C5BW33",
    archive_members={"online_retail.csv.xz": "Online Retail.xlsx"},
)

MOVIELENS_SMALL = RawDatasetSpec(
    name="movielens-small",
    dirname="movielens-latest-small",
    files={
        "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
        "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
        "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
    },
    url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
    licence="GroupLens research licence (non-commercial) - Harper & Konstan (2015)",
    archive_members={
        "ratings.csv": "ml-latest-small/ratings.csv",
        "movies.csv": "ml-latest-small/movies.csv",
        "tags.csv": "ml-latest-small/tags.csv",
    },
)

DATASETS: dict[str, RawDatasetSpec] = {s.name: s for s in (ONLINE_RETAIL, MOVIELENS_SMALL)}
