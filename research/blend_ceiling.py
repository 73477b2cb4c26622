"""How far can a linear blend of collaborative components go? (evidence for issue 4's notes)

    python -m research.blend_ceiling --dataset online-retail --split time \
        --blend knn,session,pop,recent60,enc [--blend knn,ease500 ...] [--oracle]

Each ``--blend`` is tuned per k by coordinate ascent on a validation slice carved from the training
part the way the split carves test users (time: newest users; users: a random share), then scored on
the split's test users: NDCG@10 at k = 1, 3, 5. ``--oracle`` also tunes on the *test* users
themselves: not a result, an upper bound on what re-weighting these components could ever reach.

Components: ``knn`` (shrunk cosine co-occurrence, the item_knn baseline), ``session`` (same, over
same-day baskets), ``srN`` / ``srNs`` (sequential rules: items following within N positions,
``s`` = both directions), ``easeL`` (EASE, ridge L), ``rp3B`` (RP3beta, beta B), ``pop``,
``recentD`` (popularity over the last D days), ``momentumD`` (log popularity over the last D days
minus the D before: rising items), ``arrivalD`` (popularity in the D days before each user arrived;
``arrival`` = all before: the model's ``arrival`` component), ``priceW`` (closeness in log price to
the profile's items, Gaussian width W), ``enc`` (zero-shot MiniLM profile cosine), ``i2vW``
(item2vec: skip-gram with negative sampling over same-day baskets, pairs up to W positions apart;
the profile's mean input vector against every item's output vector).
Profiles weight the user's items by recency (``--decay``, default 0.7, newest = 1), as the model does.
Findings so far: ``research/README.md``.
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from coldrec.core.config import load_params, settings
from coldrec.core.params import typed
from coldrec.data.dataset import load_prepared
from coldrec.runtime.blend import profile_matrix, standardise
from coldrec.runtime.parts import ArrivalHistory
from coldrec.runtime.recommender import TrainData
from coldrec.runtime.text import item_texts
from training.encoder import encode, resolve_model_path
from training.evaluation.evaluate import split_for
from training.methods.baselines import ItemKNN
from training.model.collaborative import recent_popularity, sequences, sessions
from training.model.tuning import NdcgScorer, case_targets, coordinate_ascent, validation_split

GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def ease(data: TrainData, lam: float) -> np.ndarray:
    g = (data.matrix.T @ data.matrix).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0)
    return b.astype(np.float32)


def rp3(data: TrainData, beta: float) -> np.ndarray:
    x = data.matrix.astype(np.float32)
    du, di = np.asarray(x.sum(1)).ravel(), np.asarray(x.sum(0)).ravel()
    w = ((sp.diags(1 / np.maximum(di, 1)) @ x.T) @ (sp.diags(1 / np.maximum(du, 1)) @ x)).toarray()
    w /= np.maximum(di, 1)[None, :] ** beta
    np.fill_diagonal(w, 0)
    return w


def ordered_pairs(seqs, window: int | None):
    """Per sequence and distance d <= ``window`` (None: any): the items and the items d positions later."""
    for s in seqs:
        for d in range(1, min(window or len(s), len(s) - 1) + 1):
            yield s[:-d], s[d:], d


def sequential_rules(data: TrainData, window: int, both: bool) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for earlier, later, d in ordered_pairs(sequences(data), window):
        rows.append(earlier), cols.append(later), vals.append(np.full(len(earlier), 1.0 / d, np.float32))
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(data.n_items,) * 2)
    m = m + m.T if both else m
    return (sp.diags(1 / np.maximum(np.asarray(m.sum(1)).ravel(), 1e-9)) @ m).tocsr()


class Item2Vec:
    """Skip-gram with negative sampling (unigram^0.75) over baskets: learned dense co-occurrence."""

    def __init__(self, data: TrainData, window: int, dim: int = 64, epochs: int = 5, negatives: int = 5,
                 lr: float = 0.01, batch: int = 4096, seed: int = 42):
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        seqs = [q for q in sequences(sessions(data)) if len(q) >= 2]
        a, b = [], []
        for earlier, later, _ in ordered_pairs(seqs, window):
            a += [earlier, later]
            b += [later, earlier]
        src, dst = torch.tensor(np.concatenate(a)), torch.tensor(np.concatenate(b))
        freq = np.bincount(src.numpy(), minlength=data.n_items).astype(np.float64) ** 0.75
        noise = torch.tensor(freq / freq.sum(), dtype=torch.float)
        w_in, w_out = torch.nn.Embedding(data.n_items, dim), torch.nn.Embedding(data.n_items, dim)
        torch.nn.init.normal_(w_in.weight, 0, 0.1)
        torch.nn.init.zeros_(w_out.weight)
        opt = torch.optim.Adam([w_in.weight, w_out.weight], lr=lr)
        logsig = torch.nn.functional.logsigmoid
        for _ in range(epochs):
            for idx in torch.tensor(rng.permutation(len(src))).split(batch):
                u, neg = w_in(src[idx]), torch.multinomial(noise, len(idx) * negatives, replacement=True)
                pos = (u * w_out(dst[idx])).sum(-1)
                negs = torch.bmm(w_out(neg.view(len(idx), negatives)), u.unsqueeze(-1)).squeeze(-1)
                loss = -(logsig(pos).mean() + logsig(-negs).sum(-1).mean())
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.w_in, self.w_out = w_in.weight.detach().numpy(), w_out.weight.detach().numpy()

    def scores(self, q) -> np.ndarray:
        return np.asarray(q @ self.w_in) @ self.w_out.T


def build(data: TrainData, name: str):
    if name == "knn":
        return ItemKNN(shrink=10).fit(data).sim
    if name == "session":
        return ItemKNN(shrink=10).fit(sessions(data)).sim
    if name.startswith("sr"):
        return sequential_rules(data, int(name[2:].rstrip("s")), name.endswith("s"))
    if name.startswith("ease"):
        return ease(data, float(name[4:]))
    if name.startswith("rp3"):
        return rp3(data, float(name[3:]))
    if name == "pop":
        return np.log1p(data.popularity())
    if name.startswith("recent"):
        return recent_popularity(data, int(name[6:] or 60))
    if name.startswith("momentum"):
        days = int(name[8:] or 30)
        return recent_popularity(data, days) - np.log1p(
            np.expm1(recent_popularity(data, 2 * days)) - np.expm1(recent_popularity(data, days))
        )
    if name.startswith("arrival"):
        return ArrivalHistory.fit(data, float(name[7:]) if name[7:] else None)
    if name.startswith("price"):
        return ("price", float(name[5:] or 1.0))
    if name == "enc":
        return "enc"
    if name.startswith("i2v"):
        return Item2Vec(data, int(name[3:] or 5))
    raise SystemExit(f"unknown component {name!r}")


def component(data: TrainData, cases, obj, vecs: np.ndarray, decay: float = 0.7) -> np.ndarray:
    if isinstance(obj, ArrivalHistory):
        return standardise(obj.scores([c.signals.at for c in cases]))
    if isinstance(obj, tuple):  # price affinity: Gaussian in log price around the profile's weighted mean
        lp = np.log(np.clip(data.items["price"].fillna(data.items["price"].median()).to_numpy(np.float64), 0.01, None))
        q = profile_matrix(data, [c.signals for c in cases], 20, decay)
        w = np.asarray(q.sum(1)).ravel()
        mu = np.asarray(q @ lp).ravel() / np.maximum(w, 1e-9)
        out = np.exp(-0.5 * ((lp[None, :] - mu[:, None]) / obj[1]) ** 2) * (w > 0)[:, None]
        return standardise(out.astype(np.float32))
    if isinstance(obj, str):  # enc
        u = profile_matrix(data, [c.signals for c in cases], 20, decay).toarray() @ vecs
        u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        return standardise(u @ vecs.T)
    if isinstance(obj, Item2Vec):
        return standardise(obj.scores(profile_matrix(data, [c.signals for c in cases], 20, decay)).astype(np.float32))
    if isinstance(obj, np.ndarray) and obj.ndim == 1:
        return standardise(np.tile(obj, (len(cases), 1)))
    s = profile_matrix(data, [c.signals for c in cases], 20, decay) @ obj
    return standardise(np.asarray(s.todense()) if sp.issparse(s) else np.asarray(s))


def ascent(comps: dict[str, np.ndarray], targets, excluded, first: str) -> tuple[dict[str, float], float]:
    """The model's own weight search (coordinate ascent, then pruning), from ``first`` alone."""
    names = list(comps)
    w, best = coordinate_ascent(names, comps, targets, excluded, {first: 1.0}, GRID)
    return {n: v for n, v in w.items() if v}, best


def cases_for(data: TrainData, cases, names, objs, vecs, decay: float = 0.7):
    comps = {n: component(data, cases, objs[n], vecs, decay) for n in names}
    return (comps, *case_targets(data, cases))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--split", default="time", choices=["time", "users"])
    ap.add_argument("--blend", action="append", required=True, help="comma-separated components")
    ap.add_argument("--oracle", action="store_true", help="also tune on test users (an upper bound, not a result)")
    ap.add_argument("--decay", type=float, default=0.7, help="recency decay of the profile's items (1: all alike)")
    a = ap.parse_args()
    params = load_params()
    ds = load_prepared(settings().data_dir / a.dataset)
    split = split_for(ds, params, a.split)
    train = TrainData.build(split.train_events, ds.items, seed=42, protocol=a.split, users=ds.users)
    val = validation_split(train, a.split, 0.2, 400)
    inner = TrainData.build(val.train_events, ds.items, seed=42)
    enc = typed(params).encoder
    vecs = encode(item_texts(ds.items, enc.item_template, enc.max_chars), resolve_model_path(params), progress=False)
    print(f"| blend | val k=1/3/5 | test k=1/3/5 |{' oracle k=1/3/5 |' if a.oracle else ''} weights (validation) |")
    print(f"|---|---|---|{'---|' if a.oracle else ''}---|")
    for blend in a.blend:
        names = blend.split(",")
        o_in, o_tr = {n: build(inner, n) for n in names}, {n: build(train, n) for n in names}
        vals, tests, oracles, weights = [], [], [], []
        for k in (1, 3, 5):
            pooled = [c for kk in (k - 1, k, k + 1) if kk > 0 for c in val.cases.get(kk, [])]
            w, v = ascent(*cases_for(inner, pooled, names, o_in, vecs, a.decay), names[0])
            comps, t, e = cases_for(train, split.cases[k], names, o_tr, vecs, a.decay)
            vals.append(v)
            weights.append(w)
            tests.append(NdcgScorer(t, e, train.n_items)(sum(x * comps[n] for n, x in w.items())))
            if a.oracle:
                oracles.append(ascent(comps, t, e, names[0])[1])
        fmt = lambda xs: " / ".join(f"{x:.4f}" for x in xs)  # noqa: E731
        print(f"| {blend} | {fmt(vals)} | {fmt(tests)} |{f' {fmt(oracles)} |' if a.oracle else ''} {weights} |", flush=True)


if __name__ == "__main__":
    main()
