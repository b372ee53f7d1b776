"""What the studio shows about results and failures: error popups in a person's words,
timings, pass/fail badges and score summaries."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.client import BackendError, BackendUnreachable

GalleryItem = tuple[str, str]  # (file path, caption)


def backend_error(exc: BackendError) -> gr.Error:
    """The backend's message as a Gradio error; the title says what kind of failure."""
    # Gradio's toast shows the message, so what failed is said there, not only in the title.
    if isinstance(exc, BackendUnreachable):
        return gr.Error(f"Backend unreachable: {exc.message}", title="Backend unreachable")
    where = f" (field {exc.field})" if exc.field else ""
    return gr.Error(f"{exc.message}{where} [backend {exc.status} {exc.code}]",
                    title=f"Backend error {exc.status}")


def format_timings(timings: dict[str, float], round_trip_s: float | None = None) -> str:
    parts = []
    for key, value in timings.items():
        if key.endswith("_ms"):
            parts.append(f"{key[:-3]} {value / 1000:.2f} s")
        else:
            parts.append(f"{key} {value:.2f}")
    if round_trip_s is not None:
        parts.append(f"round trip {round_trip_s:.2f} s")
    return ", ".join(parts) or "-"


def badge(passed: bool, faces: int, readable: bool = True) -> str:
    if not readable:
        return "⚠ NOT AN IMAGE"
    if faces == 0:
        return "⚠ NO FACE"
    # Symbols from DejaVu Sans rather than emoji: they render on machines without an
    # emoji font (headless Linux, many servers).
    return "✔ PASS" if passed else "✘ FAIL"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def summary_text(s: dict[str, Any], title: str = "Sheet") -> str:
    share = s.get("pass_rate")
    share_text = "-" if share is None else f"{share * 100:.0f}%"
    no_face = f" · no face: {s['no_face']}" if s.get("no_face") else ""
    no_face += f" · not images: {s['unreadable']}" if s.get("unreadable") else ""
    return (f"**{title}:** {s.get('count', 0)} images · mean similarity "
            f"**{pct(s.get('mean_similarity'))}** · min **{pct(s.get('min_similarity'))}** · "
            f"pass {s.get('passed', 0)}/{s.get('count', 0)} (**{share_text}**) at distance ≤ "
            f"{s.get('threshold')}{no_face}")
