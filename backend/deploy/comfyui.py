"""ComfyUI's command line, defined once, and ComfyUI as a child process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from backend.deploy.layout import ContainerLayout

# What the deployment asks of ComfyUI beyond its defaults, each measured on the GPU
# rehearsal (docs/performance.md):
# - no API nodes: they call paid web services this deployment never uses, and skipping
#   their import shortens every start;
# - an LRU cache of node results large enough for every pipeline's loaders: a loaded model
#   stays referenced (so resident in GPU memory while it fits, else offloaded to RAM)
#   instead of being dropped when another graph runs, so switching Dev, Schnell, LoRAs
#   and PuLID does not read a model from the Volume again;
# - live previews (GET /jobs/{id}/events): --preview-method taesd uses TAESD when its
#   decoder is in models/vae_approx, else latent2rgb (no extra model); v0.12.1's `auto`
#   always means latent2rgb.
COMFYUI_ARGS = ("--disable-api-nodes", "--cache-lru", "128", "--preview-method", "taesd")


def comfyui_command(layout: ContainerLayout, extra_args: Sequence[str] = ()) -> list[str]:
    """ComfyUI's server on loopback only (nothing but this container talks to it); run it
    with cwd=layout.comfyui_dir. The yaml it names must exist (write_extra_model_paths)."""
    # this interpreter: ComfyUI's requirements are installed beside the backend's
    return [sys.executable, f"{layout.comfyui_dir}/main.py", "--listen", "127.0.0.1",
            "--port", str(layout.comfyui_port), "--disable-auto-launch",
            "--extra-model-paths-config", str(layout.extra_model_paths),
            *COMFYUI_ARGS, *extra_args]


def wait_for_comfyui(proc: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
    """Return once ComfyUI answers GET /system_stats; raise if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/system_stats", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise TimeoutError(f"ComfyUI did not answer on {url} within {timeout_s:.0f} s")


class ComfyUIProcess:
    """A ComfyUI server started as a child process."""

    def __init__(self, command: Sequence[str], cwd: str | Path, url: str) -> None:
        self.command = list(command)
        self.cwd = str(cwd)
        self.url = url.rstrip("/")
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_layout(cls, layout: ContainerLayout, extra_args: Sequence[str] = ()) -> "ComfyUIProcess":
        return cls(comfyui_command(layout, extra_args), cwd=layout.comfyui_dir, url=layout.comfyui_url)

    def start(self, ready_timeout_s: float, **popen: object) -> float:
        """Start ComfyUI and wait until it answers; returns the seconds that took."""
        started = time.monotonic()
        self.proc = subprocess.Popen(self.command, cwd=self.cwd, **popen)  # type: ignore[call-overload]
        self.wait_ready(ready_timeout_s)
        return time.monotonic() - started

    def wait_ready(self, timeout_s: float) -> None:
        if self.proc is None:
            raise RuntimeError("ComfyUI was not started")
        wait_for_comfyui(self.proc, self.url, timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
