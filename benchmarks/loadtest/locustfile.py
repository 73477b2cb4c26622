"""Locust shoppers for the serving load test (run by ``benchmarks.bench_serving_load``; loopback only).

Environment: ``COLDREC_LOAD_ITEMS`` (a JSON file of item ids to draw recent items from),
``COLDREC_LOAD_SCENARIO`` (``items3``: a cold shopper with 3 recent items; ``query``: a search
query only; ``mixed``), ``COLDREC_LOAD_VERSIONS`` (a file each response's ``model_version`` is
appended to, for the promotion check), ``COLDREC_API_KEY``.
"""
from __future__ import annotations

import json
import os
import random

from locust import FastHttpUser, constant, task

ITEMS = json.load(open(os.environ["COLDREC_LOAD_ITEMS"], encoding="utf-8"))
SCENARIO = os.environ.get("COLDREC_LOAD_SCENARIO", "items3")
WORDS = ["red", "heart", "mug", "bag", "candle", "christmas", "vintage", "lunch", "box", "paper", "garden", "light",
         "comedy", "drama", "love", "war", "space", "family", "action", "story"]
VERSIONS = open(os.environ["COLDREC_LOAD_VERSIONS"], "a", encoding="utf-8") if os.environ.get("COLDREC_LOAD_VERSIONS") else None
HEADERS = {"X-API-Key": os.environ["COLDREC_API_KEY"]} if os.environ.get("COLDREC_API_KEY") else {}


def body(rng: random.Random) -> dict:
    kind = SCENARIO if SCENARIO != "mixed" else rng.choice(["items3", "items3", "query"])
    if kind == "query":
        return {"query": " ".join(rng.sample(WORDS, 2)), "k": 10}
    return {"recent_items": [{"item_id": i, "event_type": rng.choice(["view", "add_to_cart", "purchase"])}
                             for i in rng.sample(ITEMS, 3)], "k": 10}


class Shopper(FastHttpUser):
    wait_time = constant(0)  # closed loop: each user sends its next request when the last is answered

    def on_start(self) -> None:
        self.rng = random.Random(hash(self) & 0xFFFF)

    @task
    def recommend(self) -> None:
        with self.client.post("/recommend", json=body(self.rng), headers=HEADERS, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            out = r.json()
            if len(out.get("items", [])) != 10 or not all(i.get("reason") for i in out["items"]):
                r.failure("fewer than 10 items, or an item without a reason")
            if VERSIONS is not None:
                VERSIONS.write(out["model_version"] + "\n")
                VERSIONS.flush()
