"""Item co-occurrence variants alone, NDCG@10 at k = 1/3/5: the evidence behind issue 4's session-4 notes.

    python -m research.co_occurrence_variants --dataset online-retail --split time --on test

Rows: ItemKNN's asymmetric cosine (alpha) x user weighting (none / log), and directed or
distance-limited co-occurrence along each user's item order (invoice line order in online-retail).
Scores are the component alone over the profile's recency-weighted items, as the model uses it.
``--on val`` scores the model's own validation slice instead of the split's test users.
Findings so far: ``research/README.md``.
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from coldrec.core.config import load_params, settings
from coldrec.data.dataset import load_prepared
from coldrec.runtime.blend import profile_matrix
from coldrec.runtime.recommender import TrainData
from research.blend_ceiling import ordered_pairs
from training.evaluation.evaluate import split_for
from training.methods.baselines import ItemKNN, shrunk
from training.model.collaborative import sequences
from training.model.tuning import NdcgScorer, case_targets, validation_split


def ordered_co_occurrence(seqs: list[np.ndarray], n: int, window: int | None, decay: float, directed: bool):
    """Counts of item j at distance d after item i in a user's order (weight decay^(d-1)); both ways unless directed."""
    rows, cols, vals = [], [], []
    for earlier, later, d in ordered_pairs(seqs, window):
        rows.append(earlier)
        cols.append(later)
        vals.append(np.full(len(earlier), decay ** (d - 1), np.float32))
    co = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return co if directed else (co + co.T).tocsr()


def cosine(co, pop: np.ndarray, shrink: float = 10.0):
    inv = np.divide(1.0, np.sqrt(pop), out=np.zeros_like(pop), where=pop > 0)
    return (sp.diags(inv) @ co.multiply(shrunk(co.tocsr(), shrink)) @ sp.diags(inv)).tocsr()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--split", default="time", choices=["time", "users"])
    ap.add_argument("--on", default="test", choices=["test", "val"])
    a = ap.parse_args()
    params = load_params()
    ds = load_prepared(settings().data_dir / a.dataset)
    split = split_for(ds, params, a.split, 42)
    data = TrainData.build(split.train_events, ds.items, seed=42, protocol=split.name)
    cases_by_k = split.cases
    if a.on == "val":
        val = validation_split(data, split.name, 0.2, None)
        data, cases_by_k = TrainData.build(val.train_events, ds.items, seed=42, protocol=split.name), val.cases
    pop = np.asarray(data.matrix.sum(axis=0)).ravel()
    seqs = sequences(data)

    def row(label: str, sim) -> None:
        cells = []
        for k in (1, 3, 5):
            cases = cases_by_k.get(k, [])
            targets, excluded = case_targets(data, cases)
            q = profile_matrix(data, [c.signals for c in cases], 20, 0.7)
            cells.append(NdcgScorer(targets, excluded, data.n_items)(np.array((q @ sim).todense(), np.float32)))
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in cells) + " |", flush=True)

    print(f"{a.dataset} / {a.split} / {a.on}: NDCG@10 of the co-occurrence component alone\n"
          "| variant | k=1 | k=3 | k=5 |\n|---|---|---|---|")
    for user_weight in ("none", "log"):
        for alpha in (0.5, 0.7, 0.9):
            row(f"ItemKNN alpha={alpha} user_weight={user_weight}", ItemKNN(10.0, alpha, user_weight).fit(data).sim)
    for window, decay in ((None, 1.0), (5, 1.0), (20, 1.0), (50, 1.0), (None, 0.95), (None, 0.9)):
        for directed in (True, False):
            label = f"{'directed' if directed else 'undirected'} window={window or 'all'} decay={decay}"
            row(label, cosine(ordered_co_occurrence(seqs, data.n_items, window, decay, directed), pop))


if __name__ == "__main__":
    main()
