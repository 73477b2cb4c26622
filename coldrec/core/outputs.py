"""Where a stage may write, and writing there atomically: the one output rule of every stage.

Why: a stage replaces its output location as a whole, so a careless ``--out`` could delete a
user's own files, or the stage's own inputs. The rule, for every command and stage:

- an output location that exists and was not written by coldrec (no :data:`MARKER` file in it)
  is refused with a clear message, unless ``force``; an existing *file* is never replaced by a
  folder without ``force`` either;
- an output that is, or contains, one of the stage's inputs, or lies inside an input folder,
  is refused (``force`` does not change that: it would destroy what the stage reads);
- the location must be writable, and that is checked before any work starts;
- writes go to a temporary sibling (``.<name>.tmp-<pid>-<random>``) renamed into place only
  when complete; an interrupted run (an exception, Ctrl-C, SIGTERM via the CLI's handler)
  removes it, and a run killed outright leaves one that the next run on the same location
  removes (its process is gone).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from coldrec.core.errors import ColdrecError

MARKER = ".coldrec"  # JSON file in every output directory coldrec writes: {"stage", "written"}


class OutputError(ColdrecError):
    """An output location coldrec must not or cannot write."""


def _label(path: Path) -> str:
    return str(path)


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def owned(target: Path, legacy: Iterable[str] = ()) -> bool:
    """True when ``target`` is an empty directory, holds coldrec's marker, or (``legacy``) holds
    nothing but names an older coldrec version wrote there before markers existed."""
    entries = {p.name for p in target.iterdir()}
    if not entries or MARKER in entries:
        return True
    legacy = set(legacy)
    return bool(legacy) and not (entries - legacy)


def check(target: str | Path, *, inputs: Iterable[str | Path | None] = (), force: bool = False,
          legacy: Iterable[str] = (), what: str = "--out") -> Path:
    """Refuse an output location this stage must not replace or cannot write; returns it (absolute)."""
    target = Path(os.path.abspath(target))
    real = target.resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if _within(src, real):
            kind = "is" if src == real else "contains"
            raise OutputError(f"{what} {_label(target)}: {kind} an input of this command ({src}); "
                              "writing there would destroy what it reads: choose another location")
        if src.is_dir() and _within(real, src):
            raise OutputError(f"{what} {_label(target)}: lies inside an input folder of this command ({src}): "
                              "choose a location outside it")
    if target.is_symlink() or target.exists():
        if not target.is_dir():
            if not force:
                raise OutputError(f"{what} {_label(target)}: is a file, not a directory; coldrec writes a directory "
                                  "there: choose another location (or pass --force to replace the file)")
        elif not owned(target, legacy) and not force:
            entries = sorted(p.name for p in target.iterdir())
            shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
            raise OutputError(f"{what} {_label(target)}: exists and was not written by coldrec (holds {shown}); "
                              "it would be replaced as a whole: choose an empty or new location, "
                              "or pass --force to replace it")
    _check_writable(target, what)
    return target


def _check_writable(target: Path, what: str) -> None:
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink():
            raise OutputError(f"{what} {_label(target)}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {_label(target)}: {parent} is a file, so no directory can be made below it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {_label(target)}: {parent} is not writable by this user")
    try:  # permissions are not the whole story (read-only mounts, /proc, root): try it
        os.rmdir(tempfile.mkdtemp(prefix=".coldrec-probe-", dir=parent))
    except OSError as exc:
        raise OutputError(f"{what} {_label(target)}: cannot create anything in {parent} ({exc.strerror})") from None


_TMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove temporary siblings of ``target`` left by runs that were killed (their process is gone)."""
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.iterdir():
        m = _TMP.match(p.name)
        if m and m["name"] == target.name and not _alive(int(m["pid"])):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def write_atomic(path: str | Path, text: str) -> Path:
    """Write a small text file so a reader sees the old content or the new, never a part: a temp
    file beside it, then one rename (pointers, reports other processes read while we write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside ``target``; on success it replaces ``target`` in one rename.

    For locations :func:`check` has approved, or for parts of a directory coldrec owns."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if target.is_symlink() or target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() and not old.is_symlink() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def owned_dir(target: str | Path, *, stage: str, inputs: Iterable[str | Path | None] = (), force: bool = False,
              legacy: Iterable[str] = (), what: str = "--out") -> Iterator[Path]:
    """:func:`check`, then :func:`atomic_dir`; the result carries coldrec's marker."""
    target = check(target, inputs=inputs, force=force, legacy=legacy, what=what)
    with atomic_dir(target) as tmp:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"stage": stage, "written": datetime.now(UTC).isoformat(timespec="seconds")}),
                                  encoding="utf-8")
