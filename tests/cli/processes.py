"""A real `ryla` process for the tests that need one: on a pseudo-terminal (what a person
at a terminal sees), or on pipes with its stderr read line by line as it comes (to wait
for a message before the next step, e.g. a second Ctrl-C)."""

from __future__ import annotations

import os
import pty
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# a guard against a hung process, not a measure of speed
GUARD_S = 120.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def ryla_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RYLA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(TERM="xterm-256color", COLUMNS="160", PYTHONUNBUFFERED="1")
    return env


def run_on_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `ryla argv` with stdin, stdout and stderr on one pseudo-terminal; its exit code
    and everything it wrote there, escape sequences removed."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", *argv], cwd=cwd, env=ryla_env(),
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal (it ended)
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = process.wait(timeout=GUARD_S)
    return code, _ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


class RylaProcess:
    """`ryla argv` on pipes; `wait_for(text)` reads stderr until a line holds it."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "ui.cli", *argv], cwd=cwd,
                                        env=ryla_env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.err_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str) -> str:
        """The first stderr line, from here on, that contains `text`."""
        while True:
            try:
                line = self._lines.get(timeout=GUARD_S)
            except queue.Empty:
                raise AssertionError(f"ryla never wrote {text!r}; stderr: {''.join(self.err_lines)}") from None
            if line is None:
                raise AssertionError(f"ryla ended without writing {text!r}; stderr: "
                                     f"{''.join(self.err_lines)}")
            self.err_lines.append(line)
            if text in line:
                return line

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout, and all of stderr."""
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        code = self.process.wait(timeout=GUARD_S)
        while (line := self._lines.get(timeout=GUARD_S)) is not None:
            self.err_lines.append(line)
        return code, out, "".join(self.err_lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=GUARD_S)


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll `condition` until it is truthy (its value), or fail after the guard."""
    give_up = time.monotonic() + GUARD_S
    while not (value := condition()):
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        time.sleep(0.02)
    return value
