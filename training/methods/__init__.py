"""Every method the evaluation can run, by its stable name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coldrec.core.errors import ConfigError
from coldrec.core.params import METHOD_NAMES, section_dict
from coldrec.runtime.recommender import Recommender

NAMES = METHOD_NAMES  # tests/unit/test_methods.py checks they match the factories below


def _factories() -> dict[str, Callable[[dict[str, Any]], Recommender]]:
    from training.methods.baselines import ItemKNN, Popularity, SegmentPopularity
    from training.methods.coldrec import ColdrecVariant, ServedVariant
    from training.methods.peers import ImplicitALS, ImplicitBPR, LightFMHybrid
    from training.methods.zero_shot import ZeroShotEncoder

    def section(params: dict[str, Any], name: str) -> dict[str, Any]:
        return section_dict(params, f"methods.{name}")  # validated: every key from params.yaml

    return {
        "popularity": lambda p: Popularity(),
        "segment_popularity": lambda p: SegmentPopularity(**section(p, "segment_popularity")),
        "item_knn": lambda p: ItemKNN(**section(p, "item_knn")),
        "zero_shot": lambda p: ZeroShotEncoder(p),
        "implicit_als": lambda p: ImplicitALS(section(p, "implicit_als")),
        "implicit_bpr": lambda p: ImplicitBPR(section(p, "implicit_bpr")),
        "lightfm": lambda p: LightFMHybrid(section(p, "lightfm")),
        "coldrec": lambda p: ColdrecVariant(p, quantized=True),  # as served: int8 encoder (quantize.enabled)
        "coldrec_fp32": lambda p: ColdrecVariant(p, quantized=False),  # the same fitted model, fp32 encoder
        "coldrec_served": lambda p: ServedVariant(p),  # the int8 model ranked as the service ranks (Milvus candidates)
    }


def available() -> list[str]:
    return list(NAMES)


def make(name: str, params: dict[str, Any]) -> Recommender:
    factories = _factories()
    if name not in factories:
        raise ConfigError(f"unknown method {name!r} (available: {', '.join(factories)})")
    return factories[name](params)
