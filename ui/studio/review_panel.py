"""The reference beside its scored outputs, shared by the Character sheet and Review tabs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass
class ReviewPanel:
    reference: gr.Image
    gallery: gr.Gallery
    summary: gr.Markdown
    table: gr.Dataframe

    @property
    def outputs(self) -> list[Any]:
        return [self.reference, self.gallery, self.summary, self.table]

    @classmethod
    def build(cls, prefix: str) -> "ReviewPanel":
        # The reference sits in a narrow column left of the outputs so that every output
        # is judged against the same face at a glance.
        with gr.Row(equal_height=False, elem_classes=["ryla-side-by-side"]):
            with gr.Column(scale=1, min_width=200):
                reference = gr.Image(label="Reference", type="filepath", interactive=False,
                                     elem_id=f"{prefix}-reference-view", height=320)
            with gr.Column(scale=3):
                gallery = gr.Gallery(label="Outputs (face similarity and pass/fail)", columns=4,
                                     height=520, object_fit="contain",
                                     elem_id=f"{prefix}-outputs", interactive=False)
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        table = gr.Dataframe(
            headers=["#", "label", "seed", "distance", "similarity %", "result", "note"],
            label="Scores", interactive=False, elem_id=f"{prefix}-scores", wrap=True)
        return cls(reference, gallery, summary, table)
