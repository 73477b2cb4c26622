"""``params.yaml``, typed: one frozen dataclass per section, every key required, unknown keys rejected.

Why this module exists: ``params.yaml`` is the single source of hyperparameters for the CLI, the
Airflow DAGs and the DVC stages. A second set of defaults in code drifts from it (the fine-tuning
dataclass once said 600 steps while the file said 200) and a silently dropped typo
(``model.knn_shrnk``) trains a model nobody asked for. So the dataclasses below carry **no
defaults**: a key missing from the file is an error naming it, and so is a key the code does not
know, in every section.

:func:`load_params` (in :mod:`coldrec.core.config`) validates the whole file once per change of the
file and returns it as a plain dict (what DVC, model metadata and version fingerprints record);
:func:`typed` gives the typed view of a params dict. Experiments and tests start from the file
and override a few keys with :func:`with_overrides`, so they never invent a default either.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from coldrec.core.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_D = TypeVar("_D", bound="DataclassInstance")


# ------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class OnlineRetailParams:
    keep_guests: bool


@dataclass(frozen=True)
class MovielensParams:
    max_tags_per_item: int


@dataclass(frozen=True)
class DataParams:
    default_dataset: str
    online_retail: OnlineRetailParams
    movielens: MovielensParams


@dataclass(frozen=True)
class EncoderParams:
    model_path: str | None
    item_template: str
    max_chars: int
    batch_size: int


@dataclass(frozen=True)
class EvaluationParams:
    split: str
    ks: tuple[int, ...]
    time_cutoff: dict[str, str]
    user_holdout: float
    max_test_users: int | None
    bootstrap: int
    methods: tuple[str, ...]
    query_probe: bool


@dataclass(frozen=True)
class SegmentPopularityParams:
    prior_users: float


@dataclass(frozen=True)
class ItemKnnParams:
    shrink: float


@dataclass(frozen=True)
class ImplicitAlsParams:
    factors: int
    regularization: float
    alpha: float
    iterations: int


@dataclass(frozen=True)
class ImplicitBprParams:
    factors: int
    learning_rate: float
    regularization: float
    iterations: int
    threads: int


@dataclass(frozen=True)
class LightfmParams:
    no_components: int
    loss: str
    epochs: int
    learning_rate: float
    item_alpha: float
    threads: int


@dataclass(frozen=True)
class MethodsParams:
    segment_popularity: SegmentPopularityParams
    item_knn: ItemKnnParams
    implicit_als: ImplicitAlsParams
    implicit_bpr: ImplicitBprParams
    lightfm: LightfmParams


@dataclass(frozen=True)
class FinetuneParams:
    enabled: bool  # false: the pretrained encoder as it is ("zero-shot" in research notes)
    layers_trained: int
    head: bool
    head_lr: float
    max_len: int
    batch_size: int
    lr: float
    weight_decay: float
    tau: float
    max_steps: int
    max_minutes: float
    eval_every: int
    patience: int
    history: int
    recency_decay: float
    target_window: int


@dataclass(frozen=True)
class ModelParams:
    validation: str
    validation_fraction: float
    max_validation_users: int | None
    recent_days: int
    knn_shrink: float
    knn_alpha: tuple[float, ...]
    knn_user_weight: tuple[str, ...]
    recency_decay: float
    history: int
    grid: tuple[float, ...]
    min_bucket_users: int
    bucket_pooling: int
    diversity_max_cosine: float
    query_seeds: int
    query_seed_tau: float
    arrival_days: tuple[float | None, ...]
    attribute_prior_users: float
    attribute_max_values: int
    finetune: FinetuneParams


@dataclass(frozen=True)
class ValueRangeParams:
    min: float | None
    max: float | None
    strict_min: bool


@dataclass(frozen=True)
class QualityEventsParams:
    clock_skew_minutes: float
    window_start: str | None
    max_age_days: float | None
    freshness_days: float | None
    max_missing_item_share: float
    max_duplicate_rate: float
    max_duplicate_rate_critical: float
    min_distinct_users: int
    value_ranges: dict[str, ValueRangeParams]


@dataclass(frozen=True)
class QualityItemsParams:
    price_min: float | None


@dataclass(frozen=True)
class QualityParams:
    run_date: str | None
    out_dir: str
    sample_rows: int
    quarantine: bool
    max_row_change: float | None
    severity: dict[str, str]
    events: QualityEventsParams
    items: QualityItemsParams


@dataclass(frozen=True)
class FeaturesParams:
    recent_items: int
    top_categories: int
    price_bands: int
    online_store: str
    redis: str


@dataclass(frozen=True)
class QuantizeParams:
    enabled: bool
    mode: str
    per_channel: bool
    reduce_range: bool
    fuse: bool
    exclude_nodes: tuple[str, ...]
    calibration_size: int
    fidelity_max_texts: int | None
    min_mean_cosine: float
    intra_op_threads: int | None
    spinning: bool
    opset: int


@dataclass(frozen=True)
class ServingParams:
    ann_candidates: int
    neighbour_candidates: int
    prior_candidates: int
    index_type: str
    hnsw_m: int
    hnsw_ef_construction: int
    threads: int
    max_body_bytes: int
    reload_seconds: float
    lite_process: bool
    batch_searches: bool
    batch_gather_ms: float
    access_log: bool
    onnx_threads: int


@dataclass(frozen=True)
class RegistryParams:
    gate_k: int
    tolerance: float
    gate_max_users: int | None
    require_fidelity: bool
    gate_baselines: tuple[str, ...]


@dataclass(frozen=True)
class PipelineParams:
    schedule: str | None
    retries: int
    retry_delay_minutes: float
    max_retry_delay_minutes: float
    task_timeout_minutes: float
    run_timeout_minutes: float
    bundle: bool


@dataclass(frozen=True)
class Params:
    seed: int
    data: DataParams
    encoder: EncoderParams
    evaluation: EvaluationParams
    methods: MethodsParams
    model: ModelParams
    quality: QualityParams
    features: FeaturesParams
    quantize: QuantizeParams
    serving: ServingParams
    registry: RegistryParams
    pipeline: PipelineParams


# The methods the evaluation can run (training/methods/ builds them; a test keeps both lists equal).
# Here because the CLI lists them in --help and params.yaml's evaluation.methods is checked against
# them, neither of which should import a method (that would pull in torch).
METHOD_NAMES = ("popularity", "segment_popularity", "item_knn", "zero_shot", "implicit_als", "implicit_bpr", "lightfm",
                "coldrec", "coldrec_fp32", "coldrec_served")

# Values a key may take, where the type alone does not say (checked after conversion).
CHOICES: dict[str, tuple[Any, ...]] = {
    "evaluation.split": ("time", "users", "warm"),
    "model.validation": ("auto", "time", "users", "warm"),
    "features.online_store": ("sqlite", "redis"),
    "quantize.mode": ("dynamic", "static"),
    "serving.index_type": ("HNSW", "FLAT"),
}


# ------------------------------------------------------------------------------------ conversion
def _fail(where: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"params: {where}: expected {expected}, got {value!r}")


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        first: ConfigError | None = None
        for option in options:
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                first = first or exc
        raise first or _fail(where, "a value", value)
    if dataclasses.is_dataclass(tp):
        return _build(cast("type[DataclassInstance]", tp), value, where)  # a type hint: the class, never an instance
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(where, "a list", value)
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, "a mapping", value)
        return {_convert(k, args[0], where): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, "text", value)
        return value
    raise TypeError(f"params schema: unsupported type {tp!r} at {where}")  # a bug in this module


def _build(cls: type[_D], value: Any, where: str) -> _D:
    if not isinstance(value, dict):
        raise _fail(where or "params.yaml", "a mapping", value)
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise ConfigError(f"params: unknown key(s) {', '.join(prefix + str(k) for k in unknown)} "
                          f"(known under {where or 'the top level'}: {', '.join(fields)})")
    missing = [k for k in fields if k not in value]
    if missing:
        raise ConfigError(f"params: missing key(s) {', '.join(prefix + k for k in missing)} "
                          "(params.yaml must give every key: the code has no defaults)")
    out = {k: _convert(value[k], hints[k], prefix + k) for k in fields}
    for section, key in (("evaluation", "methods"), ("registry", "gate_baselines")):
        unknown_methods = [m for m in out.get(key, ()) if m not in METHOD_NAMES] if where == section else []
        if unknown_methods:
            raise ConfigError(f"params: {section}.{key}: unknown {', '.join(unknown_methods)} "
                              f"(available: {', '.join(METHOD_NAMES)})")
    for key, allowed in CHOICES.items():
        section, _, name = key.rpartition(".")
        if section == where and out.get(name) not in allowed:
            raise ConfigError(f"params: {key}: {out.get(name)!r} is not one of {', '.join(map(str, allowed))}")
    return cls(**out)


def typed(params: dict[str, Any]) -> Params:
    """The typed view of a whole params dict (validated: unknown or missing keys are errors)."""
    if isinstance(params, Params):
        return params
    return _build(Params, params, "")


def with_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``params`` with ``overrides`` deep-merged in (mappings merge, anything else replaces); the
    result is validated, so an override can only set keys that exist."""
    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                out[k] = merge(base.get(k), v) if k in base else copy.deepcopy(v)
            return out
        return copy.deepcopy(over)

    merged: dict[str, Any] = merge(params, overrides)  # two mappings merge into a mapping
    typed(merged)
    return merged


def section_dict(params: dict[str, Any], dotted: str) -> dict[str, Any]:
    """A validated section as a plain dict (e.g. a baseline's keyword arguments)."""
    node: Any = typed(params)
    for part in dotted.split("."):
        node = getattr(node, part)
    return dataclasses.asdict(node)
