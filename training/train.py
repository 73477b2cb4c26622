"""Stage ``train``: fit the product's model on a dataset and write an immutable model version.

Production training uses every event of the dataset; the model still carves its own validation
slice (the last ``model.validation_fraction`` of time) for early stopping and blend tuning.
Quality on held-out cold-start users is the job of ``evaluate``, which fits the same class on a
split's training part.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from coldrec import outputs
from coldrec.dataset import Dataset
from coldrec.recommender import TrainData
from training.evaluation.evaluate import seed_everything
from training.model.artifacts import VERSION_FILES, save_model, version_target
from training.model.hybrid import ColdrecModel


def train(ds: Dataset, params: dict[str, Any], out_dir: str | Path | None = None,
          models: str | Path | None = None, inputs: tuple[str | Path | None, ...] = (),
          force: bool = False) -> tuple[Path, dict[str, Any]]:
    """Fit on ``ds`` and write the version to ``out_dir``, or to ``models/<version>`` when ``out_dir``
    is None (the version name is a fingerprint of data + params + code). The output location is
    checked before fitting (:mod:`coldrec.outputs`): minutes of work are not spent on a refusal."""
    _, target = version_target(out_dir, ds.fingerprint(), params, models)
    outputs.check(target, inputs=inputs, force=force, legacy=VERSION_FILES, what="model version")
    seed = int(params["seed"])
    seed_everything(seed)
    t0 = time.perf_counter()
    model = ColdrecModel(params).fit(TrainData.build(ds.events, ds.items, seed=seed, users=ds.users))
    seconds = round(time.perf_counter() - t0, 1)
    path = save_model(model, out_dir, ds.fingerprint(), params,
                      {"dataset": ds.name, "train_seconds": seconds, "events": int(len(ds.events))}, models=models,
                      inputs=inputs, force=force)
    return path, {"seconds": seconds, **model.report}
