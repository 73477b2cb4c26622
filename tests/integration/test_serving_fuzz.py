"""Fuzz the real server from its own OpenAPI spec (schemathesis strategies, driven by hypothesis):
for every route, bodies that fit the schema and bodies that break it; no answer is a 5xx, a
body the schema forbids is refused with a 4xx, and without the API key every route says 401.

Why not schemathesis' pytest plugin: it fails on this pytest (``Function._nodeid``); its
strategies are the same either way.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.integration.serving_support import KEY

ROUTES = ("/recommend", "/similar-items", "/profile", "/feedback", "/catalogue/search")
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def operations(server):
    schema = schemathesis.openapi.from_url(server["url"] + "/docs.json", headers={"X-API-Key": KEY}, timeout=30)
    ops = {}
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in ROUTES:
            ops[op.path] = op
    assert set(ops) == set(ROUTES), sorted(ops)
    return ops


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_makes_a_server_error(operations, server, route, mode):
    seen: list[int] = []

    @SETTINGS
    @given(case=operations[route].as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(base_url=server["url"], headers={"X-API-Key": KEY}, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.body, response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert "error" in response.text, response.text[:300]  # a message, not an empty body

    run()
    assert seen  # hypothesis ran the route
    if mode is GenerationMode.POSITIVE and route in ("/recommend", "/profile"):
        assert 200 in seen  # schema-valid bodies do succeed (unknown ids are ignored and reported)
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in seen)  # bodies that break the schema are refused


@pytest.mark.parametrize("route", ROUTES)
def test_without_the_key_every_route_is_refused(operations, server, route):
    @settings(SETTINGS, max_examples=5)
    @given(case=operations[route].as_strategy())
    def run(case):
        response = case.call(base_url=server["url"], timeout=30)
        assert response.status_code == 401, response.text[:300]

    run()
