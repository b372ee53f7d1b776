"""Warm on intent (docs/warm.md): the studio asks the backend for a GPU (`POST /warm`) when
a creator opens it, starts typing a prompt or uploads a reference, at most once per
scaledown window per page, and the header says "GPU starting, ready in ~N s", then
"GPU ready".

The page guards itself: a small script remembers when this page last asked and clicks
the hidden warm trigger only once the window has passed, so typing costs no request to
the studio. The server keeps the same window per page (a `gr.State`) as a second guard.
"""

from __future__ import annotations

import html
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ui.client import BackendError, RylaClient

DEFAULT_WINDOW_S = 300.0  # Modal's scaledown window by default (RYLA_MODAL_SCALEDOWN_S)


@dataclass(frozen=True)
class PrewarmSettings:
    enabled: bool = True
    window_s: float = DEFAULT_WINDOW_S

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "PrewarmSettings":
        """RYLA_STUDIO_PREWARM=0 turns it off; the window is RYLA_STUDIO_PREWARM_WINDOW_S,
        else the deployment's RYLA_MODAL_SCALEDOWN_S, else 300 s: a GPU asked for once
        stays up that long anyway."""
        env = os.environ if environ is None else environ
        enabled = env.get("RYLA_STUDIO_PREWARM", "1").strip().lower() not in ("0", "false", "no", "off")
        window = env.get("RYLA_STUDIO_PREWARM_WINDOW_S") or env.get("RYLA_MODAL_SCALEDOWN_S")
        try:
            window_s = float(window) if window else DEFAULT_WINDOW_S
        except ValueError:
            raise SystemExit(f"ryla-studio: the prewarm window must be a number of seconds, not {window!r}") from None
        return cls(enabled=enabled, window_s=max(1.0, window_s))


class GpuState:
    """The GPU as the backend last described it (`/warm` or `/health`), shared by the
    header and the tabs' progress lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.gpu: str | None = None
        self._ready_at: float | None = None

    def heard(self, answer: Any) -> None:
        if not isinstance(answer, dict) or answer.get("gpu") not in ("cold", "starting", "warm"):
            return
        with self._lock:
            previous, self.gpu = self.gpu, str(answer["gpu"])
            ready_in = answer.get("ready_in_s")
            if isinstance(ready_in, (int, float)):
                self._ready_at = self.clock() + float(ready_in)
            elif self.gpu != "starting" or previous != "starting":
                # /health carries no ready_in_s: a start already counted keeps its clock
                self._ready_at = None

    def starting_in(self) -> float | None:
        """Seconds until the GPU should be ready, while it is starting."""
        with self._lock:
            if self.gpu != "starting" or self._ready_at is None:
                return None
            return max(1.0, self._ready_at - self.clock())

    def header_html(self) -> str:
        starting = self.starting_in()
        if self.gpu == "warm":
            text, css = "GPU ready", "ryla-up"
        elif self.gpu == "starting":
            text = (f"GPU starting, ready in ~{math.ceil(starting)} s" if starting is not None
                    else "GPU starting")
            css = "ryla-warn"
        elif self.gpu == "cold":
            text, css = "GPU cold: the first image starts it", "ryla-warn"
        else:
            return ""
        return f'<span class="ryla-status {css}">● {html.escape(text)}</span>'


class Prewarm:
    """`POST /warm` on a creator's intent, at most once per window per page."""

    def __init__(self, client: RylaClient, gpu: GpuState, settings: PrewarmSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.gpu, self.settings, self.clock = client, gpu, settings, clock

    def warm(self, last_at: float | None) -> tuple[str, float | None]:
        """(the header's GPU line, when this page last asked). Asks again only once the
        window has passed since this page's last ask."""
        now = self.clock()
        if not self.settings.enabled or (last_at is not None and now - last_at < self.settings.window_s):
            return self.gpu.header_html(), last_at
        try:
            self.gpu.heard(self.client.warm())
        except BackendError:
            return self.gpu.header_html(), last_at  # the status line says the backend is down
        return self.gpu.header_html(), now

    def page_script(self) -> str:
        """The page's guard: on open, on typing in a prompt and on an upload, click the
        hidden trigger once per window. Typing fires no request in between."""
        window_ms = int(self.settings.window_s * 1000)
        return f"""() => {{
  const windowMs = {window_ms};
  let last = null;
  const ask = () => {{
    const now = Date.now();
    if (last !== null && now - last < windowMs) return;
    const trigger = document.querySelector('#ryla-warm-trigger');
    if (!trigger) return;
    last = now;
    trigger.click();
  }};
  const isPrompt = (el) => el && el.closest && el.closest('[id$="-prompt"], [id$="-prompts"]');
  document.addEventListener('input', (e) => {{ if (isPrompt(e.target)) ask(); }}, true);
  document.addEventListener('change', (e) => {{
    if (e.target && e.target.type === 'file') ask();
  }}, true);
  document.addEventListener('drop', () => ask(), true);
  const opened = () => document.querySelector('#ryla-warm-trigger') ? ask() : setTimeout(opened, 200);
  opened();
}}"""
