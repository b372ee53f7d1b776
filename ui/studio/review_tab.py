"""The Review tab: any images scored against any reference face; works without a backend."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from ui.face.consistency import DEFAULT_THRESHOLD
from ui.studio.feedback import GalleryItem, badge, pct, summary_text
from ui.studio.fields import Field, Values, by_name, inputs, place, stored
from ui.studio.history import History
from ui.studio.review_panel import ReviewPanel

FIELDS: tuple[Field, ...] = (
    Field("reference_image", "image", label="Reference face", elem="reference", kept=False,
          row="inputs", options={"height": 240, "scale": 1}),
    Field("images", "files", label="Images to review", row="inputs",
          options={"file_types": ["image"], "scale": 2},
          store=lambda paths: {"images": [Path(p).name for p in paths or []]}),
    Field("threshold", "slider", label="Pass threshold (face distance)", minimum=0.3,
          maximum=0.9, step=0.01, value=DEFAULT_THRESHOLD, cast=float, row="run",
          help="largest face-descriptor distance that passes"),
)


class ReviewTab:
    kind, title = "review", "Review"

    def __init__(self, history: History, fields: tuple[Field, ...] = FIELDS) -> None:
        self.history, self.fields = history, fields

    def review(self, values: Values, progress: gr.Progress
               ) -> tuple[str, list[GalleryItem], str, list[list[Any]], list[str]]:
        from ui.face.consistency import FaceConsistencyError, score_sheet
        from ui.face.report import write_report

        reference = values.get("reference_image")
        if not reference:
            raise gr.Error("add a reference face", title="No reference")
        paths = [str(p) for p in (values.get("images") or [])]
        if not paths:
            raise gr.Error("add at least one image to review", title="No images")
        params = {"tab": self.kind, **stored(self.fields, values)}
        item = self.history.create(self.kind, params)
        assert item.folder is not None
        ref_copy = item.folder / f"reference{Path(reference).suffix.lower() or '.png'}"
        shutil.copyfile(reference, ref_copy)
        item.reference = ref_copy.name
        # Copies keep the history item whole after Gradio's upload cache is cleared.
        copies = []
        for n, path in enumerate(paths):
            copy = item.folder / f"{n:03d}-{Path(path).name}"
            shutil.copyfile(path, copy)
            copies.append(copy)
        progress(0.1, desc=f"Scoring {len(paths)} images")
        try:
            report = score_sheet(ref_copy, copies, float(params["threshold"]),
                                 labels=[Path(p).name for p in paths])
        except FaceConsistencyError as exc:
            raise gr.Error(str(exc), title="Cannot score") from None
        files = write_report(report, item.folder)
        item.files = [c.name for c in copies]
        item.outputs = [{"name": r.path, "distance": r.distance, "similarity": r.similarity,
                         "pass": r.passed, "faces": r.faces,
                         "caption": f"{badge(r.passed, r.faces)} {pct(r.similarity)} · {r.path}"}
                        for r in report.results]
        item.summary = report.summary()
        report_paths = [files.json, files.csv, files.png]
        item.summary["report_files"] = [p.name for p in report_paths]
        self.history.update(item)
        gallery = [(str(c), out["caption"]) for c, out in zip(copies, item.outputs)]
        rows = [[n + 1, r.path, "", r.distance, r.similarity, badge(r.passed, r.faces), r.note]
                for n, r in enumerate(report.results)]
        return (str(ref_copy), gallery, summary_text(report.summary(), "Review"), rows,
                [str(p) for p in report_paths])

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        gr.Markdown("Score any images against any reference face. Works without a backend.")
        self.made = place(self.fields, "review", extras={"run": self._run_button})
        self.panel = ReviewPanel.build("review")
        self.report = gr.File(label="Report (JSON, CSV, contact sheet)", file_count="multiple",
                              interactive=False, elem_id="review-report")

    def _run_button(self) -> None:
        self.run = gr.Button("Review", variant="primary", elem_id="review-run")

    def wire(self, tabs: gr.Tabs) -> None:
        self.run.click(by_name(self.review, [f.name for f in self.fields]),
                       inputs=inputs(self.fields, self.made),
                       outputs=[*self.panel.outputs, self.report], api_name="review")
