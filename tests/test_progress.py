"""Progress bars of long commands (tqdm): on a terminal's stderr only, never with ``--quiet``, never on
stdout (which carries the folder path scripts read), and cleared before the closing lines, also
when the command is interrupted."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from sim.cli import main, progress_bar

TINY = ["population.size=2000", "horizon=30", "--no-plots"]


class Terminal(io.StringIO):
    """stderr as a terminal: what was written, and what stays on the screen."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        return screen(self.getvalue())


def screen(text: str) -> list[str]:
    """The lines a terminal shows after ``text``: a carriage return moves back to the line's start,
    later characters overwrite earlier ones."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        shown: list[str] = []
        for part in line.split("\r"):
            shown[:len(part)] = part
        lines.append("".join(shown).rstrip())
    return [line for line in lines if line]


def _run(capsys, monkeypatch, tmp_path, *args, tty: bool):
    err = Terminal() if tty else None
    if err is not None:
        monkeypatch.setattr(sys, "stderr", err)
    code = main(["run", *TINY, f"out={tmp_path}", *args])
    captured = capsys.readouterr()
    return code, captured.out, err.getvalue() if err is not None else captured.err, err


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    code, out, err, _ = _run(capsys, monkeypatch, tmp_path, tty=False)
    assert code == 0
    assert out.splitlines() == [out.strip()] and Path(out.strip()).is_dir()  # stdout: the folder path only
    assert "\r" not in err and "day/s" not in err and "%|" not in err
    assert "users acquired" in err  # the closing line is still there


def test_a_terminal_shows_a_bar_cleared_before_the_closing_line(tmp_path, capsys, monkeypatch):
    code, out, err, terminal = _run(capsys, monkeypatch, tmp_path, tty=True)
    assert code == 0 and Path(out.strip()).is_dir() and out.count("\n") == 1
    assert "default seed 0:" in err and "/30 [" in err and "day/s" in err  # tqdm's bar, in days
    lines = terminal.screen()
    assert len(lines) == 1 and lines[0].startswith("default: ") and "users acquired" in lines[0]  # no bar left on screen


def test_quiet_draws_no_bar_even_on_a_terminal(tmp_path, capsys, monkeypatch):
    code, out, err, _ = _run(capsys, monkeypatch, tmp_path, "-q", tty=True)
    assert code == 0 and Path(out.strip()).is_dir()
    assert err == ""


def test_a_bar_learns_its_total_and_counts_what_is_done(monkeypatch):
    """Commands whose total is known only once the work starts (check, sensitivity) pass it on the
    first update; ``done`` is a running count, not an increment."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar("check", unit="run") as advance:
        advance(0, 4)
        advance(1, 4)
        advance(3, 4)
        time.sleep(0.15)  # redrawn at most ten times a second
        advance(4, 4)
    assert "4/4" in terminal.getvalue() and terminal.screen() == []


def test_a_bar_is_cleared_when_the_block_fails(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(KeyboardInterrupt), progress_bar("run", 10, unit="day") as advance:
        advance(3)
        raise KeyboardInterrupt
    assert "/10 [" in terminal.getvalue() and terminal.screen() == []


def _read_until(fd: int, proc: subprocess.Popen, stop, timeout: float) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not stop(data):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_ctrl_c_on_a_terminal_leaves_a_clean_line(tmp_path):
    """A real pseudo-terminal on stderr: the bar is drawn; Ctrl+C clears it and the one line saying
    so is all that stays on screen; stdout gets nothing."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    cmd = [sys.executable, "-m", "sim.cli", "run", "population.size=20000", "horizon=3000", f"out={tmp_path}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    try:
        # the bar drawn twice: the simulation is under way (not a signal inside the bar's first drawing)
        drawn = _read_until(master, proc, lambda data: data.count(b"/3000 [") >= 2, timeout=120)
        assert drawn.count(b"/3000 [") >= 2, drawn
        proc.send_signal(signal.SIGINT)
        rest = _read_until(master, proc, lambda data: b"nothing was written" in data, timeout=60)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out == b""
    assert screen((drawn + rest).decode()) == ["interrupted: nothing was written"]
