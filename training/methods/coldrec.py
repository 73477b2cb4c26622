"""The evaluation's rows for the product's own model: ``coldrec`` (int8, as served) and
``coldrec_fp32`` (the same fitted model with the torch encoder), fitted once and shared."""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
import weakref
from typing import Any

from coldrec.recommender import Recommender, TrainData
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
        model = copy.copy(base)
        work = tempfile.mkdtemp(prefix="coldrec-int8-")
        quantize_model(model, work, s)
        weakref.finalize(model.st, shutil.rmtree, work, True)  # the session holds the model in memory
        return model
