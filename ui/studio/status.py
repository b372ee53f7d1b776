"""The header's backend status line."""

from __future__ import annotations

import html
from typing import Any

from ui.client import BackendError, BackendUnreachable, RylaClient
from ui.studio.warm import GpuState


def backend_status(client: RylaClient, gpu: GpuState | None = None) -> str:
    """An HTML status line: state, URL and, when down, what still works. `gpu` hears
    /health's GPU state (the header's GPU line)."""
    url = html.escape(client.base_url)
    try:
        health = client.health()
    except BackendUnreachable as exc:
        return (f'<span class="ryla-status ryla-down" title="{html.escape(exc.message)}">'
                f"● Backend unreachable</span> at <code>{url}</code>: generation is "
                "unavailable; Review and History still work.")
    except BackendError as exc:
        return (f'<span class="ryla-status ryla-warn">● Backend answered {exc.status}</span> '
                f"at <code>{url}</code> ({html.escape(exc.code)}): {html.escape(exc.message)}")
    if gpu is not None:
        gpu.heard(health)
    state = str(health.get("status", "ok")) if isinstance(health, dict) else "ok"
    css = "ryla-up" if state == "ok" else "ryla-warn"
    return (f'<span class="ryla-status {css}">● Backend {html.escape(state)}</span> at '
            f"<code>{url}</code>{_generation_note(health)}{_pipelines_note(health)}")


def _pipelines_note(health: Any) -> str:
    """Which pipelines can run, and which wait for an operator to install models: /health's
    `pipelines` map (every model file of a pipeline installed or not), so the status check
    stays one cheap request."""
    ready = health.get("pipelines") if isinstance(health, dict) else None
    if not isinstance(ready, dict) or not ready:
        return ""
    ok = [name for name, yes in ready.items() if yes]
    missing = [name for name, yes in ready.items() if not yes]
    parts = [f'<span class="ryla-ready">ready: {html.escape(", ".join(ok) or "none")}</span>']
    if missing:
        parts.append(f'<span class="ryla-missing">models missing (an operator installs them): '
                     f'{html.escape(", ".join(missing))}</span>')
    return " · " + " · ".join(parts)


def _generation_note(health: Any) -> str:
    """What /health says about generation, e.g. a Modal GPU that will cold-start. The
    backend learns it without waking a GPU, so the status check is free to repeat."""
    generation = health.get("generation") if isinstance(health, dict) else None
    if not isinstance(generation, dict):
        return ""
    state = str(generation.get("state") or "")
    if state == "unavailable":
        return ": ComfyUI is not reachable, generation will fail"
    message = generation.get("message")
    return f": {html.escape(str(message))}" if message else ""
