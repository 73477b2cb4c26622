"""Stage ``train``: fit the product's model on a dataset and write an immutable model version.

By default training uses every event of the dataset; the model still carves its own validation
slice (the last ``model.validation_fraction`` of time) for early stopping and blend tuning.
With ``until`` it uses only events before that time: the retrain pipeline trains its candidate
so, and the promotion gate (:mod:`coldrec.release.promotion_gate`) then judges the very artifact it would promote
on the shoppers who arrived after ``until``, whom neither it nor production has seen.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from coldrec.core import outputs
from coldrec.core.errors import DataError
from coldrec.data.dataset import Dataset
from coldrec.runtime.recommender import TrainData
from training.evaluation.evaluate import seed_everything
from training.model.artifacts import VERSION_FILES, save_model, version_target
from training.model.hybrid import ColdrecModel


def train(ds: Dataset, params: dict[str, Any], out_dir: str | Path | None = None,
          models: str | Path | None = None, inputs: tuple[str | Path | None, ...] = (),
          force: bool = False, until: str | None = None, reuse: bool = False) -> tuple[Path, dict[str, Any]]:
    """Fit on ``ds`` and write the version to ``out_dir``, or to ``models/<version>`` when ``out_dir``
    is None (the version name is a fingerprint of data + params + code). The output location is
    checked before fitting (:mod:`coldrec.core.outputs`): minutes of work are not spent on a refusal."""
    import pandas as pd

    events, fingerprint = ds.events, ds.fingerprint()
    if until is not None:
        cut = pd.Timestamp(until)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
        events = events[events["timestamp"] < cut]
        if events.empty:
            raise DataError(f"train {ds.name}: no event before {cut.isoformat()} (until)")
        until, fingerprint = cut.isoformat(), f"{fingerprint}<{cut.isoformat()}"
    _, target = version_target(out_dir, fingerprint, params, models)
    if reuse and _complete(target):
        # the same data, params and code made this version before: a rerun (a retried task, a
        # second run on unchanged data) takes it as it is instead of fitting it again
        return target, {"seconds": 0.0, "reused": True}
    outputs.check(target, inputs=inputs, force=force, legacy=VERSION_FILES, what="model version")
    seed = int(params["seed"])
    seed_everything(seed)
    t0 = time.perf_counter()
    model = ColdrecModel(params).fit(TrainData.build(events, ds.items, seed=seed, users=ds.users))
    seconds = round(time.perf_counter() - t0, 1)
    end = events["timestamp"].max()
    path = save_model(model, out_dir, fingerprint, params,
                      {"dataset": ds.name, "train_seconds": seconds, "events": int(len(events)),
                       # the gate judges versions only on shoppers who arrived after both were trained
                       "trained_until": until or (end + pd.Timedelta(microseconds=1)).isoformat()},
                      models=models,
                      inputs=inputs, force=force)
    return path, {"seconds": seconds, **model.report}


def _complete(target: Path) -> bool:
    from coldrec.runtime.version import FILES

    return target.is_dir() and all((target / f).exists() for f in FILES) and (target / outputs.MARKER).is_file()
