"""The project's progress bars: live on a terminal, a few whole lines in a log.

Why this module: tqdm redraws its bar in place with carriage returns, many times a second. On a
terminal that is one live line. When the output is a file or a pipe (CI output, Airflow task logs,
``make run > log 2>&1``) every redraw is kept, so a log becomes mostly bar fragments (a 200-step
fine-tune alone left ~400 of them). :func:`bar` therefore returns a plain tqdm when its stream is
a terminal, and otherwise a :class:`LogBar`: a tqdm that writes a whole, newline-terminated status
line at most once every ``COLDREC_PROGRESS_INTERVAL`` seconds (default 30), plus a final line when
the bar closes. Call sites keep tqdm's interface (iteration, ``update``, ``set_postfix``, ``close``,
``with``).

Third-party bars are not drawn through here; :func:`live` tells a call site whether to ask a
library for its own bar (e.g. sentence-transformers' ``show_progress_bar``), and
:func:`quiet_library_bars` switches Hugging Face transformers' loading bars off in a log.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm

INTERVAL_ENV = "COLDREC_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0


def interval_s() -> float:
    """Seconds between status lines in a log: ``$COLDREC_PROGRESS_INTERVAL``, default 30."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects nan
        warnings.warn(f"{INTERVAL_ENV}={raw!r} is not a number of seconds >= 0; using {DEFAULT_INTERVAL:g}",
                      stacklevel=2)
        return DEFAULT_INTERVAL
    return value


def live(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: stderr, where tqdm draws) is a terminal, so a live bar is wanted."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class LogBar(tqdm):  # type: ignore[misc]  # tqdm ships no types (and no stubs are installed): its class is Any
    """A tqdm for logs: whole status lines, at most one per ``interval`` seconds, and a final one.

    No carriage returns, no cursor movement, no bar glyphs: each line reads like
    ``fine-tune encoder:  45% 90/200 [02:31<03:04,  1.68s/it, loss=5.612]``.
    Lines are written when the bar is touched (iteration, ``update``, ``set_postfix``...) and the
    interval has passed since the last one; there is no background thread. The first line comes
    one interval after the start, so a bar shorter than the interval writes only its final line;
    that final line is written for ``leave=False`` bars too (a log keeps what a terminal erases).
    ``clock`` (seconds, monotonic) replaces the wall clock, for tests.
    """

    monitor_interval = 0  # no TMonitor thread: lines are paced here

    def __init__(self, *args: Any, interval: float | None = None,
                 clock: Callable[[], float] | None = None, **kwargs: Any):
        self.interval = interval_s() if interval is None else float(interval)
        # tqdm's own pacing only limits how often display() is asked (at most ~1/s); display() decides
        kwargs.setdefault("mininterval", min(self.interval, 1.0))
        kwargs.setdefault("miniters", 1)  # check the time on every step: no late lines after a slowdown
        super().__init__(*args, **kwargs)
        if clock is not None:
            self._time = clock
        if not self.disable:
            # (re)start the timers on the clock actually used; nothing has been counted yet
            self.start_t = self.last_print_t = self._time()
        self._next_line_t = getattr(self, "start_t", 0.0) + self.interval

    def _line(self, final: bool = False) -> str:
        d = self.format_dict
        if final:
            d["rate"] = None  # overall average rate (n / elapsed), as tqdm does on close
        d.update(ncols=0, bar_format=None)  # ncols=0: tqdm's bar-less "desc: 45% n/total [..]"
        line: str = self.format_meter(**d).replace("\r", " ").replace("\n", " ").rstrip()
        return line

    def _write(self, line: str) -> None:
        self.fp.write(line + "\n")
        flush = getattr(self.fp, "flush", None)
        if flush is not None:
            flush()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if not hasattr(self, "_next_line_t") or msg == "":  # during __init__, or a "clear" request
            return True
        now = self._time()
        if now < self._next_line_t:
            return True
        self._write(self._line() if msg is None else msg)
        self._next_line_t = now + self.interval
        return True

    def clear(self, nolock: bool = False) -> None:  # nothing drawn to erase (tqdm.write calls this)
        return None

    def moveto(self, n: int) -> None:  # no cursor movement in a log
        return None

    def close(self) -> None:
        if getattr(self, "disable", True):
            return
        try:
            with self._lock:
                self._write(self._line(final=True))
        except ValueError:  # the stream is already closed (interpreter shutdown): nothing to say
            pass
        finally:
            self.disable = True
            self._decr_instances(self)


def bar(iterable: Iterable[Any] | None = None, *, total: float | None = None, desc: str | None = None,
        unit: str = "it", leave: bool | None = True, disable: bool = False, file: IO[str] | None = None,
        interval: float | None = None, **kwargs: Any) -> tqdm:
    """A progress bar: plain (live) tqdm when ``file`` (default stderr) is a terminal, else a
    :class:`LogBar` writing a line at most every ``interval`` seconds (default
    ``$COLDREC_PROGRESS_INTERVAL``, 30). Other keyword arguments go to tqdm (``unit_scale``...)."""
    common = dict(total=total, desc=desc, unit=unit, leave=leave, disable=disable, file=file, **kwargs)
    if live(file):
        return tqdm(iterable, **common)
    return LogBar(iterable, interval=interval, **common)


@contextmanager
def quiet_library_bars(stream: IO[str] | None = None) -> Iterator[None]:
    """Within the block, Hugging Face transformers / hub progress bars (e.g. "Loading weights" when a
    model is loaded) are off when ``stream`` (default stderr) is not a terminal; their state is
    restored afterwards. These libraries draw through their own tqdm, with no per-call flag."""
    if live(stream):
        yield
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a training dependency
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    if was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
