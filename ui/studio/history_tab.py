"""The History tab: every run listed after a restart, its files and parameters, "use these
settings again" (each field restored by name into the tab it came from) and "open in
Review"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import gradio as gr

from ui.client import ENDED, BackendError, RylaClient, extension_for, sniff_content_type
from ui.studio.feedback import GalleryItem, pct
from ui.studio.fields import UNCHANGED, Components, Field, Values, restored
from ui.studio.history import History, HistoryItem


class SettingsTab(Protocol):
    """A tab whose runs can be repeated: its kind is its history kind and its tab id."""

    kind: str
    fields: tuple[Field, ...]
    made: Components


# History follows the backend's jobs live: every page polls this often (cheap: a folder
# listing and one GET /jobs), and redraws only what changed.
LIVE_EVERY_S = 2.0
JOBS_SHOWN = 20
STATE_WORDS = {"running": "running", "done": "done", "stopped": "stopped",
               "interrupted": "interrupted: the studio stopped before its jobs ended"}


class HistoryTab:
    kind, title = "history", "History"

    def __init__(self, history: History, client: RylaClient | None = None) -> None:
        self.history, self.client = history, client

    def list_history(self) -> tuple[list[list[Any]], Any]:
        rows, choices = self._rows()
        return rows, gr.update(choices=choices, value=choices[0][1] if choices else None)

    def _rows(self) -> tuple[list[list[Any]], list[tuple[str, str]]]:
        items = self.history.items(limit=200)
        rows = []
        choices = []
        for it in items:
            if it.state == "running" and it.id not in self.history.followed:
                it = self.settle(it)
            prompt = str(it.params.get("prompt") or
                         (f"{len(it.params.get('prompts', []))} variation prompts"
                          if it.kind == "sheet" else ""))
            seeds = ", ".join(str(o.get("seed")) for o in it.outputs if o.get("seed") is not None)
            when = _when(it.created)
            rows.append([it.id, when, it.kind, prompt[:80], len(it.files), seeds[:60],
                         pct(it.summary.get("mean_similarity")), _state_text(it)])
            choices.append((f"{when} · {it.kind} · {prompt[:40]}", it.id))
        return rows, choices

    def settle(self, item: HistoryItem) -> HistoryItem:
        """A run left "running" by a studio that stopped: its jobs' images fetched from
        the backend (`/jobs/{id}/outputs/0`), then "interrupted" once every job ended."""
        if self.client is None or item.folder is None:
            return item
        changed = False
        for job in item.jobs:
            if job.get("file") or job.get("status") in ("failed", "cancelled"):
                continue
            try:
                now = self.client.job(str(job["id"]))
                if now.get("status") == "succeeded" and now.get("outputs"):
                    data = self.client.output(str(job["id"]), 0)
                    name = f"job-{len(item.files):03d}{extension_for(sniff_content_type(data))}"
                    (item.folder / name).write_bytes(data)
                    item.files.append(name)
                    item.outputs.append({"seed": now.get("seed"), "job_id": job["id"],
                                         "caption": f"seed {now.get('seed')} · fetched from the backend"})
                    job["file"] = name
            except BackendError:
                return item  # the backend is away: settled at a later look
            changed = changed or job.get("status") != now.get("status")
            job["status"] = now.get("status")
        if all(job.get("status") in ENDED for job in item.jobs):
            item.state, changed = "interrupted", True
        if changed:
            self.history.update(item)
        return item

    def live(self, shown: str | None) -> tuple[Any, Any, Any, str | None]:
        """The timer's look: history and backend jobs, redrawn only when they changed."""
        rows, choices = self._rows()
        jobs = self.list_jobs()
        digest = json.dumps([rows, jobs], sort_keys=True, default=str)
        if digest == shown:
            return gr.skip(), gr.skip(), gr.skip(), shown
        # The choices only: the creator's pick stays where it is.
        return rows, gr.update(choices=choices), jobs, digest

    def list_jobs(self) -> list[list[Any]]:
        """The backend's latest jobs, whoever started them (another page, `ryla`)."""
        if self.client is None:
            return []
        try:
            jobs = self.client.jobs(limit=JOBS_SHOWN)
        except BackendError:
            return []
        rows = []
        for job in jobs:
            progress = job.get("progress") or {}
            step = (f"step {progress['step']} of {progress['steps']}"
                    if progress.get("step") is not None and progress.get("steps") else "")
            rows.append([str(job.get("id")), str(job.get("route")), str(job.get("status")),
                         f"{float(progress.get('fraction') or 0) * 100:.0f} % {step}".strip(),
                         _when(str(job.get("created_at") or ""))])
        return rows

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
            headers=["id", "when (UTC)", "kind", "prompt", "images", "seeds",
                     "mean similarity", "status"],
            label="History (newest first, live; click a row to open it)", interactive=False,
            elem_id="history-table", wrap=True, max_height=300)
        with gr.Row():
            self.gallery = gr.Gallery(label="Files", columns=4, height=360, object_fit="contain",
                                      elem_id="history-gallery", interactive=False, scale=2)
            self.params = gr.JSON(label="Parameters, seeds, timings, scores",
                                  elem_id="history-params", scale=1)
        with gr.Row():
            self.reuse = gr.Button("Use these settings again", variant="primary",
                                   elem_id="history-reuse")
            self.to_review = gr.Button("Open in Review", elem_id="history-to-review")
        self.jobs = gr.Dataframe(headers=["job", "route", "status", "progress", "created (UTC)"],
                                 label="Jobs on the backend (newest first, live: from any page "
                                       "or `ryla`)", interactive=False, elem_id="history-jobs",
                                 wrap=True, max_height=260)
        self.timer = gr.Timer(LIVE_EVERY_S)
        self.shown = gr.State(None)

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
        self.timer.tick(self.live, inputs=self.shown,
                        outputs=[self.table, self.item, self.jobs, self.shown],
                        show_progress="hidden", api_visibility="private")


def _state_text(item: HistoryItem) -> str:
    words = STATE_WORDS.get(item.state, item.state)
    if item.state == "running" and item.jobs:
        ended = sum(job.get("status") in ENDED for job in item.jobs)
        return f"{words}: {ended} of {len(item.jobs)} jobs ended"
    return words


def _when(created: str) -> str:
    """"2026-11-30T08:30:12.123456+00:00" as "2026-11-30 08:30"."""
    return created[:16].replace("T", " ")
