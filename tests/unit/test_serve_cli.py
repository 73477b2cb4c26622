"""`coldrec serve` / `index` / `bundle` refuse what they cannot serve with a clear message,
before starting anything (exit 2, as every usage error of the CLI)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, needle", [
    (["serve", "--version", "no-such-version", "--dataset", "shop-none"], "no such version"),
    (["serve", "--dataset", "shop-none"], "no current model version"),
    (["serve", "--stop"], "nothing to stop"),
    (["index", "--dataset", "shop-none"], "no latest model version"),
    (["bundle", "--dataset", "shop-none"], "no latest model version"),
])
def test_serving_commands_fail_clearly(cli, args, needle):
    res = cli(*args)
    assert res.exit_code == 2, res.output  # a ColdrecError: nothing to serve is a usage problem, not a crash
    assert needle in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_serve_rejects_a_bad_port(cli):
    res = cli("serve", "--port", "70000")
    assert res.exit_code == 2 and "Invalid value" in res.output
