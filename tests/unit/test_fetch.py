"""Raw-file resolution order, checksum verification, and the download path (served locally:
this machine cannot reach the publishers)."""
from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from functools import partial

import pytest

from coldrec.core.config import Settings
from coldrec.core.errors import DataError, DatasetNotFound
from coldrec.data.datasets.fetch import locate
from coldrec.data.datasets.shipped import RawDatasetSpec

CONTENT = b"movieId,title,genres\n1,Toy Story (1995),Animation\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


def _spec(url="http://127.0.0.1:9/none.zip", sha=SHA):
    return RawDatasetSpec(name="toy", dirname="toy", files={"movies.csv": sha}, url=url, licence="test",
                          archive_members={"movies.csv": "toy/movies.csv"})


def _settings(tmp_path, raw_override=None):
    return Settings(root=tmp_path, data_dir=tmp_path / "data", raw_dir_override=raw_override,
                    shared_datasets_dir=tmp_path / "shared", cache_dir=tmp_path / "cache", params_path=tmp_path / "p.yaml")


def _put(root, content=CONTENT):
    (root / "toy").mkdir(parents=True, exist_ok=True)
    (root / "toy" / "movies.csv").write_bytes(content)
    return root / "toy"


def test_resolution_order(tmp_path):
    shared, env, flag, cache = (_put(tmp_path / n) for n in ("shared", "env", "flag", "cache/datasets"))
    cfg = _settings(tmp_path, raw_override=tmp_path / "env")
    assert locate(_spec(), data_dir=tmp_path / "flag", cfg=cfg) == flag
    assert locate(_spec(), cfg=cfg) == env
    assert locate(_spec(), cfg=_settings(tmp_path)) == shared
    (shared / "movies.csv").unlink()
    assert locate(_spec(), cfg=_settings(tmp_path)) == cache


def test_changed_file_fails_checksum(tmp_path):
    _put(tmp_path / "shared", CONTENT + b"2,Extra (2000),Drama\n")
    with pytest.raises(DataError, match=r"movies\.csv: sha256 .* does not match the published"):
        locate(_spec(), cfg=_settings(tmp_path))


def test_missing_everywhere_without_download(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"dataset 'toy': raw files movies\.csv not found in"):
        locate(_spec(), download=False, cfg=_settings(tmp_path))
    with pytest.raises(DatasetNotFound, match=r"--data-dir .*nowhere: directory does not exist"):
        locate(_spec(), data_dir=tmp_path / "nowhere", cfg=_settings(tmp_path))


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "good.zip", "w") as zf:
        zf.writestr("toy/movies.csv", CONTENT)
    with zipfile.ZipFile(site / "tampered.zip", "w") as zf:
        zf.writestr("toy/movies.csv", CONTENT.replace(b"Toy", b"Boy"))
    (site / "notzip.zip").write_bytes(b"<html>rate limited</html>")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_download_verifies_and_lands_in_cache(tmp_path, served):
    cfg = _settings(tmp_path)
    got = locate(_spec(url=f"{served}/good.zip"), cfg=cfg)
    assert got == tmp_path / "cache" / "datasets" / "toy"
    assert (got / "movies.csv").read_bytes() == CONTENT
    assert [p.name for p in got.iterdir()] == ["movies.csv"]  # archive removed


@pytest.mark.parametrize("name, err", [("tampered.zip", r"does not match the published"),
                                        ("notzip.zip", r"not a zip archive"),
                                        ("missing.zip", r"could not download .*missing\.zip")])
def test_bad_download_leaves_nothing_behind(tmp_path, served, name, err):
    cfg = _settings(tmp_path)
    with pytest.raises((DataError, DatasetNotFound), match=err):
        locate(_spec(url=f"{served}/{name}"), cfg=cfg)
    cache = tmp_path / "cache" / "datasets"
    assert not cache.exists() or list(cache.iterdir()) == []
