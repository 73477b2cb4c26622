"""The model registry on GTO: a real git repository and real GTO tags in a temporary folder."""
from __future__ import annotations

import json
import subprocess

import pytest

from coldrec.release.model_registry import Busy, Registry, RegistryError, artifact


@pytest.fixture
def reg(tmp_path):
    return Registry(tmp_path / "registry").ensure()


def test_artifact_names_follow_gto_rules():
    assert artifact("online-retail") == "coldrec-online-retail"
    assert artifact("My_Shop.2") == "coldrec-my-shop-2"


def test_register_writes_lineage_and_a_gto_tag(reg):
    e = reg.register("shop", "v-aaa", {"data_fingerprint": "fp1", "params": {"seed": 1}, "parent": None})
    assert e.version == "v0.0.1" and e.model_version == "v-aaa"
    tags = subprocess.run(["git", "-C", str(reg.root), "tag", "-l"], capture_output=True, text=True).stdout.split()
    assert tags == ["coldrec-shop@v0.0.1"]
    lineage = json.loads((reg.root / "lineage" / "shop" / "v0.0.1.json").read_text())
    assert lineage["data_fingerprint"] == "fp1" and lineage["model_version"] == "v-aaa"
    got = reg.get("shop", "v-aaa")
    assert got.version == "v0.0.1" and got.lineage["params"] == {"seed": 1} and got.stage is None
    described = reg.describe("shop")  # GTO's own artifact declaration
    assert described["type"] == "model" and described["path"].endswith("models/shop")


def test_register_is_idempotent_and_numbers_versions(reg):
    a = reg.register("shop", "v-aaa", {})
    again = reg.register("shop", "v-aaa", {"other": 1})
    b = reg.register("shop", "v-bbb", {})
    assert again.version == a.version == "v0.0.1" and b.version == "v0.0.2"
    assert [e.model_version for e in reg.entries("shop")] == ["v-aaa", "v-bbb"]
    assert reg.entries("other-dataset") == []


def test_production_follows_gto_assignments_in_order(reg):
    reg.register("shop", "v-aaa", {})
    reg.register("shop", "v-bbb", {})
    assert reg.production("shop") is None
    reg.assign_production("shop", "v0.0.1", "first")
    reg.assign_production("shop", "v0.0.2", "second")
    reg.assign_production("shop", "v0.0.1", "back")
    assert reg.assignments("shop") == ["v0.0.1", "v0.0.2", "v0.0.1"]
    prod = reg.production("shop")
    assert prod.version == "v0.0.1" and prod.stage == "prod"
    assert [e.stage for e in reg.entries("shop")] == ["prod", None]


def test_unknown_version_names_what_is_registered(reg):
    reg.register("shop", "v-aaa", {})
    with pytest.raises(RegistryError, match=r"no registered version 'v9.9.9' \(registered: v0.0.1 \(v-aaa\)\)"):
        reg.get("shop", "v9.9.9")


def test_a_held_lock_refuses_a_second_writer_at_once(reg):
    with reg.lock("shop"):
        with pytest.raises(Busy, match="in progress"):
            with reg.lock("shop"):
                pass
    with reg.lock("shop"):  # released: free again
        pass


def test_previous_production_is_the_one_before_the_current(reg):
    from coldrec.release.promotion import previous_production

    for v in ("v-aaa", "v-bbb", "v-ccc"):
        reg.register("shop", v, {})
    with pytest.raises(RegistryError, match="nothing has been promoted"):
        previous_production("shop", reg)
    reg.assign_production("shop", "v0.0.1", "")
    with pytest.raises(RegistryError, match="only version ever in production"):
        previous_production("shop", reg)
    reg.assign_production("shop", "v0.0.2", "")
    reg.assign_production("shop", "v0.0.3", "")
    assert previous_production("shop", reg).version == "v0.0.2"
