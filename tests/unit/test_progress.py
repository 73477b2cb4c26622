"""coldrec.core.progress: live bars on a terminal, a few whole lines in a log (issue 15)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tqdm import tqdm

from coldrec.core import progress

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(text: str) -> list[str]:
    assert "\r" not in text and "\x1b" not in text  # no redraws, no cursor movement
    assert text == "" or text.endswith("\n")  # whole lines only
    return text.splitlines()


def test_log_stream_gets_a_handful_of_whole_lines():
    out, clock = io.StringIO(), FakeClock()
    b = progress.bar(total=10_000, desc="fine-tune", file=out, interval=30, clock=clock)
    assert isinstance(b, progress.LogBar)
    for i in range(10_000):  # 100 s at 10 ms a step
        clock.t = 1000.0 + (i + 1) / 100
        b.update(1)
        b.set_postfix(loss=f"{i / 1000:.3f}")  # refreshes on every call, like the fine-tune loop
    b.close()
    lines = _lines(out.getvalue())
    assert 3 <= len(lines) <= 5, lines  # at ~30 s, ~60 s, ~90 s, and the final line
    assert all(line.startswith("fine-tune: ") and "loss=" in line for line in lines)
    assert "30%" in lines[0] and "[00:30<" in lines[0]
    assert lines[-1].startswith("fine-tune: 100% 10000/10000 [01:40<00:00")
    assert "█" not in out.getvalue()  # no bar glyphs in a log


def test_iteration_without_total_and_final_line():
    out, clock = io.StringIO(), FakeClock()

    def items():
        for i in range(5000):
            clock.t = 1000.0 + (i + 1) / 50
            yield i

    assert sum(progress.bar(items(), desc="scan", unit="row", file=out, interval=30, clock=clock)) == sum(range(5000))
    lines = _lines(out.getvalue())
    assert 3 <= len(lines) <= 5, lines
    assert lines[-1].startswith("scan: 5000row [01:40, 50.00row/s]")


def test_short_bar_writes_only_its_final_line_even_when_not_left():
    out = io.StringIO()
    for _ in progress.bar(range(3), desc="cache", file=out, interval=30, leave=False):
        pass
    assert _lines(out.getvalue()) == [out.getvalue().strip()]
    assert out.getvalue().startswith("cache: 100% 3/3 [")


def test_disabled_bar_writes_nothing_and_close_is_idempotent():
    out = io.StringIO()
    b = progress.bar(total=5, file=out, disable=True)
    b.update(5)
    b.close()
    b = progress.bar(total=5, file=out, interval=0)
    b.update(5)
    b.close()
    b.close()
    assert _lines(out.getvalue())[-1].startswith("100% 5/5")
    assert sum("5/5" in line for line in out.getvalue().splitlines()) == 2  # one update line + one final


def test_interval_from_environment(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "5")
    out, clock = io.StringIO(), FakeClock()
    b = progress.bar(total=100, desc="x", file=out, clock=clock)
    for _ in range(100):  # 100 s
        clock.t += 1
        b.update(1)
    b.close()
    assert 19 <= len(_lines(out.getvalue())) <= 21  # every 5 s, plus the final line

    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    with pytest.warns(UserWarning, match=progress.INTERVAL_ENV):
        assert progress.interval_s() == progress.DEFAULT_INTERVAL
    monkeypatch.delenv(progress.INTERVAL_ENV)
    assert progress.interval_s() == progress.DEFAULT_INTERVAL


def test_tqdm_write_beside_a_log_bar_stays_line_based():
    out, clock = io.StringIO(), FakeClock()
    with progress.bar(total=2, desc="eval", file=out, interval=30, clock=clock) as b:
        b.update(1)
        tqdm.write("a message", file=out)
        b.update(1)
    assert _lines(out.getvalue()) == ["a message", out.getvalue().splitlines()[-1]]


def test_terminal_stream_gets_a_plain_live_tqdm():
    out = TTYStream()
    b = progress.bar(range(50), desc="live", file=out, mininterval=0)
    assert type(b) is tqdm
    for _ in b:
        pass
    text = out.getvalue()
    assert text.count("\r") > 10  # redrawn in place, as tqdm does
    assert "|" in text and "50/50" in text  # the bar itself (ASCII on a non-UTF-8 stream)


def test_default_stream_is_stderr(capsys):
    assert not progress.live()  # pytest captures stderr: not a terminal
    for _ in progress.bar(range(3), desc="default", interval=30):
        pass
    assert capsys.readouterr().err.startswith("default: 100% 3/3 [")


def test_end_to_end_log_file(tmp_path):
    """A real process with stdout and stderr sent to a file, as in `make run > log 2>&1`."""
    script = textwrap.dedent("""
        import time
        from coldrec.core.progress import bar
        print("start", flush=True)
        b = bar(total=200, desc="steps")
        for i in range(200):
            time.sleep(0.01)
            b.update(1)
            b.set_postfix(i=i)
        b.close()
        print("done", flush=True)
    """)
    log = tmp_path / "run.log"
    env = {**os.environ, progress.INTERVAL_ENV: "0.5"}
    with log.open("w") as fh:
        subprocess.run([sys.executable, "-c", script], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                       check=True, timeout=120)
    lines = _lines(log.read_text())
    bars = [line for line in lines if line.startswith("steps:")]
    assert lines[0] == "start" and lines[-1] == "done"
    assert 1 <= len(bars) < 10, bars
    assert bars[-1].startswith("steps: 100% 200/200 [")
