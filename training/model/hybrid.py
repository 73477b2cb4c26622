"""The product's model, ``coldrec``, at fit time: fine-tune the encoder, fit the collaborative
parts, tune the blend on a validation slice.

:class:`ColdrecModel` *is* the runtime scorer (:class:`coldrec.runtime.scorer.ColdrecRuntime`)
plus :meth:`ColdrecModel.fit`, so evaluation scores a fitted model with exactly the code that
serves a loaded version. What each component means is in the scorer's docstring.

The validation slice is carved from the training data only, the way new users will arrive
(users first seen in the last ``model.validation_fraction`` of time in production); the encoder
is fine-tuned on the slice's earlier part with early stopping on its users, and blend weights
are tuned per signal bucket on them.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coldrec.core.params import typed
from coldrec.core.progress import quiet_library_bars
from coldrec.runtime.blend import QUERY_BUCKET, bucket_of, profile_matrix
from coldrec.runtime.recommender import TrainData
from coldrec.runtime.scorer import ColdrecRuntime
from coldrec.runtime.text import item_texts
from training.encoder import resolve_model_path
from training.evaluation.splits import QUERY
from training.model.collaborative import fit_parts, item_similarity, sequences
from training.model.finetune import FinetuneResult, finetune
from training.model.tuning import NdcgScorer, blend_components, case_targets, coordinate_ascent, mean_ndcg, validation_split

log = logging.getLogger(__name__)


class ColdrecModel(ColdrecRuntime):
    def __init__(self, params: dict[str, Any]):
        p = typed(params)
        super().__init__(p.model, p.encoder.item_template, p.encoder.max_chars)
        self.params = params
        self.seed = p.seed
        self.ft_cfg = p.model.finetune
        self.model_path = resolve_model_path(params)
        self.protocol = "time"  # how new users arrive; fit sets it from the data (see validation_split)

    # ---------------------------------------------------------------- fit
    def fit(self, train: TrainData) -> ColdrecModel:
        from sentence_transformers import SentenceTransformer

        super().fit(train)
        self.texts = item_texts(train.items, self.template, self.max_chars)
        with quiet_library_bars():  # no "Loading weights" redraws in a log file
            self.st = SentenceTransformer(str(self.model_path), device="cpu")  # a private copy: fine-tuned in place
        protocol = train.protocol if self.cfg.validation == "auto" else self.cfg.validation
        self.protocol = protocol
        val = validation_split(train, protocol, self.cfg.validation_fraction, self.cfg.max_validation_users)
        inner = TrainData.build(val.train_events, train.items, seed=train.seed, protocol=protocol, users=train.users)
        n_val = sum(len(c) for c in val.cases.values())
        self.report["validation"] = {"protocol": protocol, **{k: v for k, v in val.info.items() if k != "train_events"},
                                     "cases": n_val}

        def enc_ndcg(vecs: np.ndarray) -> float:
            self.item_vecs = vecs
            vals = []
            for k in (1, 3, 5):
                cases = val.cases.get(k, [])[:300]
                if cases:
                    s = self._enc_scores(inner, [c.signals for c in cases])
                    vals.append(mean_ndcg(s, cases, inner))
            return float(np.mean(vals)) if vals else 0.0

        seqs = sequences(inner)
        if self.cfg.finetune.enabled and seqs and n_val:
            self.st, vecs, res = finetune(self.st, self.texts, seqs, self.ft_cfg, self.seed, validate=enc_ndcg)
        else:
            vecs = self.st.encode(self.texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            res = FinetuneResult(0, 0.0, 0, enc_ndcg(vecs) if n_val else float("nan"), stopped="fine-tuning off")
        self.item_vecs = np.asarray(vecs, dtype=np.float32)
        self.report["finetune"] = res.__dict__
        window, knn_choice = self.cfg.arrival_days[0], None
        if n_val:
            knn_choice = self._pick_knn(inner, val.cases)
            self.parts = fit_parts(inner, self.cfg, knn_choice)
            window = self._pick_arrival_window(inner, val.cases)
            self._tune_weights(inner, val.cases)
            self._validation = (inner, val.cases)  # kept for re-tuning experiments; not saved
        self.parts = fit_parts(train, self.cfg, knn_choice)  # final: on all training data
        self.parts.history.days = window
        return self

    def _pick_knn(self, inner: TrainData, cases_by_k: dict[int | str, list]) -> tuple[float, str]:
        """The co-occurrence similarity (asymmetry alpha x user weighting) whose scores alone rank
        validation users' items best (users shown 1+ items, pooled)."""
        candidates = [(a, u) for u in self.cfg.knn_user_weight for a in self.cfg.knn_alpha]
        cases = [c for k, cs in cases_by_k.items() if k != QUERY and int(k) > 0 for c in cs]
        if len(candidates) == 1 or not cases:
            return candidates[0]
        ndcg = NdcgScorer(*case_targets(inner, cases), inner.n_items)
        q = profile_matrix(inner, [c.signals for c in cases], self.cfg.history, self.cfg.recency_decay)
        scored = {}
        for alpha, uw in candidates:
            sim = item_similarity(inner, self.cfg.knn_shrink, alpha, uw)
            scored[(alpha, uw)] = ndcg(np.asarray((q @ sim).todense(), dtype=np.float32))
        best = max(candidates, key=scored.__getitem__)  # ties: the first listed
        self.report["knn"] = {"alpha": best[0], "user_weight": best[1],
                              "val_ndcg@10": {f"alpha={a:g},{u}": round(v, 4) for (a, u), v in scored.items()}}
        return best

    def _pick_arrival_window(self, inner: TrainData, cases_by_k: dict[int | str, list]) -> float | None:
        """The arrival window whose popularity alone ranks validation users' items best."""
        cases = [c for cs in cases_by_k.values() for c in cs]
        ndcg = NdcgScorer(*case_targets(inner, cases), inner.n_items)
        ats = [c.signals.at for c in cases]
        scored = {days: ndcg(self.parts.history.scores(ats, days))
                  for days in self.cfg.arrival_days}
        best = max(self.cfg.arrival_days, key=scored.__getitem__)  # ties: the first listed
        self.parts.history.days = best
        labels = {d: "all" if d is None else f"{d:g}" for d in scored}
        self.report["arrival_window"] = {"days": best, "val_ndcg@10": {labels[d]: round(v, 4) for d, v in scored.items()}}
        return best

    def _tune_weights(self, inner: TrainData, cases_by_k: dict[int | str, list]) -> None:
        """Coordinate ascent per bucket on validation users; small buckets borrow their neighbour's."""
        tuned: dict[str, Any] = {}
        cases_by_k = dict(cases_by_k)
        with_text = [c for c in cases_by_k.get(0, []) if c.signals.has_text()]
        if with_text:  # real search events: k = 0 users with a query belong to the query bucket
            cases_by_k[0] = [c for c in cases_by_k[0] if not c.signals.has_text()]
            cases_by_k[QUERY] = list(cases_by_k.get(QUERY, [])) + with_text
        for key, own in cases_by_k.items():
            bucket = QUERY_BUCKET if key == QUERY else bucket_of(int(key), False)
            cases = own
            if key != QUERY and int(key) > 0 and self.cfg.bucket_pooling:
                # pool the neighbouring reveal sizes: a few hundred users per bucket is noisy
                near = [k for k in cases_by_k if k != QUERY and int(k) > 0 and abs(int(k) - int(key)) <= self.cfg.bucket_pooling]
                cases = [c for k in sorted(near) for c in cases_by_k[k]]
            if len(cases) < self.cfg.min_bucket_users:
                continue
            comps = self._components(inner, [c.signals for c in cases])
            targets, excluded = case_targets(inner, cases)
            names = blend_components(bucket, self.protocol, attributes=bool(self.parts.attrs))
            best_w, best = self._coordinate_ascent(names, comps, targets, excluded, self.weights.get(bucket, {}))
            self.weights[bucket] = best_w
            tuned[bucket] = {"weights": best_w, "val_ndcg@10": round(best, 4), "users": len(cases)}
        for b in range(1, 6):  # borrow from the nearest tuned bucket below, then above
            if str(b) not in tuned:
                nearest = [str(x) for x in sorted(range(1, 6), key=lambda x: (abs(x - b), x)) if str(x) in tuned]
                if nearest:
                    self.weights[str(b)] = dict(self.weights[nearest[0]])
        self.report["blend"] = tuned

    def _coordinate_ascent(self, names, comps, targets, excluded, start):
        return coordinate_ascent(names, comps, targets, excluded, start, self.cfg.grid)
