"""`make demo`: the studio without a GPU. Starts the ComfyUI test double (every model
"installed" as a placeholder in its models folder), a `ryla-backend` over it and the studio
with its demo banner, then waits; Ctrl-C stops all three.

    python -m tests.demo [--port 7860] [--dir .ryla/demo]

The images are placeholders the double draws (an identity graph pastes the reference face
in, so that Review scores pass): every tab works, no real model runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.builders import free_port

START_TIMEOUT_S = 120.0


def _wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    give_up = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise SystemExit(f"demo: {what} exited with code {process.returncode}; see above")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"demo: {what} did not answer at {url} within {START_TIMEOUT_S:.0f} s")


@contextmanager
def running_demo(port: int, base: Path) -> Iterator[str]:
    """The double, a backend and the studio (with its demo banner) as processes; yields the
    studio's URL once all three answer, and stops them on leaving."""
    base = base.resolve()
    comfy_port, backend_port = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RYLA_API_TOKEN", None)  # the demo backend is open on loopback
    python = sys.executable
    commands = [
        ("the ComfyUI double", [python, "-m", "tests.comfyui_double", "--port", str(comfy_port),
                                "--dir", str(base / "comfyui")],
         f"http://127.0.0.1:{comfy_port}/system_stats"),
        ("the backend", [python, "-m", "backend.server", "--port", str(backend_port),
                         "--comfyui-url", f"http://127.0.0.1:{comfy_port}",
                         "--models-dir", str(base / "comfyui" / "models"),
                         "--data-dir", str(base / "backend"), "--log-level", "warning"],
         f"http://127.0.0.1:{backend_port}/health"),
        ("the studio", [python, "-m", "ui.studio.app", "--demo", "--port", str(port),
                        "--backend-url", f"http://127.0.0.1:{backend_port}",
                        "--data-dir", str(base / "history")],
         f"http://127.0.0.1:{port}/"),
    ]
    started: list[subprocess.Popen] = []
    try:
        for what, command, ready_url in commands:
            process = subprocess.Popen(command, env=env)
            started.append(process)
            _wait_for(ready_url, process, what)
        yield f"http://127.0.0.1:{port}/"
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7860, help="the studio's port (default 7860)")
    parser.add_argument("--dir", type=Path, default=Path(".ryla/demo"),
                        help="the demo's folders: ComfyUI's, the backend's and the history")
    args = parser.parse_args(argv)
    try:
        with running_demo(args.port, args.dir) as url:
            print(f"\nRYLA Studio demo: open {url}  (Ctrl-C stops it)", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
