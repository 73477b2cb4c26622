"""The product's model: partial fine-tuning is exact, profiles from every kind of signal,
explanations, cold items, and a saved version that loads back identical."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from coldrec.core.errors import ColdrecError
from coldrec.runtime.recommender import Signals, TrainData
from tests.conftest import make_items, params_with

TINY_OVERRIDES = {"seed": 3, "model": {"validation_fraction": 0.3, "min_bucket_users": 2, "grid": [0.0, 1.0],
                                       "finetune": {"max_steps": 6, "eval_every": 3, "batch_size": 16, "patience": 5}}}
TINY = params_with(TINY_OVERRIDES)
ZERO_SHOT = {"model": {"finetune": {"enabled": False}}}


def _shop_events(n_users=40, seed=1):
    """Two tastes (even / odd items); users arrive over 60 days; i7 is never bought (a cold item)."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(n_users):
        taste = u % 2
        start = t0 + pd.Timedelta(days=int(u * 1.5))
        for j in range(5):
            item = f"i{int(rng.integers(0, 3)) * 2 + taste}"
            rows.append((f"u{u}", item, "purchase", start + pd.Timedelta(hours=j)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])


@pytest.fixture(scope="module")
def fitted():
    from training.model.hybrid import ColdrecModel

    train = TrainData.build(_shop_events(), make_items(8), seed=3)
    return ColdrecModel(TINY).fit(train)


def test_partial_encoder_matches_the_full_model():
    from sentence_transformers import SentenceTransformer

    from training.encoder import resolve_model_path
    from training.model.finetune import PartialEncoder

    st = SentenceTransformer(str(resolve_model_path()), device="cpu")
    texts = ["white hanging heart t-light holder", "red mug", "a much longer title about a garden gnome with a hat"]
    full = st.encode(texts, normalize_embeddings=True)
    enc = PartialEncoder(st, layers_trained=2, max_len=32, device="cpu")
    ids, am = enc.tokenize(texts)
    part = enc.all_vectors(enc.bottom(ids, am, progress=False), am)
    np.testing.assert_allclose(part, full, atol=2e-3)  # the bottom cache is float16
    trainable = {n for n, p in enc.bert.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("encoder.layer.4.", "encoder.layer.5.")) for n in trainable)


def test_fit_reports_finetune_and_blend(fitted):
    ft = fitted.report["finetune"]
    assert ft["steps"] >= 1 and ft["history"][0]["step"] == 0
    assert set(fitted.weights) >= {"0", "1", "5", "query"}
    s = fitted.score([Signals(items=["i0"]), Signals(), Signals(query="garden")])
    assert s.shape == (3, 8) and np.isfinite(s).all()


@pytest.mark.parametrize("kwargs, expect", [
    ({"items": ["i0", "i2"], "event_types": ["view", "purchase"]}, "2 item(s): 1 view, 1 purchase"),
    ({"queries": ["kitchen thing"]}, "search 'kitchen thing'"),
    ({"interests": ["garden"]}, "interests: garden"),
    ({"items": ["i1"], "queries": ["toys"], "interests": ["lighting"], "attributes": {"country": "UK"}}, "interests: lighting"),
])
def test_profile_from_each_source_and_mixed(fitted, kwargs, expect):
    from coldrec.runtime.profile import build_profile

    built = build_profile(fitted, **kwargs)
    assert expect in built.readable["based_on"]
    assert built.vector.shape == (fitted.item_vecs.shape[1],) and np.isclose(np.linalg.norm(built.vector), 1.0)
    recs = fitted.recommend(built.signals, n=3)
    assert len(recs) == 3 and all(r.reason for r in recs)
    assert not set(kwargs.get("items", [])) & {r.item_id for r in recs}


def test_no_signal_falls_back_to_popular_and_diverse(fitted):
    from coldrec.runtime.profile import build_profile

    built = build_profile(fitted)
    assert built.readable["based_on"] == ["nothing yet: popular and diverse picks"]
    assert not built.vector.any()
    recs = fitted.recommend(built.signals, n=4)
    assert len({r.item_id for r in recs}) == 4
    assert recs[0].item_id != "i7"  # never bought: not the first "popular" pick


def test_unknown_item_ids_are_ignored_with_a_warning(fitted, caplog):
    from coldrec.runtime.profile import build_profile

    with caplog.at_level(logging.WARNING):
        built = build_profile(fitted, items=["nope-1", "i2", "nope-2"], event_types=["view"] * 3)
    assert "ignoring 2 unknown item id(s): nope-1, nope-2" in caplog.text
    assert built.signals.items == ["i2"] and built.readable["ignored_items"] == ["nope-1", "nope-2"]
    assert fitted.recommend(built.signals, n=2)
    with caplog.at_level(logging.WARNING):  # a model fit without a users table segments by nothing
        built = build_profile(fitted, items=["i2"], attributes={"country": "UK"})
    assert "ignoring 1 attribute(s) no training shopper had: country=UK" in caplog.text
    assert built.readable["ignored_attributes"] == ["country=UK"]
    assert not any(b.startswith("attributes") for b in built.readable["based_on"])


def test_query_reaches_an_item_nobody_bought(fitted):
    """i7 ("item number 7", lighting) has no interactions at all: only its text can surface it."""
    import copy

    model = copy.copy(fitted)
    model.weights = {**fitted.weights, "query": {"enc": 1.0}}
    recs = model.recommend(Signals(query="item number 7 lighting"), n=2)
    assert recs[0].item_id == "i7" and recs[0].reason == "matches your search 'item number 7 lighting'"
    # whatever the tuned blend, a never-bought item is never explained by co-buys or popularity
    reasons = {r.item_id: r.reason for r in fitted.recommend(Signals(query="item number 7 lighting"), n=8)}
    assert reasons["i7"] in ("matches your search 'item number 7 lighting'", "new arrival")


def test_saved_version_loads_back_identical(fitted, tmp_path):
    from training.model.artifacts import load_model, save_model

    path = save_model(fitted, tmp_path / "v1", "fp-test", TINY)
    loaded = load_model(path)
    p = Signals(items=["i0", "i4"], event_types=["purchase", "view"])
    np.testing.assert_allclose(loaded.score([p]), fitted.score([p]), atol=1e-4)
    assert [r.item_id for r in loaded.recommend(p, 3)] == [r.item_id for r in fitted.recommend(p, 3)]
    assert loaded.metadata["data_fingerprint"] == "fp-test" and loaded.metadata["version"].startswith("v-")
    (path / "item_vectors.npy").write_bytes(b"garbage")
    with pytest.raises(ColdrecError, match=r"v1: corrupt model version"):
        load_model(path)
    (path / "weights.json").unlink()
    with pytest.raises(ColdrecError, match=r"v1: not a coldrec model version \(missing weights.json\)"):
        load_model(path)


def test_train_command_writes_a_model_version(cli, tmp_path, monkeypatch):
    import json

    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    monkeypatch.setenv("COLDREC_PARAMS", str(tmp_path / "params.yaml"))
    d = tmp_path / "shop"
    d.mkdir()
    _shop_events().to_csv(d / "events.csv", index=False)
    make_items(8).to_csv(d / "items.csv", index=False)
    res = cli("train", "--events", d / "events.csv", "--items", d / "items.csv", "--out", tmp_path / "model")
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert meta["dataset"] == "shop" and meta["events"] == 200 and len(meta["data_fingerprint"]) == 16
    assert meta["params"]["model"]["finetune"]["max_steps"] == 6
    assert (tmp_path / "model" / "encoder" / "config.json").exists()
    res = cli("train", "--events", d / "missing.csv", "--items", d / "items.csv", "--out", tmp_path / "model2")
    assert res.exit_code == 2 and "missing.csv: file not found" in res.output
    assert not (tmp_path / "model2").exists()


def test_train_without_out_writes_a_new_version_and_points_latest_at_it(tmp_path, monkeypatch):
    """The default layout every entry point shares: artifacts/models/<dataset>/<version>/ + current."""
    import yaml

    from coldrec.core import paths
    from coldrec.orchestration import stages
    from coldrec.runtime.version import read_metadata

    home = tmp_path / "home"
    home.mkdir()
    (home / "params.yaml").write_text(yaml.safe_dump(params_with(TINY_OVERRIDES, ZERO_SHOT)))
    monkeypatch.setenv("COLDREC_HOME", str(home))  # the checkout root: artifacts/ go here, not into the repo
    monkeypatch.delenv("COLDREC_PARAMS", raising=False)
    d = tmp_path / "shop"
    d.mkdir()
    _shop_events().to_csv(d / "events.csv", index=False)
    make_items(8).to_csv(d / "items.csv", index=False)
    res = stages.train(stages.Source(events=d / "events.csv", items=d / "items.csv"))
    models = home / "artifacts" / "models" / "shop"
    assert res.path.parent == models and res.path.name.startswith("v-") and res.summary["version"] == res.path.name
    # a trained version is the latest candidate, not production: only a promotion moves `current`
    assert (models / "latest").read_text().strip() == res.path.name and not (models / "current").exists()
    assert paths.latest_version(models) == res.path == paths.resolve_model(models, pointer=paths.LATEST)
    with pytest.raises(ColdrecError, match="no current model version"):
        paths.current_version(models)
    assert (res.path / "metadata.json").is_file() and res.to_dict()["stage"] == "train"
    assert pd.Timestamp(read_metadata(res.path)["trained_until"]) > _shop_events()["timestamp"].max()
    # reuse: the same data, params and code give the same version, taken as it is
    again = stages.train(stages.Source(events=d / "events.csv", items=d / "items.csv"), reuse=True)
    assert again.path == res.path and again.summary["reused"] is True
    # until: only earlier events; another version, which records the cut
    cut = stages.train(stages.Source(events=d / "events.csv", items=d / "items.csv"), until="2024-02-01")
    assert cut.path != res.path and read_metadata(cut.path)["trained_until"].startswith("2024-02-01T00:00:00")
    assert read_metadata(cut.path)["events"] < read_metadata(res.path)["events"]
    (models / "latest").write_text("v-gone\n")
    with pytest.raises(ColdrecError, match="names version 'v-gone', which is not a directory"):
        paths.latest_version(models)


def _first_seen(events: pd.DataFrame) -> pd.Series:
    return events.groupby("user_id")["timestamp"].min()


@pytest.mark.parametrize("protocol", ["time", "users"])
def test_validation_slice_mirrors_how_new_users_arrive(protocol):
    from training.model.tuning import validation_split

    ev = _shop_events(n_users=40)
    train = TrainData.build(ev, make_items(8), seed=3, protocol=protocol)
    val = validation_split(train, protocol, 0.3, None)
    held = {c.user_id for cases in val.cases.values() for c in cases}
    assert held and not held & set(val.train_events["user_id"])  # validation users are new to the inner model
    first = _first_seen(ev)
    newest = set(first.sort_values().index[-len(held):])
    if protocol == "time":  # users arrive over time: the held-out ones are the newest
        assert held == newest
    else:  # a random share of users, from across the whole period
        assert held != newest and first[sorted(held)].min() < first.median()


def test_unknown_validation_protocol_is_a_config_error():
    from training.model.tuning import validation_split

    with pytest.raises(ColdrecError, match="model.validation"):
        validation_split(TrainData.build(_shop_events(), make_items(8)), "sideways", 0.3, None)


def test_fit_tunes_on_the_evaluation_protocol():
    from training.model.hybrid import ColdrecModel

    model = ColdrecModel(params_with(TINY_OVERRIDES, {"model": {"finetune": {"max_steps": 1}}})).fit(
        TrainData.build(_shop_events(), make_items(8), seed=3, protocol="users")
    )
    assert model.report["validation"]["protocol"] == "users"
    assert model.report["validation"]["holdout"] == 0.3


def test_weight_search_drops_components_that_do_not_help():
    """An inert component keeps no weight: it could decide rankings on data the search never saw."""
    from training.model.hybrid import ColdrecModel

    model = ColdrecModel(TINY)
    rng = np.random.default_rng(0)
    useful = rng.normal(size=(20, 30)).astype(np.float32)
    targets = [np.argsort(-row)[:3] for row in useful]  # the useful component ranks every target first
    inert = np.zeros_like(useful)
    comps = {"useful": useful, "inert": inert}
    w, best = model._coordinate_ascent(["useful", "inert"], comps, targets, [np.array([], int)] * 20,
                                       {"useful": 1.0, "inert": 1.0})
    assert w["useful"] > 0 and w["inert"] == 0.0 and best == pytest.approx(1.0)


@pytest.mark.parametrize("protocol, has_new", [("time", True), ("users", False), ("warm", False)])
def test_new_arrival_prior_only_when_users_arrive_in_time(protocol, has_new):
    """Under a users split, "never bought in training" means "bought by a held-out user": a leak."""
    from training.model.tuning import blend_components

    for bucket in ("0", "1", "5", "query"):
        names = blend_components(bucket, protocol)
        assert ("new" in names) is has_new
        assert ("qknn" in names) is (bucket != "0") and ("enc" in names) is (bucket != "0")
        assert "attr" in names  # every bucket may use attributes where the data has them ...
        without = blend_components(bucket, protocol, attributes=False)
        assert without == [n for n in names if n != "attr"]  # ... and none is searched where it has none


def test_query_reaches_what_buyers_of_the_matching_item_also_bought(fitted):
    """qknn: text -> the best-matching bought items -> their co-buys (even items go with even)."""
    import copy
    import dataclasses

    model = copy.copy(fitted)
    model.cfg = dataclasses.replace(fitted.cfg, query_seeds=1)
    text = {0: fitted.item_vecs[2], 1: fitted.item_vecs[3]}  # "searched for exactly i2 / i3"
    s = model._query_knn_scores(3, text)
    even, odd = [0, 4], [1, 5]  # i6, i7: never bought
    assert s[0, even].min() > s[0, odd].max() and s[1, odd].min() > s[1, even].max()
    assert not s[2].any()  # no text, no expansion
    model.weights = {**fitted.weights, "query": {"qknn": 1.0}}
    recs = model.recommend(Signals(query="item number 2"), n=2)
    assert {r.item_id for r in recs} <= {"i0", "i2", "i4", "i6"}
    assert all(r.reason.startswith("often bought with 'item number ") and "a match for your search 'item number 2'" in r.reason
               for r in recs)


def test_weight_search_escapes_a_local_optimum_by_restarting():
    """From x alone every single step looks worse, yet y + z ranks the target first."""
    from training.model.tuning import coordinate_ascent

    #                    T    A    B    C    D    E   (T: the target)
    x = np.array([[1.0, 2.0, 0.0, 0.0, 0.9, 0.9]], np.float32)
    y = np.array([[1.0, -5.0, 3.0, -5.0, 1.5, 0.0]], np.float32)
    z = np.array([[1.0, -5.0, -5.0, 3.0, 0.0, 1.5]], np.float32)
    comps, targets, excluded = {"x": x, "y": y, "z": z}, [np.array([0])], [np.array([], int)]
    w, best = coordinate_ascent(["x", "y", "z"], comps, targets, excluded, {"x": 1.0}, (0.0, 1.0), restarts=False)
    assert w == {"x": 1.0, "y": 0.0, "z": 0.0} and best < 1.0  # stuck
    w, best = coordinate_ascent(["x", "y", "z"], comps, targets, excluded, {"x": 1.0}, (0.0, 1.0))
    assert w == {"x": 0.0, "y": 1.0, "z": 1.0} and best == pytest.approx(1.0)


def test_arrival_popularity_counts_only_the_window_before_the_shopper_arrived():
    from coldrec.runtime.parts import ArrivalHistory

    day = lambda d: pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d)  # noqa: E731
    ev = pd.DataFrame([("a", "i0", 0), ("b", "i0", 1), ("c", "i1", 10), ("a", "i1", 11), ("d", "i2", 40),
                       ("d", "i2", 41)],  # d's repeat is one buyer
                      columns=["user_id", "item_id", "day"])
    ev = ev.assign(event_type="purchase", timestamp=ev.pop("day").map(day))
    h = ArrivalHistory.fit(TrainData.build(ev, make_items(4)), days=5)
    buyers = lambda at, days="fitted": np.expm1(h.scores([at], days)[0]).round(6).tolist()  # noqa: E731
    assert buyers(day(2)) == [2, 0, 0, 0]  # i0 bought by a and b in the 5 days before
    assert buyers(day(12)) == [0, 2, 0, 0]  # i0's buyers are older than the window
    assert buyers(day(12), None) == [2, 2, 0, 0]  # no window: everything before arrival
    assert buyers(day(0.5), None) == [1, 0, 0, 0]  # nothing after the arrival counts
    assert buyers(None) == buyers(day(400)) == [0, 0, 1, 0]  # now, or after training: its last 5 days
    assert buyers("2024-01-03") == buyers(day(2))  # naive times are UTC


def test_fit_picks_the_arrival_window_on_validation_and_saves_it(fitted, tmp_path):
    from training.model.artifacts import load_model, save_model

    picked = fitted.report["arrival_window"]
    assert picked["days"] == fitted.parts.history.days
    assert set(picked["val_ndcg@10"]) == {"365", "90", "30", "all"}
    label = "all" if picked["days"] is None else f"{picked['days']:g}"
    assert picked["val_ndcg@10"][label] == max(picked["val_ndcg@10"].values())
    loaded = load_model(save_model(fitted, tmp_path / "v", "fp", TINY), quantized=False)
    early = Signals(items=["i0"], at="2024-01-10")  # arrived while the shop was young
    np.testing.assert_allclose(loaded.score([early]), fitted.score([early]), atol=1e-4)
    assert loaded.parts.history.days == fitted.parts.history.days
    assert (loaded.parts.history.scores([early.at]) == fitted.parts.history.scores([early.at])).all()


def test_arrival_reason_says_which_window(fitted):
    import copy

    from coldrec.runtime.reasons import arrival_reason

    parts = copy.copy(fitted.parts)
    parts.history = copy.copy(fitted.parts.history)
    parts.history.days = 30
    assert arrival_reason(parts, Signals(at="2024-01-10")) == "popular with shoppers in the 30 days before you arrived"
    assert arrival_reason(parts, Signals()) == "popular with shoppers over the last 30 days"
    parts.history.days = 365
    assert arrival_reason(parts, Signals(at="2030-01-01")) == "popular with shoppers over the last year"


def test_reason_names_the_shoppers_own_signal_before_popularity(fitted):
    """Popularity x8 lifts every top item; the co-buy with what the shopper picked is the real reason."""
    import copy

    model = copy.copy(fitted)
    model.weights = {**fitted.weights, "1": {"knn": 1.0, "pop": 8.0}}
    reasons = {r.item_id: r.reason for r in model.recommend(Signals(items=["i0"]), n=6)}
    assert reasons["i2"] == reasons["i4"] == "often bought with 'item number 0'"  # even items go with i0
    assert reasons["i1"] == "popular with shoppers"  # never bought with i0: popularity is all there is


def _shop_users(n_users=40):
    """Even-taste users ship to France, odd-taste ones to the UK; ``age`` is numeric, ``email`` an id."""
    return pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)],
                         "country": ["France" if u % 2 == 0 else "United Kingdom" for u in range(n_users)],
                         "age": [20 + u for u in range(n_users)],
                         "email": [f"u{u}@example.com" for u in range(n_users)]})


def test_attribute_popularity_ranks_what_shoppers_sharing_the_attribute_bought():
    from coldrec.runtime.attributes import AttributePopularity

    train = TrainData.build(_shop_events(), make_items(8), users=_shop_users())
    attrs = AttributePopularity.fit(train, prior_users=10.0, max_values=30)
    assert sorted(set(attrs.names)) == ["country"]  # numeric age and id-like email are no segments
    even, odd = [train.item_index[f"i{i}"] for i in (0, 2, 4)], [train.item_index[f"i{i}"] for i in (1, 3, 5)]
    fr, uk, unknown, none = attrs.profile_scores([Signals(attributes={"country": "France"}),
                                                   Signals(attributes={"country": "United Kingdom"}),
                                                   Signals(attributes={"country": "Peru"}), Signals()])
    assert fr[even].min() > fr[odd].max() and uk[odd].min() > uk[even].max()
    assert not unknown.any() and not none.any()  # nothing known: no contribution, not a crash
    # an item nobody bought scores 0 as in `pop`, not log(0): a cold item stays within the new-arrival prior's reach
    never = train.item_index["i7"]
    assert fr[never] == uk[never] == 0.0 and fr.min() == 0.0
    # the prior pulls a value seen on few users towards the overall shares
    strong = AttributePopularity.fit(train, prior_users=1000.0, max_values=30).profile_scores(
        [Signals(attributes={"country": "France"})])[0]
    assert np.ptp(strong[even + odd]) < np.ptp(fr[even + odd])


def test_attributes_steer_a_shopper_with_nothing_else_and_survive_saving(tmp_path):
    from coldrec.runtime.profile import build_profile
    from training.model.artifacts import load_model, save_model
    from training.model.hybrid import ColdrecModel

    model = ColdrecModel(params_with(TINY_OVERRIDES, ZERO_SHOT))
    model.fit(TrainData.build(_shop_events(), make_items(8), seed=3, users=_shop_users()))
    model.weights["0"] = {"attr": 1.0}
    uk = Signals(attributes={"country": "United Kingdom"})
    s = model.score([uk])[0]
    idx = model.train.item_index
    assert min(s[idx[i]] for i in ("i1", "i3", "i5")) > max(s[idx[i]] for i in ("i0", "i2", "i4"))
    (top,) = model.recommend(uk, n=1)
    assert top.item_id in ("i1", "i3", "i5") and top.reason == "popular with shoppers like you (country: United Kingdom)"
    built = build_profile(model, items=["i1"], attributes={"country": "United Kingdom", "planet": "Mars"})
    assert "attributes: country=United Kingdom" in built.readable["based_on"]
    assert built.readable["ignored_attributes"] == ["planet=Mars"]  # no training shopper had it: said, not used
    loaded = load_model(save_model(model, tmp_path / "v", "fp", TINY), quantized=False)
    fr = Signals(attributes={"country": "France"})
    np.testing.assert_allclose(loaded.score([fr, uk]), model.score([fr, uk]), atol=1e-5)
    assert loaded.recommend(fr, n=1)[0].item_id in ("i0", "i2", "i4")


def test_fit_picks_the_co_occurrence_similarity_on_validation_when_given_candidates():
    from training.methods.baselines import ItemKNN
    from training.model.hybrid import ColdrecModel

    model = ColdrecModel(params_with(TINY_OVERRIDES, ZERO_SHOT,
                                     {"model": {"knn_alpha": [0.5, 1.0], "knn_user_weight": ["none", "log"]}}))
    train = TrainData.build(_shop_events(), make_items(8), seed=3)
    model.fit(train)
    picked = model.report["knn"]
    assert set(picked["val_ndcg@10"]) == {"alpha=0.5,none", "alpha=1,none", "alpha=0.5,log", "alpha=1,log"}
    label = f"alpha={picked['alpha']:g},{picked['user_weight']}"
    assert picked["val_ndcg@10"][label] == max(picked["val_ndcg@10"].values())
    expected = ItemKNN(shrink=model.cfg.knn_shrink, alpha=picked["alpha"], user_weight=picked["user_weight"]).fit(train).sim
    np.testing.assert_allclose(model.parts.knn_sim.toarray(), expected.toarray(), rtol=1e-6)
    assert "knn" not in ColdrecModel(TINY).fit(train).report  # one candidate each: nothing to pick


def test_weight_search_ndcg_matches_the_evaluation_metric():
    """The fast scorer the weight search uses agrees with the harness's NDCG@10 (targets, exclusions,
    users without targets skipped), and reuses its precomputation across blends."""
    from training.evaluation.metrics import top_n, user_metrics
    from training.model.tuning import NdcgScorer

    rng = np.random.default_rng(0)
    n_cases, n_items = 40, 60
    targets = [rng.choice(n_items, size=int(rng.integers(0, 15)), replace=False) for _ in range(n_cases)]
    excluded = [rng.choice(n_items, size=int(rng.integers(0, 4)), replace=False) for _ in range(n_cases)]
    scorer = NdcgScorer(targets, excluded, n_items)
    for _ in range(3):
        s = rng.standard_normal((n_cases, n_items)).astype(np.float32)
        slow = np.mean([user_metrics(top_n(s[r], t, 10, e), t, 10).ndcg
                        for r, (t, e) in enumerate(zip(targets, excluded)) if len(t)])
        assert scorer(s.copy()) == pytest.approx(slow, abs=1e-9)


def test_a_known_shoppers_stored_state_enters_oldest_first(fitted):
    """Feast stores a shopper's recent items and queries newest first; Signals are oldest first
    (the last item weighs most). The service once read the stored lists as they are: the oldest
    stored item weighed most and the oldest query was used."""
    from types import SimpleNamespace

    from serving.requests import shopper
    from serving.schemas import ShopperSignals

    stored = {"recent_item_ids": ["i3", "i2", "i1"], "recent_event_types": ["purchase", "view", "view"],
              "recent_queries": ["lamp", "garden thing"], "n_events": 5}
    who = shopper(SimpleNamespace(model=fitted), ShopperSignals.model_validate({"user_id": "u"}), stored)
    assert who.built.signals.items == ["i1", "i2", "i3"]
    assert who.built.signals.event_types == ["view", "view", "purchase"]
    assert who.built.signals.query == "lamp" and "search 'lamp'" in who.built.readable["based_on"]
    assert who.strategy == "known_user"
    with_request = shopper(SimpleNamespace(model=fitted),
                           ShopperSignals.model_validate({"user_id": "u", "recent_items": ["i4"], "query": "toys"}), stored)
    assert with_request.built.signals.items == ["i1", "i2", "i3", "i4"] and with_request.built.signals.query == "toys"
