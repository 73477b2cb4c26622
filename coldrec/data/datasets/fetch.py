"""Find a shipped dataset's raw files, or download them from the publisher and verify them.

Resolution order (first directory holding every file wins):
1. ``--data-dir`` given on the command line,
2. ``$COLDREC_RAW_DATA_DIR``,
3. ``../shared/datasets`` beside the checkout, when it exists,
4. the user cache (``$COLDREC_CACHE_DIR``, default the platform's cache dir),
and only then a download from the publisher's URL into the cache (atomic: a failed or
mismatching download leaves nothing behind).
"""
from __future__ import annotations

import hashlib
import io
import lzma
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from coldrec.core import progress
from coldrec.core.config import Settings, settings
from coldrec.data.datasets.shipped import RawDatasetSpec
from coldrec.core.errors import DataError, DatasetNotFound


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def candidate_dirs(spec: RawDatasetSpec, data_dir: str | Path | None = None, cfg: Settings | None = None) -> list[Path]:
    cfg = cfg or settings()
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir))
    if cfg.raw_dir_override:
        roots.append(cfg.raw_dir_override)
    if cfg.shared_datasets_dir.exists():
        roots.append(cfg.shared_datasets_dir)
    roots.append(cfg.cache_dir / "datasets")
    return [r / spec.dirname for r in roots]


def verify(spec: RawDatasetSpec, directory: Path) -> None:
    """Every file with a known checksum must match it: a changed file is an error, not a guess."""
    for fname, expected in spec.files.items():
        if expected is None:
            continue
        actual = sha256_of(directory / fname)
        if actual != expected:
            raise DataError(
                f"{directory / fname}: sha256 {actual} does not match the published {expected};"
                " the file is corrupt or a different release - delete it to re-download"
            )


def locate(spec: RawDatasetSpec, data_dir: str | Path | None = None, download: bool = True,
           cfg: Settings | None = None) -> Path:
    """Return the directory holding ``spec``'s verified raw files, downloading them if allowed."""
    cfg = cfg or settings()
    tried = candidate_dirs(spec, data_dir, cfg)
    if data_dir and not Path(data_dir).exists():
        raise DatasetNotFound(f"--data-dir {data_dir}: directory does not exist")
    for d in tried:
        if all((d / f).exists() for f in spec.files):
            verify(spec, d)
            return d
    if not download:
        raise DatasetNotFound(
            f"dataset {spec.name!r}: raw files {', '.join(spec.files)} not found in "
            + "; ".join(str(d) for d in tried)
        )
    return download_to_cache(spec, tried[-1])


def _fetch(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress.bar(total=total, unit="B", unit_scale=True, desc=f"download {url.rsplit('/', 1)[-1]}") as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as exc:  # URLError, HTTPError, timeouts are all OSError
        raise DatasetNotFound(f"could not download {url}: {exc}") from None


def _xlsx_to_csv_xz(xlsx_bytes: bytes, dest: Path) -> None:
    """The UCI original is an .xlsx; store it as the xz CSV the rest of the code reads."""
    import pandas as pd

    df = pd.read_excel(io.BytesIO(xlsx_bytes), dtype={"InvoiceNo": str, "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    with lzma.open(dest, "wt", encoding="utf-8") as fh:
        df.to_csv(fh, index=False)


def download_to_cache(spec: RawDatasetSpec, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.dirname}.download-", dir=target.parent))
    try:
        archive = tmp / "archive.zip"
        _fetch(spec.url, archive)
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise DataError(f"{spec.url}: downloaded file is not a zip archive") from None
        with zf:
            names = set(zf.namelist())
            for fname, member in spec.archive_members.items():
                if member not in names:
                    raise DataError(f"{spec.url}: archive has no member {member!r}")
                data = zf.read(member)
                if member.endswith(".xlsx"):
                    _xlsx_to_csv_xz(data, tmp / fname)
                else:
                    (tmp / fname).write_bytes(data)
        archive.unlink()
        verify(spec, tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
