"""An image upload that lets the tab say what is wrong with a file that is not an image.

Gradio's Image opens every upload with Pillow before the event runs, so a file that is not
an image fails there with a bare "Error". This one hands such a file on as its path, and
the tab refuses it by the field, in words (ui/sheet.py's check_reference, Review's scorer).
"""

from __future__ import annotations

from typing import Any

import gradio as gr


class ImageInput(gr.Image):
    is_template = True  # drawn by Gradio's own Image component in the browser

    def preprocess(self, payload: Any) -> Any:
        try:
            return super().preprocess(payload)
        except Exception:  # Pillow's error: not an image; the tab words it
            path = getattr(payload, "path", None)
            if path is None:
                raise
            return str(path)
