"""The real service over HTTP (see serving_support: one server for the session, with an API key):
recommend for every kind of signal, filters, similar items, profile, feedback then recommend,
bad input, and a promotion last."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.serving_support import KEY, call


def test_health_and_readiness_need_no_key(server):
    assert call(server["url"], "/healthz", key=None) == (200, {"status": "ok"})
    assert call(server["url"], "/readyz", key=None)[0] == 200
    status, text = call(server["url"], "/metrics", key=None)
    assert status == 200 and "bentoml" in str(text)


def test_api_key_is_required(server):
    body = {"recent_items": ["i0"]}
    status, out = call(server["url"], "/recommend", body, key=None)
    assert status == 401 and "API key" in out["error"]
    assert call(server["url"], "/recommend", body, key="wrong")[0] == 401
    assert call(server["url"], "/recommend", body, key=None, headers={"Authorization": f"Bearer {KEY}"})[0] == 200


def test_recommend_for_a_cold_shopper_with_recent_items(server):
    status, out = call(server["url"], "/recommend", {"recent_items": [{"item_id": "i0", "event_type": "purchase"}, "i2",
                                                                      "no-such-item"], "k": 3})
    assert status == 200, out
    assert out["strategy"] == "cold_start_items" and out["model_version"] == "v1"
    assert out["ignored_items"] == ["no-such-item"] and len(out["recommendation_id"]) == 32
    assert len(out["items"]) == 3 and not {"i0", "i2"} & {i["item_id"] for i in out["items"]}
    for it in out["items"]:
        assert it["title"].startswith("item number") and it["reason"] and isinstance(it["score"], float)
    # the even-taste items were bought with i0 and i2: they lead
    assert out["items"][0]["item_id"] in {"i4", "i6"}


@pytest.mark.parametrize("body, strategy", [
    ({"query": "item number 5"}, "query"),
    ({"interests": ["lighting"]}, "interests"),
    ({"attributes": {"country": "France"}}, "attributes"),
    ({}, "fallback_popular"),
    ({"user_id": "never-seen"}, "fallback_popular"),
])
def test_every_kind_of_signal_names_its_strategy(server, body, strategy):
    status, out = call(server["url"], "/recommend", body)
    assert status == 200, out
    assert out["strategy"] == strategy and len(out["items"]) >= 3
    assert all(i["reason"] for i in out["items"])


def test_filters_and_exclusions_hold_for_every_item(server):
    status, out = call(server["url"], "/recommend", {"recent_items": ["i0"], "k": 8, "exclude": ["i4"],
                                                     "filters": {"categories": ["kitchen", "Toys"], "price_max": 7.0}})
    assert status == 200, out
    items = {i["item_id"] for i in out["items"]}
    # kitchen (i0, i4) or toys (i2, i6), price <= 7.0 (drops i6), minus the shopper's i0 and the excluded i4
    assert items == {"i2"}
    status, out = call(server["url"], "/recommend", {"k": 8, "filters": {"price_min": 7.0}})
    assert status == 200 and {i["item_id"] for i in out["items"]} <= {"i6", "i7"}


def test_similar_items_and_profile(server):
    status, out = call(server["url"], "/similar-items", {"item_id": "i1", "k": 3})
    assert status == 200, out
    assert "i1" not in {i["item_id"] for i in out["items"]} and out["items"][0]["item_id"] in {"i3", "i5", "i7"}
    status, out = call(server["url"], "/similar-items", {"item_id": "nope"})
    assert status == 400 and "item_id" in json.dumps(out) and "nope" in json.dumps(out)
    status, out = call(server["url"], "/profile", {"recent_items": ["i1", "zzz"], "query": "lamp"})
    assert status == 200, out
    assert out["ignored_items"] == ["zzz"] and any("search 'lamp'" in b for b in out["based_on"])


def test_feedback_reaches_the_next_recommendation(server):
    user = "shopper-" + uuid.uuid4().hex[:6]
    before = call(server["url"], "/recommend", {"user_id": user})[1]
    assert before["strategy"] == "fallback_popular"
    status, out = call(server["url"], "/feedback", {"user_id": user, "event_type": "purchase", "item_id": "i1"})
    assert status == 200 and out["accepted"] and out["events"] == 1
    after = call(server["url"], "/recommend", {"user_id": user, "k": 3})[1]
    assert after["strategy"] == "known_user"
    assert "i1" not in {i["item_id"] for i in after["items"]}
    assert after["items"][0]["item_id"] in {"i3", "i5", "i7"}
    assert call(server["url"], "/profile", {"user_id": user})[1]["known_user"] is True
    status, out = call(server["url"], "/feedback", {"user_id": user, "event_type": "purchase", "item_id": "ghost"})
    assert status == 400 and "ghost" in json.dumps(out)


@pytest.mark.parametrize("route, body, needle", [
    ("/recommend", {"k": 0}, "k"),
    ("/recommend", {"k": "ten"}, "k"),
    ("/recommend", {"k": 101}, "k"),
    ("/recommend", {"recent_items": "i0"}, "recent_items"),
    ("/recommend", {"recent_items": [{"item_id": "i0", "event_type": "stare"}]}, "event_type"),
    ("/recommend", {"recent_items": ["i0"] * 101}, "recent_items"),
    ("/recommend", {"query": "x" * 501}, "query"),
    ("/recommend", {"colour": "red"}, "colour"),
    ("/recommend", {"filters": {"price_min": 9, "price_max": 2}}, "price_min"),
    ("/recommend", {"filters": {"price_min": -1}}, "price_min"),
    ("/similar-items", {}, "item_id"),
    ("/feedback", {"user_id": "u", "event_type": "purchase"}, "item_id"),
    ("/feedback", {"event_type": "view", "item_id": "i0"}, "user_id"),
])
def test_bad_input_is_a_400_naming_the_field(server, route, body, needle):
    status, out = call(server["url"], route, body)
    assert status == 400, out
    assert needle in json.dumps(out)


def test_malformed_and_oversized_bodies(server):
    assert call(server["url"], "/recommend", raw=b"{not json")[0] == 400
    assert call(server["url"], "/recommend", raw=b"[1, 2]")[0] == 400
    status, out = call(server["url"], "/recommend", raw=b" " * 70_000)
    assert status == 413 and "limit" in out["error"]
    status, out = call(server["url"], "/recommend", raw=b"{}", headers={"Content-Length": "abc"})
    assert status == 400


def test_a_broken_version_is_not_promoted_and_serving_goes_on(server):
    from coldrec.core.paths import set_current

    models = server["base"] / "models" / "shop"
    broken = models / "v-broken"
    broken.mkdir(exist_ok=True)
    (broken / "metadata.json").write_text("{}")  # no catalogue, no encoder
    set_current(models, "v-broken")
    time.sleep(5)  # the watcher looks every serving.reload_seconds (2 s)
    status, out = call(server["url"], "/recommend", {"recent_items": ["i0"]})
    assert status == 200 and out["model_version"] == "v1"
    assert "not switching version" in server["log"].read_text()
    set_current(models, "v1")


def test_promotion_switches_versions_without_mixing(server):
    from coldrec.core.paths import set_current

    models = server["base"] / "models" / "shop"
    assert call(server["url"], "/version", {})[1]["model_version"] == "v1"
    set_current(models, "v2")
    deadline = time.time() + 60
    seen = set()
    while time.time() < deadline:
        status, out = call(server["url"], "/recommend", {"recent_items": ["i0"]})
        assert status == 200
        seen.add(out["model_version"])
        if out["model_version"] == "v2":
            break
        time.sleep(0.2)
    assert seen <= {"v1", "v2"} and "v2" in seen
    info = call(server["url"], "/version", {})[1]
    assert info["model_version"] == "v2" and info["collection"] == "coldrec_shop_v2"


def test_a_new_item_is_recommendable_at_once_and_a_deleted_one_never(server):
    new = {"item_id": "lamp-2000", "title": "item number 5 lighting lamp", "description": "a fine lighting thing",
           "category": "lighting", "price": 4.0}
    status, out = call(server["url"], "/items", {"items": [new]})
    assert status == 200 and out == {"upserted": 1, "new": ["lamp-2000"], "model_version": out["model_version"]}
    status, out = call(server["url"], "/recommend", {"query": "lighting lamp", "k": 2})
    assert status == 200 and out["items"][0]["item_id"] == "lamp-2000", out
    assert out["items"][0]["reason"] == "matches your search 'lighting lamp'"
    status, out = call(server["url"], "/recommend", {"recent_items": ["lamp-2000"], "k": 3})
    assert status == 200 and out["ignored_items"] == [] and out["strategy"] == "cold_start_items"
    status, out = call(server["url"], "/items/delete", {"item_ids": ["lamp-2000", "i5", "nope"]})
    assert status == 200 and out["deleted"] == 2 and out["ignored_items"] == ["nope"]
    for body in ({"query": "lighting lamp", "k": 20}, {"recent_items": ["i1"], "k": 20}, {}):
        got = {i["item_id"] for i in call(server["url"], "/recommend", body)[1]["items"]}
        assert got and not {"lamp-2000", "i5"} & got
    assert call(server["url"], "/items", {"items": []})[0] == 400
    assert call(server["url"], "/items", {"items": [{"item_id": "x"}]})[0] == 400  # a title is required
    # re-sent, an item is back
    assert call(server["url"], "/items", {"items": [{"item_id": "i5", "title": "item number 5"}]})[0] == 200
    got = {i["item_id"] for i in call(server["url"], "/recommend", {"recent_items": ["i1"], "k": 20})[1]["items"]}
    assert "i5" in got
