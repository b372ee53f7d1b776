"""The LoRA tab: the LoRA store (list, upload) and Flux Dev with a character LoRA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import BaseModel

from ui.client import BackendError
from ui.studio.action import ActionPanel, JobsTab
from ui.studio.batch import GENERATION_EVENT, PRIVATE, Batch, generate_batch
from ui.studio.feedback import backend_error
from ui.studio.fields import Field, Values, by_name, inputs, place, request_values, stored
from ui.studio.problems import FieldProblem, Notice
from ui.studio.seeds import seed_field
from ui.studio.sizes import size_field
from workflows.request_models import FluxLoraRequest

FIELDS: tuple[Field, ...] = (
    Field("lora_id", "dropdown", FluxLoraRequest, label="LoRA", elem="choice", choices=(),
          row="lora", help="the character: upload its LoRA below if it is not listed"),
    Field("trigger_word", "text", FluxLoraRequest, label="Trigger word (applied to the prompt)",
          elem="trigger", row="lora"),
    Field("lora_strength", "slider", FluxLoraRequest, step=0.05, elem="strength"),
    Field("prompt", "text", FluxLoraRequest, label="Prompt", options={"lines": 3}),
    size_field(row="sampling"),
    Field("steps", "slider", FluxLoraRequest, row="sampling"),
    Field("guidance", "slider", FluxLoraRequest, step=0.1, row="sampling"),
    seed_field(row="seed"),
    Field("batch", "slider", value=1, minimum=1, maximum=8, step=1, label="Batch count",
          row="seed", cast=lambda value: int(value or 1)),
)


class LoraTab(JobsTab):
    kind, title = "lora", "LoRA"

    FIELDS = FIELDS

    def _generate(self, values: Values, session: str | None) -> Iterator[dict[Any, Any]]:
        if not values.get("lora_id"):
            raise FieldProblem("lora_id", "choose a LoRA (refresh the list, or upload one)")
        params = {"tab": self.kind, **stored(self.fields, values)}
        # The backend applies the trigger word (SPEC /flux-lora `trigger_word`), so the
        # prompt is sent as typed: adding it here too would repeat it.
        fields = request_values(params, FluxLoraRequest)

        def make(image_seed: int | None) -> BaseModel:
            return FluxLoraRequest(**{**fields, "seed": image_seed})

        batch: Batch = generate_batch(self.client, self.history, self.kind, make,
                                      params.get("seed"), params.get("batch", 1), params,
                                      self.running, session, self.gpu)
        for gallery, rows, _, line in batch:
            yield {self.gallery: gallery, self.details: rows, self.panel.progress: line}

    # -- the store -----------------------------------------------------------------------

    def _lora_rows(self) -> list[list[str]]:
        try:
            loras = self.client.loras()
        except BackendError as exc:
            raise backend_error(exc) from None
        return [[str(l.get("id", "")), str(l.get("trigger_word") or "")] for l in loras]

    def list_loras(self) -> tuple[list[list[str]], Any, str]:
        """The table, the LoRA choice (first one picked) and its trigger word."""
        rows = self._lora_rows()
        ids = [row[0] for row in rows]
        return (rows, gr.update(choices=ids, value=ids[0] if ids else None),
                rows[0][1] if rows else "")

    def list_loras_quietly(self) -> tuple[list[list[str]], Any, str]:
        """As list_loras, but an unreachable backend gives an empty list (page load)."""
        try:
            return self.list_loras()
        except gr.Error:
            return [], gr.update(choices=[], value=None), ""

    @staticmethod
    def trigger_for(lora_id: str | None, table: Any) -> str:
        """The trigger word of the chosen LoRA, from the listed table."""
        for row in _table_rows(table):
            if row and str(row[0]) == lora_id:
                return str(row[1])
        return ""

    def upload_lora(self, file: str | None, lora_id: str, trigger_word: str,
                    progress: gr.Progress = gr.Progress()) -> tuple[str, list[list[str]], Any, Any]:
        if not file:
            raise gr.Error("choose a .safetensors file to upload", title="No file")
        if not lora_id or not lora_id.strip():
            raise gr.Error("give the LoRA an id (letters, digits, _ and -)", title="No id")
        progress(0.1, desc="Uploading")
        try:
            info = self.client.upload_lora(lora_id.strip(), Path(file), trigger_word or "")
        except BackendError as exc:
            raise backend_error(exc) from None
        rows = self._lora_rows()
        uploaded_id = str(info.get("id") or lora_id.strip())
        return (f"Uploaded **{uploaded_id}** (trigger word: `{trigger_word or '-'}`)", rows,
                gr.update(choices=[row[0] for row in rows], value=uploaded_id),
                trigger_word or "")

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        with gr.Row():
            with gr.Column(scale=1):
                self.table = gr.Dataframe(headers=["id", "trigger word"],
                                          label="LoRAs on the backend", interactive=False,
                                          elem_id="lora-table")
                self.refresh = gr.Button("Refresh list", size="sm", elem_id="lora-refresh")
                with gr.Accordion("Upload a LoRA", open=False):
                    self.upload_file = gr.File(label=".safetensors file",
                                               file_types=[".safetensors"],
                                               elem_id="lora-upload-file")
                    self.upload_id = gr.Textbox(label="LoRA id (letters, digits, _ and -)",
                                                elem_id="lora-upload-id")
                    self.upload_trigger = gr.Textbox(label="Trigger word",
                                                     elem_id="lora-upload-trigger")
                    self.upload = gr.Button("Upload", elem_id="lora-upload")
                    self.upload_result = gr.Markdown(elem_id="lora-upload-result")
            with gr.Column(scale=2):
                self.made = place(self.fields, "lora")
                self.panel = ActionPanel.build("lora", "Generate with LoRA")
                self.run = self.panel.run
                self.notice = Notice.build("lora")
        self.gallery = gr.Gallery(
            label="Results", columns=4, height=420, object_fit="contain",
            elem_id="lora-gallery", interactive=False)
        self.details = gr.Dataframe(headers=["#", "seed", "timings"], label="Seeds and timings",
                                    interactive=False, elem_id="lora-details", wrap=True)

    @property
    def listing(self) -> list[Any]:
        """What a LoRA list fills: the table, the choice and its trigger word."""
        return [self.table, self.made["lora_id"], self.made["trigger_word"]]

    def wire(self, tabs: gr.Tabs) -> None:
        self.refresh.click(self.list_loras, outputs=self.listing, api_name="list_loras")
        self.made["lora_id"].change(self.trigger_for, inputs=[self.made["lora_id"], self.table],
                                    outputs=self.made["trigger_word"], **PRIVATE)
        self.upload.click(self.upload_lora,
                          inputs=[self.upload_file, self.upload_id, self.upload_trigger],
                          outputs=[self.upload_result, *self.listing], api_name="upload_lora")
        generation = self.run.click(
            by_name(self.generate, [f.name for f in self.fields], session=True),
            inputs=inputs(self.fields, self.made),
            outputs=[self.gallery, self.details, *self.notice.outputs,
                     *inputs(self.fields, self.made), self.panel.progress],
            api_name="generate_lora", show_progress="hidden", **GENERATION_EVENT)
        self.panel.wire(self.running, generation)

    def on_load(self, app: gr.Blocks) -> None:
        # No backend must not pop errors on load: quietly here, loudly from the button.
        app.load(self.list_loras_quietly, outputs=self.listing, show_progress="hidden", **PRIVATE)


def _table_rows(table: Any) -> list[list[Any]]:
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # a pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, dict) and "data" in table:
        return list(table["data"])
    return list(table)
