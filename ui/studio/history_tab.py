"""The History tab: every run listed after a restart, its files and parameters, "use these
settings again" (each field restored by name into the tab it came from) and "open in
Review"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import gradio as gr

from ui.studio.feedback import GalleryItem, pct
from ui.studio.fields import UNCHANGED, Components, Field, Values, restored
from ui.studio.history import History, HistoryItem


class SettingsTab(Protocol):
    """A tab whose runs can be repeated: its kind is its history kind and its tab id."""

    kind: str
    fields: tuple[Field, ...]
    made: Components


class HistoryTab:
    kind, title = "history", "History"

    def __init__(self, history: History) -> None:
        self.history = history

    def list_history(self) -> tuple[list[list[Any]], Any]:
        items = self.history.items(limit=200)
        rows = []
        choices = []
        for it in items:
            prompt = str(it.params.get("prompt") or
                         (f"{len(it.params.get('prompts', []))} variation prompts"
                          if it.kind == "sheet" else ""))
            seeds = ", ".join(str(o.get("seed")) for o in it.outputs if o.get("seed") is not None)
            when = _when(it.created)
            rows.append([it.id, when, it.kind, prompt[:80], len(it.files), seeds[:60],
                         pct(it.summary.get("mean_similarity"))])
            choices.append((f"{when} · {it.kind} · {prompt[:40]}", it.id))
        return rows, gr.update(choices=choices, value=choices[0][1] if choices else None)

    @staticmethod
    def pick_row(evt: gr.SelectData) -> Any:
        """A click on a table row opens that item (its id is the row's first cell)."""
        row = evt.row_value or []
        return str(row[0]) if row else gr.skip()

    def show_history_item(self, item_id: str | None) -> tuple[list[GalleryItem], dict[str, Any]]:
        if not item_id:
            return [], {}
        item = self._get(item_id)
        gallery: list[GalleryItem] = []
        ref = item.reference_path()
        if ref is not None and ref.is_file():
            gallery.append((str(ref), "reference"))
        for path, out in zip(item.paths(), item.outputs):
            if path.is_file():
                gallery.append((str(path), str(out.get("caption", path.name))))
        return gallery, item.to_json()

    def _get(self, item_id: str) -> HistoryItem:
        try:
            return self.history.get(item_id)
        except KeyError:
            raise gr.Error(f"history item {item_id!r} not found (deleted?)",
                           title="Not found") from None

    def settings_of(self, item_id: str | None, tabs: Sequence[SettingsTab]) -> tuple[str, Values]:
        """(the tab a run came from, its field values by name)."""
        if not item_id:
            raise gr.Error("choose a history item first", title="No item")
        item = self._get(item_id)
        tab = next((t for t in tabs if t.kind == item.kind), None)
        if tab is None:
            raise gr.Error("a review has no generation settings; use “Open in Review”",
                           title="Nothing to reuse")
        return tab.kind, restored(tab.fields, item)

    def open_in_review(self, item_id: str | None) -> tuple[Any, Any, Any]:
        if not item_id:
            raise gr.Error("choose a history item first", title="No item")
        item = self._get(item_id)
        ref = item.reference_path()
        files = [str(p) for p in item.paths() if p.is_file()]
        return (str(ref) if ref and ref.is_file() else None, files, gr.Tabs(selected="review"))

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        with gr.Row():
            # Custom values: the choices are those of the last refresh, and an id from a
            # newer run (or pasted from the folder name) must still open.
            self.item = gr.Dropdown([], label="Item", elem_id="history-item", scale=3,
                                    allow_custom_value=True)
            self.refresh = gr.Button("Refresh", size="sm", elem_id="history-refresh", scale=1)
        self.table = gr.Dataframe(
            headers=["id", "when (UTC)", "kind", "prompt", "images", "seeds", "mean similarity"],
            label="History (newest first; click a row to open it)", interactive=False, elem_id="history-table",
            wrap=True, max_height=300)
        with gr.Row():
            self.gallery = gr.Gallery(label="Files", columns=4, height=360, object_fit="contain",
                                      elem_id="history-gallery", interactive=False, scale=2)
            self.params = gr.JSON(label="Parameters, seeds, timings, scores",
                                  elem_id="history-params", scale=1)
        with gr.Row():
            self.reuse = gr.Button("Use these settings again", variant="primary",
                                   elem_id="history-reuse")
            self.to_review = gr.Button("Open in Review", elem_id="history-to-review")

    def wire(self, tabs: gr.Tabs, settings_tabs: Sequence[SettingsTab],
             review_inputs: Sequence[Any]) -> Any:
        """Wires the tab; returns the "Open in Review" event, for Review to score after it."""
        self.refresh.click(self.list_history, outputs=[self.table, self.item],
                           api_name="list_history")
        self.table.select(self.pick_row, outputs=self.item, api_visibility="private")
        self.item.change(self.show_history_item, inputs=self.item,
                         outputs=[self.gallery, self.params], api_name="history_item")
        targets = [t.made[f.name] for t in settings_tabs for f in t.fields if f.kept]

        def reuse_settings(item_id: str | None) -> dict[Any, Any]:
            kind, values = self.settings_of(item_id, settings_tabs)
            made = next(t.made for t in settings_tabs if t.kind == kind)
            return {tabs: gr.Tabs(selected=kind),
                    **{made[name]: value for name, value in values.items() if value is not UNCHANGED}}

        self.reuse.click(reuse_settings, inputs=self.item, outputs=[tabs, *targets],
                         api_name="reuse_settings")
        return self.to_review.click(self.open_in_review, inputs=self.item,
                                    outputs=[*review_inputs, tabs], api_name="open_in_review")

    def on_load(self, app: gr.Blocks) -> None:
        app.load(self.list_history, outputs=[self.table, self.item], api_visibility="private")


def _when(created: str) -> str:
    """"2026-11-30T08:30:12.123456+00:00" as "2026-11-30 08:30"."""
    return created[:16].replace("T", " ")
