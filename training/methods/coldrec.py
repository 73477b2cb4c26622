"""The evaluation's rows for the product's own model: ``coldrec`` (int8 encoder, whole-catalogue
scoring), ``coldrec_fp32`` (the same fitted model with the torch encoder) and ``coldrec_served``
(the int8 model ranked the way the service ranks: Milvus candidates, blend on candidates only),
fitted once and shared."""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
import weakref
from typing import Any

import numpy as np

from coldrec.core.params import typed
from coldrec.runtime import item_index
from coldrec.runtime.recommender import Recommender, Signals, TrainData
from training.model.hybrid import ColdrecModel
from training.quantize.int8 import quantize_model, quantize_settings

_FITTED: dict[str, Any] = {}  # the last fitted fp32 ColdrecModel, shared by `coldrec` and `coldrec_fp32`


def _fitted_fp32(params: dict[str, Any], train: TrainData):
    key = json.dumps({k: params.get(k) for k in ("seed", "encoder", "model")}, sort_keys=True, default=str)
    if _FITTED.get("train") is train and _FITTED.get("key") == key:
        return _FITTED["model"]
    _FITTED.clear()
    model = ColdrecModel(params).fit(train)
    _FITTED.update(train=train, key=key, model=model)
    return model


class ColdrecVariant(Recommender):
    """The evaluation's ``coldrec`` (as served: int8 encoder when ``quantize.enabled``) and
    ``coldrec_fp32`` (the same fitted model, torch fp32 encoder). The ColdrecModel is fitted once
    per training set and shared; the int8 variant is a shallow copy with the encoder and item
    vectors swapped. ``fit`` returns that model, not this placeholder."""

    name = "coldrec"
    uses_text = True

    def __init__(self, params: dict[str, Any] | None = None, quantized: bool = True):
        self.params = params or {}
        self.quantized = quantized

    def fit(self, train: TrainData):
        base = _fitted_fp32(self.params, train)
        s = quantize_settings(self.params)
        if not (self.quantized and s["enabled"]):
            return base
        int8_key = json.dumps(s, sort_keys=True, default=str)
        if _FITTED.get("int8") is not None and _FITTED.get("int8_key") == int8_key:
            return _FITTED["int8"]
        model = copy.copy(base)
        work = tempfile.mkdtemp(prefix="coldrec-int8-")
        quantize_model(model, work, s)
        weakref.finalize(model.st, shutil.rmtree, work, True)  # the session holds the model in memory
        _FITTED.update(int8=model, int8_key=int8_key)
        return model


def _discard_index(work: str) -> None:
    """Stop the temporary collection's in-process Milvus Lite server, then remove its folder: an
    evaluation in a long-lived process (a notebook, a test session) would otherwise keep one
    server thread per fit until the interpreter exits."""
    import sys

    manager = sys.modules.get("milvus_lite.server_manager")
    if manager is not None:
        manager.server_manager_instance.release_server(f"{work}/milvus.db")
    shutil.rmtree(work, ignore_errors=True)


class ServedVariant(Recommender):
    """``coldrec_served``: the int8 model (shared with ``coldrec``) ranked as served: candidates
    from a Milvus Lite collection of its item vectors (a temporary one per fit), co-occurrence
    neighbours and prior tops, then the blend on the candidates; the rest of the catalogue ranks
    last. Judged on the same yardstick as ``coldrec``, it measures what two-stage ranking costs."""

    name = "coldrec_served"
    uses_text = True

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = params or {}

    def fit(self, train: TrainData) -> Recommender:
        from coldrec.core.config import load_params

        params = self.params or load_params()
        model = ColdrecVariant(params, quantized=True).fit(train)
        work = tempfile.mkdtemp(prefix="coldrec-served-")
        self.ranker = item_index.served_ranker(model, typed(params).serving, item_index.client(f"{work}/milvus.db"),
                                               "coldrec_evaluation")
        weakref.finalize(self, _discard_index, work)
        self.train = model.train
        return self

    def has_signal(self, profile: Signals) -> bool:
        return True  # the model's own no-signal blend, as in `coldrec`

    def score(self, profiles: list[Signals]) -> np.ndarray:
        """The blend on each profile's candidates; every other item -inf (ranked last)."""
        return self.ranker.score(profiles)
