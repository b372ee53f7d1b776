"""Image sizes as the studio offers them: presets, and any "W×H" a history item holds."""

from __future__ import annotations

import re

import gradio as gr

from ui.studio.fields import Field, Values
from ui.studio.history import HistoryItem

# (label, width, height). Multiples of 16 as the backend requires; the first is the default.
SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "1024×1024 square": (1024, 1024),
    "832×1216 portrait": (832, 1216),
    "1216×832 landscape": (1216, 832),
    "768×1344 tall": (768, 1344),
    "1344×768 wide": (1344, 768),
    "512×512 draft": (512, 512),
}
DEFAULT_SIZE = next(iter(SIZE_PRESETS))


def parse_size(label: str | None) -> tuple[int, int]:
    """(width, height) from a preset label or any "W×H" / "WxH" text."""
    if not label:
        return SIZE_PRESETS[DEFAULT_SIZE]
    if label in SIZE_PRESETS:
        return SIZE_PRESETS[label]
    match = re.search(r"(\d+)\s*[×xX]\s*(\d+)", label)
    if not match:
        raise gr.Error(f"size {label!r} is not WIDTH×HEIGHT, e.g. 1024×1024", title="Invalid size")
    return int(match.group(1)), int(match.group(2))


def size_label(width: int, height: int) -> str:
    for label, size in SIZE_PRESETS.items():
        if size == (width, height):
            return label
    return f"{width}×{height}"


def _store(label: str | None) -> Values:
    width, height = parse_size(label)
    return {"size": label, "width": width, "height": height}


def _restore(item: HistoryItem) -> str:
    p = item.params
    return p.get("size") or size_label(int(p.get("width", 1024)), int(p.get("height", 1024)))


def size_field(**kwargs: object) -> Field:
    """The size dropdown: one choice that fills the request's width and height."""
    return Field("size", "dropdown", label="Size", choices=tuple(SIZE_PRESETS), value=DEFAULT_SIZE,
                 store=_store, restore=_restore, **kwargs)  # type: ignore[arg-type]
