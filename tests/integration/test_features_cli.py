"""`coldrec features build|apply|materialize|get|push` end to end on the user's own files."""
from __future__ import annotations

import json


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_features_cli_flow(cli, small_files, tmp_path):
    res = cli("features", "build", "--events", small_files["events"], "--items", small_files["items"], "--users", small_files["users"])
    assert res.exit_code == 0, res.output
    assert "user_profile" in res.output and "wrote" in res.output
    res = cli("features", "apply", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0, res.output
    assert "coldrec_byod" in res.output and "user_profile" in res.output
    res = cli("features", "materialize", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0, res.output
    assert "user_profile: full" in res.output
    res = cli("features", "get", "u1", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0, res.output
    prof = _json(res.output)
    assert prof["known"] is True and prof["n_events"] == 8 and len(prof["recent_item_ids"]) == 8
    res = cli("features", "push", "u1", "i7", "--event-type", "add_to_cart", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0, res.output
    res = cli("features", "get", "u1", "--dataset", "byod", "--online", "sqlite")
    prof = _json(res.output)
    assert prof["recent_item_ids"][0] == "i7" and prof["n_add_to_cart"] == 1
    res = cli("features", "get", "nobody", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0 and _json(res.output)["known"] is False
    res = cli("features", "push", "u1", "--event-type", "purchase", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 2 and "needs an item_id" in res.output
    res = cli("features", "materialize", "--dataset", "byod", "--online", "sqlite")
    assert res.exit_code == 0 and "user_profile: incremental" in res.output
