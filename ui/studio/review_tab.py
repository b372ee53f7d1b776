"""The Review tab: any images scored against any reference face; works without a backend."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ui.face.consistency import DEFAULT_THRESHOLD
from ui.studio.feedback import badge, pct, summary_text
from ui.studio.fields import Field, Values, by_name, inputs, place, stored
from ui.studio.history import History
from ui.studio.problems import FieldProblem, Notice, TabProblem, guarded
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

    def review(self, values: Values, progress: gr.Progress) -> Iterator[dict[Any, Any]]:
        yield from guarded(self.fields, self.made, self.notice, self._review(values, progress))

    def _review(self, values: Values, progress: gr.Progress) -> Iterator[dict[Any, Any]]:
        from ui.face.consistency import (FaceModelsMissing, InvalidImage, ReferenceFaceNotFound,
                                         score_sheet)
        from ui.face.report import write_report

        reference = values.get("reference_image")
        if not reference:
            raise FieldProblem("reference_image", "add a reference face")
        paths = [str(p) for p in (values.get("images") or [])]
        if not paths:
            raise FieldProblem("images", "add at least one image to review")
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
        except InvalidImage:
            raise FieldProblem("reference_image", "this file is not an image: use a PNG, JPEG "
                                                  "or WebP photo") from None
        except ReferenceFaceNotFound:
            raise FieldProblem("reference_image", "no face found in the reference: use a photo "
                                                  "where one face is clearly visible") from None
        except FaceModelsMissing as exc:
            raise TabProblem("The face models are missing",
                             "Scoring needs the face models; an operator must install them.",
                             str(exc)) from None
        files = write_report(report, item.folder)
        item.files = [c.name for c in copies]
        item.outputs = [{"name": r.path, "distance": r.distance, "similarity": r.similarity,
                         "pass": r.passed, "faces": r.faces,
                         "readable": r.readable,
                         "caption": f"{badge(r.passed, r.faces, r.readable)} {pct(r.similarity)} · {r.path}"}
                        for r in report.results]
        item.summary = report.summary()
        report_paths = [files.json, files.csv, files.png]
        item.summary["report_files"] = [p.name for p in report_paths]
        self.history.update(item)
        # An unreadable file has its row in the table, not a broken thumbnail.
        gallery = [(str(c), out["caption"]) for c, out in zip(copies, item.outputs)
                   if out["readable"]]
        rows = [[n + 1, r.path, "", r.distance, r.similarity,
                 badge(r.passed, r.faces, r.readable), r.note]
                for n, r in enumerate(report.results)]
        shown = (str(ref_copy), gallery, summary_text(report.summary(), "Review"), rows,
                 [str(p) for p in report_paths])
        yield dict(zip([*self.panel.outputs, self.report], shown))

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        gr.Markdown("Score any images against any reference face. Works without a backend.")
        self.made = place(self.fields, "review", extras={"run": self._run_button})
        self.notice = Notice.build("review")
        self.panel = ReviewPanel.build("review")
        self.report = gr.File(label="Report (JSON, CSV, contact sheet)", file_count="multiple",
                              interactive=False, elem_id="review-report")

    def _run_button(self) -> None:
        self.run = gr.Button("Review", variant="primary", elem_id="review-run")

    def wire(self, tabs: gr.Tabs) -> None:
        self.run.click(**self._review_event(), api_name="review")

    def score_after(self, event: Any) -> None:
        """Score as soon as `event` (History's "Open in Review") has filled the inputs."""
        event.success(**self._review_event(), api_visibility="private")

    def _review_event(self) -> dict[str, Any]:
        return {"fn": by_name(self.review, [f.name for f in self.fields]),
                "inputs": inputs(self.fields, self.made),
                "outputs": [*self.panel.outputs, self.report, *self.notice.outputs,
                            *inputs(self.fields, self.made)]}
