"""The Character sheet tab: one reference face, 7-10 variation prompts, InstantID and/or
PuLID, each output scored against the reference beside it."""

from __future__ import annotations

import queue
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ui.studio.action import Action, ActionPanel, JobsTab
from ui.face.consistency import DEFAULT_THRESHOLD
from ui.prompts import SHEET_VARIATIONS, SheetVariation
from ui.studio.batch import GENERATION_EVENT, PRIVATE
from ui.studio.feedback import GalleryItem, badge, pct, summary_text
from ui.studio.fields import UNCHANGED, Field, Values, by_name, inputs, place, request_values, stored
from ui.studio.history import HistoryItem
from ui.studio.problems import FieldProblem, Notice, TabProblem
from ui.studio.seeds import random_seed, seed_field, seed_text
from ui.studio.review_panel import ReviewPanel
from ui.studio.sizes import size_field
from workflows.request_models import CharacterRequest

MAX_SHEET_PROMPTS = 10
SHEET_CONCURRENCY = 4

_BY_KIND = {kind: [v for v in SHEET_VARIATIONS if v.kind == kind]
            for kind in ("angle", "pose", "expression")}
SHEET_PRESETS: dict[str, list[SheetVariation]] = {
    "All 10: angles, poses, expressions": list(SHEET_VARIATIONS),
    "Angles and expressions (8)": _BY_KIND["angle"] + _BY_KIND["expression"],
    "Quick 7: angles, full body, two expressions":
        _BY_KIND["angle"] + _BY_KIND["pose"][:1] + _BY_KIND["expression"][:2],
}
METHOD_CHOICES = ["InstantID (SDXL)", "PuLID (Flux)", "Both (compare)"]
METHOD_KEYS = dict(zip(METHOD_CHOICES, ("instantid", "pulid", "both")))
METHOD_LABELS = {key: label for label, key in METHOD_KEYS.items()}


def preset_prompts(name: str) -> str:
    """The variation prompts of a preset, one per line (the editable text box's value)."""
    return "\n".join(v.prompt for v in SHEET_PRESETS.get(name, list(SHEET_VARIATIONS)))


def _reference_of(item: HistoryItem) -> Any:
    ref = item.reference_path()
    return str(ref) if ref and ref.is_file() else UNCHANGED


def _prompt_lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


FIELDS: tuple[Field, ...] = (
    # The reference is kept as the history item's own file, not as a parameter.
    Field("reference_image", "image", label="Reference face", elem="reference",
          options={"sources": ["upload", "clipboard"], "height": 260},
          store=lambda path: {}, restore=_reference_of),
    Field("method", "radio", choices=METHOD_CHOICES, value=METHOD_CHOICES[0], label="Method",
          store=lambda label: {"method": METHOD_KEYS.get(label, label)},
          restore=lambda item: METHOD_LABELS.get(item.params.get("method", "instantid"),
                                                 METHOD_CHOICES[0])),
    Field("instantid_strength", "slider", CharacterRequest, step=0.05, elem="id-strength",
          help="how closely the face follows the reference"),
    Field("controlnet_strength", "slider", CharacterRequest, step=0.05, elem="cn-strength",
          help="how closely the head follows the reference's pose (InstantID only)"),
    Field("prompts", "text", label="Variation prompts (one per line, up to 10)", section="prompts",
          help="a full sheet is 7-10; fewer make a quick check",
          value=preset_prompts(next(iter(SHEET_PRESETS))), options={"lines": 10, "max_lines": 14},
          store=lambda text: {"prompts": _prompt_lines(text)},
          restore=lambda item: "\n".join(item.params.get("prompts", []))),
    size_field(row="sampling"),
    Field("steps", "slider", CharacterRequest, row="sampling"),
    seed_field(row="seed"),
    Field("threshold", "slider", label="Pass threshold (face distance)", minimum=0.3,
          maximum=0.9, step=0.01, value=DEFAULT_THRESHOLD, row="seed", cast=float,
          help="largest face-descriptor distance that passes"),
)


class SheetTab(JobsTab):
    kind, title = "sheet", "Character sheet"

    FIELDS = FIELDS

    def _generate(self, values: Values, session: str | None) -> Iterator[dict[Any, Any]]:
        from ui.sheet import ReferenceRejected, check_reference

        reference = values.get("reference_image")
        if not reference:
            raise FieldProblem("reference_image", "add a reference face first")
        params = {"tab": self.kind, **stored(self.fields, values)}
        prompts = _sheet_prompts(params.get("prompts", []))
        if params.get("method") not in ("instantid", "pulid", "both"):
            raise FieldProblem("method", f"choose one of {', '.join(METHOD_CHOICES)}")
        # Every field is checked before the reference, and the reference before any image
        # is asked for: a mistake costs no GPU time.
        CharacterRequest(**{**request_values(params, CharacterRequest,
                                             skip=("prompt", "method", "reference_image")),
                            "prompt": prompts[0] if isinstance(prompts[0], str) else prompts[0].prompt,
                            "reference_image": "checked below", "method": "instantid"})
        yield {self.panel.progress: '<div class="ryla-progress">Checking the reference face…</div>'}
        try:
            check_reference(Path(reference))
        except ReferenceRejected as exc:
            raise FieldProblem("reference_image", str(exc)) from None
        # One seed for every image, drawn here when none is given, so that both methods
        # (and a rerun from history) see the same seed.
        if params.get("seed") is None:
            params["seed"] = random_seed()
        item = self.history.create(self.kind, params)
        ref_copy = _keep_reference(item, reference)
        item.state = "running"
        self.history.update(item)
        self.history.followed.add(item.id)
        total = len(prompts) * (2 if params["method"] == "both" else 1)
        action = Action(self.client, total, self.gpu)
        self.running.start(session, action)
        run = yield from self._stream(item, ref_copy, prompts, params, action, session)
        summary = _sheet_summary(run)
        if action.stopping.is_set():
            summary = f"**Stopped:** {len(run.succeeded)} of {total} images made.\n\n" + summary
        yield {**self._show(str(ref_copy), _sheet_gallery(run), summary, _sheet_rows(run.items, run)),
               self.panel.progress: action.final_text(len(run.succeeded))}
        if not run.succeeded and not action.stopping.is_set():
            first = run.failed[0] if run.failed else None
            raise TabProblem("No image was generated",
                             first.error if first and first.error else "nothing came back")

    def _show(self, reference: str, gallery: list[GalleryItem], summary: str,
              rows: list[list[Any]]) -> dict[Any, Any]:
        return dict(zip(self.sheet.outputs, (reference, gallery, summary, rows)))

    def _stream(self, item: HistoryItem, ref_copy: Path, prompts: list[Any], params: Values,
                action: Action, session: str | None) -> Any:
        """Run the sheet in a worker thread, each image a job it follows, and yield the
        images as they land with the progress panel; returns the run. The worker, not
        this generator, records the run in the history: a page closed meanwhile (which
        ends this generator) loses nothing."""
        # Imported here: ui.sheet pulls in the face models only when a sheet is scored.
        from ui.sheet import SheetItem, generate_sheet

        options = request_values(params, CharacterRequest,
                                 skip=("prompt", "method", "reference_image"))
        arrived: queue.Queue[SheetItem] = queue.Queue()
        outcome: dict[str, Any] = {}
        record_lock = threading.Lock()

        def run_item(sheet_item: SheetItem, request: CharacterRequest) -> Any:
            state = action.submit(request)
            with record_lock:
                item.jobs.append({"id": state.id, "status": state.status, "file": None,
                                  "index": sheet_item.index})
                self.history.update(item)
            try:
                return action.follow(state)
            finally:
                with record_lock:
                    next(j for j in item.jobs if j["id"] == state.id)["status"] = state.status
                    self.history.update(item)

        def landed(sheet_item: SheetItem) -> None:
            if sheet_item.ok:
                with record_lock:
                    for job in item.jobs:
                        if job["id"] == sheet_item.request_id:
                            job["file"] = Path(str(sheet_item.path)).name
                    item.files.append(Path(str(sheet_item.path)).name)
                    item.outputs.append({"method": sheet_item.method, "name": sheet_item.name,
                                         "seed": sheet_item.seed, "request_id": sheet_item.request_id,
                                         "caption": f"{sheet_item.method} · {sheet_item.name} · "
                                                    f"seed {seed_text(sheet_item.seed)}"})
                    self.history.update(item)
            arrived.put(sheet_item)

        def work() -> None:
            try:
                outcome["run"] = run = generate_sheet(
                    self.client, ref_copy, prompts, item.folder, method=params["method"],
                    concurrency=SHEET_CONCURRENCY, threshold=float(params["threshold"]),
                    options=options, on_item=landed, run_item=run_item)
                with record_lock:
                    self._record(item, run, "stopped" if action.stopping.is_set() else "done")
            except Exception as exc:  # raised again below, where the tab shows it
                outcome["error"] = exc
                with record_lock:
                    item.state = "stopped" if action.stopping.is_set() else "interrupted"
                    self.history.update(item)
            finally:
                self.history.followed.discard(item.id)
                self.running.finish(session, action)
                action.changed.set()

        worker = threading.Thread(target=work, name="ryla-sheet", daemon=True)
        worker.start()
        done: list[SheetItem] = []
        while worker.is_alive() or not arrived.empty():
            while not arrived.empty():
                done.append(arrived.get())
            ok = sorted((d for d in done if d.ok), key=lambda d: d.index)
            gallery = [(str(d.path), f"{d.method} · {d.name} · seed {seed_text(d.seed)} · scoring…")
                       for d in ok]
            yield {**self._show(str(ref_copy), gallery, f"Generating: {len(done)} of "
                                f"{action.total} done…", _sheet_rows(done, None)),
                   self.panel.progress: action.view()}
            if worker.is_alive():
                action.changed.wait(timeout=0.5)
                action.changed.clear()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["run"]

    def _record(self, item: HistoryItem, run: Any, state: str) -> None:
        scores = _scores_by_item(run)
        item.files = [Path(d.path).name for d in run.succeeded]
        item.outputs = []
        for d in run.succeeded:
            score = scores.get(d.index)
            item.outputs.append({
                "method": d.method, "name": d.name, "prompt": d.prompt, "seed": d.seed,
                "request_id": d.request_id, "seconds": d.seconds,
                "distance": score.distance if score else None,
                "similarity": score.similarity if score else None,
                "pass": score.passed if score else None,
                "faces": score.faces if score else None,
                "caption": _caption(d, score),
            })
        item.summary = run.report.summary() if run.report is not None else {}
        item.summary["failed"] = [{"method": d.method, "name": d.name, "code": d.error_code,
                                   "message": d.error} for d in run.failed]
        item.summary["report_files"] = [Path(p).name for p in run.report_files]
        item.summary["wall_seconds"] = round(run.wall_seconds, 3)
        if run.score_error:
            item.summary["score_error"] = run.score_error
        item.state = state
        self.history.update(item)

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        with gr.Row():
            with gr.Column(scale=1):
                self.made = place(self.fields, "sheet")
            with gr.Column(scale=2):
                names = list(SHEET_PRESETS)
                self.preset = gr.Dropdown(names, value=names[0], label="Variation preset",
                                          elem_id="sheet-preset")
                self.made.update(place(self.fields, "sheet", section="prompts"))
                self.panel = ActionPanel.build("sheet", "Generate sheet")
                self.run = self.panel.run
                self.notice = Notice.build("sheet")
        self.sheet = ReviewPanel.build("sheet")

    def wire(self, tabs: gr.Tabs) -> None:
        if "prompts" in self.made:
            self.preset.change(preset_prompts, inputs=self.preset, outputs=self.made["prompts"],
                               **PRIVATE)
        generation = self.run.click(
            by_name(self.generate, [f.name for f in self.fields], session=True),
            inputs=inputs(self.fields, self.made),
            outputs=[*self.sheet.outputs, *self.notice.outputs, *inputs(self.fields, self.made),
                     self.panel.progress],
            api_name="generate_sheet", show_progress="hidden", **GENERATION_EVENT)
        self.panel.wire(self.running, generation)
        if "method" in self.made and "controlnet_strength" in self.made:
            # PuLID has no ControlNet: its slider does nothing there.
            self.made["method"].change(
                lambda label: gr.update(interactive=METHOD_KEYS.get(label) != "pulid"),
                inputs=self.made["method"], outputs=self.made["controlnet_strength"], **PRIVATE)


def _keep_reference(item: HistoryItem, reference: str) -> Path:
    """A copy of the reference in the item's folder: Gradio's upload cache is cleared."""
    assert item.folder is not None
    ref_copy = item.folder / f"reference{Path(reference).suffix.lower() or '.png'}"
    shutil.copyfile(reference, ref_copy)
    item.reference = ref_copy.name
    return ref_copy


def _sheet_prompts(lines: list[str]) -> list[str | SheetVariation]:
    if not lines:
        raise FieldProblem("prompts", "write at least one variation prompt (one per line)")
    if len(lines) > MAX_SHEET_PROMPTS:
        raise FieldProblem("prompts", f"{len(lines)} prompts: a sheet takes at most {MAX_SHEET_PROMPTS}")
    # A line that is a preset's prompt keeps the preset's short name in files and reports.
    by_prompt = {v.prompt: v for v in SHEET_VARIATIONS}
    return [by_prompt.get(line, line) for line in lines]


def _scores_by_item(run: Any) -> dict[int, Any]:
    """FaceResults keyed by sheet item index (ui.sheet scores its succeeded items in order)."""
    if run.report is None:
        return {}
    return {d.index: r for d, r in zip(run.succeeded, run.report.results)}


def _caption(d: Any, score: Any) -> str:
    head = ""
    if score is not None:
        sim = f" {pct(score.similarity)}" if score.similarity is not None else ""
        head = f"{badge(score.passed, score.faces)}{sim} · "
    return f"{head}{d.method} · {d.name} · seed {seed_text(d.seed)}"


def _sheet_gallery(run: Any) -> list[GalleryItem]:
    scores = _scores_by_item(run)
    return [(str(d.path), _caption(d, scores.get(d.index))) for d in run.succeeded]


def _sheet_rows(items: list[Any], run: Any) -> list[list[Any]]:
    scores = _scores_by_item(run) if run is not None else {}
    rows = []
    for d in sorted(items, key=lambda d: d.index):
        score = scores.get(d.index)
        if not d.ok:
            rows.append([d.index, f"{d.method} · {d.name}", "", None, None, "⚠ not made",
                         d.error or ""])
        elif score is None:
            rows.append([d.index, f"{d.method} · {d.name}", seed_text(d.seed), None, None,
                         "scoring…" if run is None else "-", ""])
        else:
            rows.append([d.index, f"{d.method} · {d.name}", seed_text(d.seed), score.distance,
                         score.similarity, badge(score.passed, score.faces), score.note])
    return rows


def _sheet_summary(run: Any) -> str:
    if run.report is None:
        return f"Generated {len(run.succeeded)} images; not scored: {run.score_error or 'no report'}"
    lines = [summary_text(run.report.summary())]
    scores = _scores_by_item(run)
    methods = sorted({d.method for d in run.succeeded})
    if len(methods) > 1:
        # Both methods ran on the same prompts and seeds: one line each to compare them.
        for method in methods:
            results = [scores[d.index] for d in run.succeeded if d.method == method]
            sims = [r.similarity for r in results if r.similarity is not None]
            passed = sum(r.passed for r in results)
            lines.append(
                f"- **{METHOD_LABELS.get(method, method)}**: mean "
                f"{pct(sum(sims) / len(sims) if sims else None)}"
                f", min {pct(min(sims) if sims else None)}, pass {passed}/{len(results)}")
    if run.failed:
        lines.append(f"- {len(run.failed)} not made: {run.failed[0].error}")
    lines.append(f"- wall time {run.wall_seconds:.1f} s")
    return "\n".join(lines)
