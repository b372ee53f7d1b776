"""What the studio's buttons do. Plain functions of plain values: no layout here, and no
HTTP (every backend call goes through ui.client.RylaClient).

Backend failures become `gr.Error` with the backend's own message (never a traceback);
each generation is written to the local History before its results are shown, so that a
gallery path always points at a file that outlives the session.
"""

from __future__ import annotations

import html
import queue
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import BaseModel, ValidationError

from ui.client import BackendError, BackendUnreachable, GenerationResult, RylaClient, extension_for
from ui.history import History, HistoryItem
from ui.layout import DEFAULT_SIZE, METHOD_CHOICES, SIZE_PRESETS
from ui.prompts import SHEET_VARIATIONS, SheetVariation
from workflows.request_models import FluxDevRequest, FluxLoraRequest, FluxSchnellRequest

GalleryItem = tuple[str, str]  # (file path, caption)
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
METHOD_KEYS = dict(zip(METHOD_CHOICES, ("instantid", "pulid", "both")))
METHOD_LABELS = {key: label for label, key in METHOD_KEYS.items()}


# -- small helpers -----------------------------------------------------------------------

def preset_prompts(name: str) -> str:
    """The variation prompts of a preset, one per line (the editable text box's value)."""
    return "\n".join(v.prompt for v in SHEET_PRESETS.get(name, list(SHEET_VARIATIONS)))


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


def backend_error(exc: BackendError) -> gr.Error:
    """The backend's message as a Gradio error; the title says what kind of failure."""
    # Gradio's toast shows the message, so what failed is said there, not only in the title.
    if isinstance(exc, BackendUnreachable):
        return gr.Error(f"Backend unreachable: {exc.message}", title="Backend unreachable")
    where = f" (field {exc.field})" if exc.field else ""
    return gr.Error(f"{exc.message}{where} [backend {exc.status} {exc.code}]",
                    title=f"Backend error {exc.status}")


def invalid_input(exc: ValidationError) -> gr.Error:
    """Pydantic's complaint in a person's words: which field, what is allowed."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "input"
        lines.append(f"{field}: {err.get('msg', 'invalid')}")
    return gr.Error("; ".join(lines), title="Invalid settings")


def _seed_or_none(value: float | int | None) -> int | None:
    return None if value is None or value == "" else int(value)


def _badge(passed: bool, faces: int) -> str:
    if faces == 0:
        return "⚠ NO FACE"
    # Symbols from DejaVu Sans rather than emoji: they render on machines without an
    # emoji font (headless Linux, many servers).
    return "✔ PASS" if passed else "✘ FAIL"


def _generation_note(health: Any) -> str:
    """What /health says about generation, e.g. a Modal GPU that will cold-start. The
    backend learns it without waking a GPU, so the status check is free to repeat."""
    generation = health.get("generation") if isinstance(health, dict) else None
    if not isinstance(generation, dict):
        return ""
    state = str(generation.get("state") or "")
    if state == "unavailable":
        return ": ComfyUI is not reachable, generation will fail"
    message = generation.get("message")
    return f": {html.escape(str(message))}" if message else ""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


class StudioCallbacks:
    """Callbacks bound to one backend client and one local history."""

    def __init__(self, client: RylaClient, history: History) -> None:
        self.client = client
        self.history = history

    # -- backend status ------------------------------------------------------------------

    def backend_status(self) -> str:
        """An HTML status line: state, URL and, when down, what still works."""
        url = html.escape(self.client.base_url)
        try:
            health = self.client.health()
        except BackendUnreachable as exc:
            return (f'<span class="ryla-status ryla-down" title="{html.escape(exc.message)}">'
                    f"● Backend unreachable</span> at <code>{url}</code>: generation is "
                    "unavailable; Review and History still work.")
        except BackendError as exc:
            return (f'<span class="ryla-status ryla-warn">● Backend answered {exc.status}</span> '
                    f"at <code>{url}</code> ({html.escape(exc.code)}): {html.escape(exc.message)}")
        state = str(health.get("status", "ok")) if isinstance(health, dict) else "ok"
        css = "ryla-up" if state == "ok" else "ryla-warn"
        return (f'<span class="ryla-status {css}">● Backend {html.escape(state)}</span> at '
                f"<code>{url}</code>{_generation_note(health)}")

    # -- shared generation loop ----------------------------------------------------------

    def _generate_batch(
        self,
        kind: str,
        make_request: Callable[[int | None], BaseModel],
        seed: int | None,
        batch: int,
        params: dict[str, Any],
        progress: gr.Progress,
    ) -> Iterator[tuple[list[GalleryItem], list[list[Any]], int | None]]:
        """Generate `batch` images one after another (one GPU: no gain in parallel),
        yielding the gallery after each so that results appear as they arrive.
        A fixed seed gives image i the seed `seed + i`, so a batch is reproducible."""
        batch = max(1, int(batch or 1))
        try:
            requests_ = [make_request(None if seed is None else seed + i) for i in range(batch)]
        except ValidationError as exc:
            raise invalid_input(exc) from None
        results: list[tuple[GenerationResult, float]] = []
        gallery: list[GalleryItem] = []
        rows: list[list[Any]] = []
        item: HistoryItem | None = None
        for i, request in enumerate(requests_):
            progress((i, batch), desc=f"Generating image {i + 1} of {batch}")
            started = time.perf_counter()
            try:
                result = self.client.generate(request)
            except BackendError as exc:
                raise backend_error(exc) from None
            results.append((result, time.perf_counter() - started))
            item = self._save_batch(kind, params, results, item)
            gallery = [(str(path), out["caption"]) for path, out in zip(item.paths(), item.outputs)]
            rows = [[n + 1, out["seed"], out["timings_text"]] for n, out in enumerate(item.outputs)]
            yield gallery, rows, result.seed
        progress((batch, batch), desc="Done")

    def _save_batch(self, kind: str, params: dict[str, Any],
                    results: list[tuple[GenerationResult, float]],
                    item: HistoryItem | None) -> HistoryItem:
        """One history item per batch, rewritten as each image lands, so that a batch
        cut short still keeps what it made."""
        if item is None:
            item = self.history.create(kind, params)
        assert item.folder is not None
        for result, round_trip in results[len(item.outputs):]:
            index = len(item.files)
            name = f"{index:03d}{extension_for(result.content_type)}"
            (item.folder / name).write_bytes(result.images[0])
            item.files.append(name)
            timings_text = format_timings(result.timings, round_trip)
            item.outputs.append({
                "seed": result.seed, "request_id": result.request_id,
                "timings": result.timings, "round_trip_s": round(round_trip, 3),
                "timings_text": timings_text,
                "caption": f"seed {result.seed} · {timings_text}",
            })
        item.summary = {"images": len(item.files), "seeds": [o["seed"] for o in item.outputs]}
        self.history.update(item)
        return item

    # -- Flux Dev tab --------------------------------------------------------------------

    def generate_flux(
        self, prompt: str, negative: str, size: str, steps: float, guidance: float,
        seed: float | None, random_seed: bool, model: str, batch: float,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple[list[GalleryItem], list[list[Any]], int | None]]:
        width, height = parse_size(size)
        base_seed = None if random_seed else _seed_or_none(seed)
        model_cls = FluxSchnellRequest if model == "Schnell" else FluxDevRequest
        params = {"tab": "flux", "prompt": prompt, "negative_prompt": negative, "size": size,
                  "width": width, "height": height, "steps": int(steps),
                  "guidance": float(guidance), "seed": base_seed, "random_seed": bool(random_seed),
                  "model": model, "batch": int(batch or 1)}

        def make(image_seed: int | None) -> BaseModel:
            return model_cls(prompt=prompt, negative_prompt=negative or "", width=width,
                             height=height, steps=int(steps), guidance=float(guidance),
                             seed=image_seed)

        yield from self._generate_batch("flux", make, base_seed, int(batch or 1), params, progress)

    @staticmethod
    def reuse_seed(last_seed: float | None) -> tuple[Any, bool]:
        """Fix the seed to the last image's so that the next run repeats it."""
        if last_seed is None:
            raise gr.Error("no image generated yet: generate once, then reuse its seed",
                           title="No seed to reuse")
        return int(last_seed), False

    # -- LoRA tab ------------------------------------------------------------------------

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

    def trigger_for(self, lora_id: str | None, table: Any) -> str:
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

    def generate_lora(
        self, lora_id: str | None, trigger_word: str, strength: float, prompt: str, size: str,
        steps: float, guidance: float, seed: float | None, batch: float,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple[list[GalleryItem], list[list[Any]]]]:
        if not lora_id:
            raise gr.Error("choose a LoRA (refresh the list, or upload one)", title="No LoRA")
        width, height = parse_size(size)
        base_seed = _seed_or_none(seed)
        params = {"tab": "lora", "lora_id": lora_id, "trigger_word": trigger_word,
                  "lora_strength": float(strength), "prompt": prompt, "size": size,
                  "width": width, "height": height, "steps": int(steps),
                  "guidance": float(guidance), "seed": base_seed, "batch": int(batch or 1)}

        def make(image_seed: int | None) -> BaseModel:
            # The backend applies the trigger word (SPEC /flux-lora `trigger_word`), so the
            # prompt is sent as typed: adding it here too would repeat it.
            return FluxLoraRequest(prompt=prompt, width=width, height=height, steps=int(steps),
                                   guidance=float(guidance), seed=image_seed, lora_id=lora_id,
                                   lora_strength=float(strength),
                                   trigger_word=(trigger_word or None))

        for gallery, rows, _ in self._generate_batch("lora", make, base_seed, int(batch or 1),
                                                     params, progress):
            yield gallery, rows

    # -- Character sheet tab -------------------------------------------------------------

    def generate_sheet(
        self, reference: str | None, method_label: str, instantid_strength: float,
        controlnet_strength: float, prompts_text: str, size: str, steps: float,
        seed: float | None, threshold: float, progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple[str | None, list[GalleryItem], str, list[list[Any]]]]:
        # Imported here: ui.sheet pulls in the face models only when a sheet is scored.
        from ui.sheet import SheetItem, generate_sheet

        if not reference:
            raise gr.Error("upload a reference face first", title="No reference")
        prompts = _sheet_prompts(prompts_text)
        method = METHOD_KEYS.get(method_label, method_label)
        if method not in ("instantid", "pulid", "both"):
            raise gr.Error(f"method must be one of {', '.join(METHOD_CHOICES)}",
                           title="Invalid method")
        width, height = parse_size(size)
        # One seed for every image, drawn here when none is given, so that both methods
        # (and a rerun from history) see the same seed.
        base_seed = _seed_or_none(seed)
        if base_seed is None:
            base_seed = secrets.randbelow(2**31)
        options = {"instantid_strength": float(instantid_strength),
                   "controlnet_strength": float(controlnet_strength), "width": width,
                   "height": height, "steps": int(steps), "seed": base_seed}
        params = {"tab": "sheet", "method": method, "prompts": [p if isinstance(p, str) else p.prompt
                                                                   for p in prompts],
                  "size": size, "threshold": float(threshold), **options}
        item = self.history.create("sheet", params)
        assert item.folder is not None
        ref_copy = item.folder / f"reference{Path(reference).suffix.lower() or '.png'}"
        shutil.copyfile(reference, ref_copy)
        item.reference = ref_copy.name
        total = len(prompts) * (2 if method == "both" else 1)

        arrived: queue.Queue[SheetItem] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            # Runs in a thread so that this generator can yield each image as it lands.
            try:
                outcome["run"] = generate_sheet(
                    self.client, ref_copy, prompts, item.folder, method=method,
                    concurrency=SHEET_CONCURRENCY, threshold=float(threshold), options=options,
                    on_item=arrived.put)
            except ValidationError as exc:
                outcome["error"] = invalid_input(exc)
            except Exception as exc:  # surfaced to the user below, with its message
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="ryla-sheet", daemon=True)
        worker.start()
        done: list[SheetItem] = []
        progress((0, total), desc=f"Generating {total} images")
        while worker.is_alive() or not arrived.empty():
            try:
                done.append(arrived.get(timeout=0.2))
            except queue.Empty:
                continue
            ok = sorted((d for d in done if d.ok), key=lambda d: d.index)
            gallery = [(str(d.path), f"{d.method} · {d.name} · seed {d.seed} · scoring…")
                       for d in ok]
            progress((len(done), total), desc=f"{len(done)} of {total} images")
            yield str(ref_copy), gallery, f"Generating: {len(done)} of {total} done…", \
                _sheet_rows(done, None)
        worker.join()
        if "error" in outcome:
            error = outcome["error"]
            raise error if isinstance(error, gr.Error) else gr.Error(str(error), title="Sheet failed")
        run = outcome["run"]
        self._record_sheet(item, run)
        if not run.succeeded:
            first = run.failed[0] if run.failed else None
            detail = f"{first.error_code}: {first.error}" if first else "nothing was generated"
            raise gr.Error(f"no image was generated ({detail})", title="Backend error")
        if run.failed:
            gr.Warning(f"{len(run.failed)} of {len(run.items)} images failed: "
                       f"{run.failed[0].error_code}: {run.failed[0].error}")
        yield (str(ref_copy), _sheet_gallery(run), _sheet_summary(run), _sheet_rows(run.items, run))

    def _record_sheet(self, item: HistoryItem, run: Any) -> None:
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
        self.history.update(item)

    # -- Review tab ----------------------------------------------------------------------

    def review(self, reference: str | None, images: list[str] | None, threshold: float,
               progress: gr.Progress = gr.Progress(),
               ) -> tuple[str, list[GalleryItem], str, list[list[Any]], list[str]]:
        from ui.face.consistency import FaceConsistencyError, score_sheet
        from ui.face.report import write_report

        if not reference:
            raise gr.Error("add a reference face", title="No reference")
        paths = [str(p) for p in (images or [])]
        if not paths:
            raise gr.Error("add at least one image to review", title="No images")
        item = self.history.create("review", {"tab": "review", "threshold": float(threshold),
                                              "images": [Path(p).name for p in paths]})
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
        labels = [Path(p).name for p in paths]
        progress(0.1, desc=f"Scoring {len(paths)} images")
        try:
            report = score_sheet(ref_copy, copies, float(threshold), labels=labels)
        except FaceConsistencyError as exc:
            raise gr.Error(str(exc), title="Cannot score") from None
        files = write_report(report, item.folder)
        item.files = [c.name for c in copies]
        item.outputs = [{"name": r.path, "distance": r.distance, "similarity": r.similarity,
                         "pass": r.passed, "faces": r.faces,
                         "caption": f"{_badge(r.passed, r.faces)} {_pct(r.similarity)} · {r.path}"}
                        for r in report.results]
        item.summary = report.summary()
        report_paths = [files.json, files.csv, files.png]
        item.summary["report_files"] = [p.name for p in report_paths]
        self.history.update(item)
        gallery = [(str(c), out["caption"]) for c, out in zip(copies, item.outputs)]
        rows = [[n + 1, r.path, "", r.distance, r.similarity, _badge(r.passed, r.faces), r.note]
                for n, r in enumerate(report.results)]
        return str(ref_copy), gallery, _summary_text(report.summary(), "Review"), rows, \
            [str(p) for p in report_paths]

    # -- History tab ---------------------------------------------------------------------

    def list_history(self) -> tuple[list[list[Any]], Any]:
        items = self.history.items(limit=200)
        rows = []
        choices = []
        for it in items:
            prompt = str(it.params.get("prompt") or
                         (f"{len(it.params.get('prompts', []))} variation prompts"
                          if it.kind == "sheet" else ""))
            seeds = ", ".join(str(o.get("seed")) for o in it.outputs if o.get("seed") is not None)
            rows.append([it.id, it.created, it.kind, prompt[:80], len(it.files), seeds[:60],
                         _pct(it.summary.get("mean_similarity"))])
            choices.append((f"{it.created} · {it.kind} · {prompt[:40]}", it.id))
        return rows, gr.update(choices=choices, value=choices[0][1] if choices else None)

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

    def reuse_settings(self, item_id: str | None) -> tuple[Any, ...]:
        """Values for (tabs, 9 Flux fields, 9 LoRA fields, 9 sheet fields); fields of
        other tabs are left as they are."""
        if not item_id:
            raise gr.Error("choose a history item first", title="No item")
        item = self._get(item_id)
        p = item.params
        keep = gr.skip()
        flux: list[Any] = [keep] * 9
        lora: list[Any] = [keep] * 9
        sheet: list[Any] = [keep] * 9
        size = p.get("size") or size_label(int(p.get("width", 1024)), int(p.get("height", 1024)))
        # The seed the first image actually got, so a random-seed run repeats exactly.
        first_seed = next((o.get("seed") for o in item.outputs if o.get("seed") is not None),
                          p.get("seed"))
        if item.kind == "flux":
            tab = "flux"
            flux = [p.get("prompt", ""), p.get("negative_prompt", ""), size, p.get("steps", 28),
                    p.get("guidance", 3.5), first_seed, first_seed is None,
                    p.get("model", "Dev"), p.get("batch", 1)]
        elif item.kind == "lora":
            tab = "lora"
            lora = [p.get("lora_id"), p.get("trigger_word", ""), p.get("lora_strength", 0.8),
                    p.get("prompt", ""), size, p.get("steps", 28), p.get("guidance", 3.5),
                    first_seed, p.get("batch", 1)]
        elif item.kind == "sheet":
            tab = "sheet"
            ref = item.reference_path()
            sheet = [str(ref) if ref and ref.is_file() else keep,
                     METHOD_LABELS.get(p.get("method", "instantid"), METHOD_CHOICES[0]),
                     p.get("instantid_strength", 0.8), p.get("controlnet_strength", 0.8),
                     "\n".join(p.get("prompts", [])), size, p.get("steps", 30),
                     first_seed, p.get("threshold", 0.6)]
        else:
            raise gr.Error("a review has no generation settings; use “Open in Review”",
                           title="Nothing to reuse")
        return (gr.Tabs(selected=tab), *flux, *lora, *sheet)

    def open_in_review(self, item_id: str | None) -> tuple[Any, Any, Any]:
        if not item_id:
            raise gr.Error("choose a history item first", title="No item")
        item = self._get(item_id)
        ref = item.reference_path()
        files = [str(p) for p in item.paths() if p.is_file()]
        return (str(ref) if ref and ref.is_file() else None, files, gr.Tabs(selected="review"))


# -- character-sheet presentation ---------------------------------------------------------

def _sheet_prompts(text: str) -> list[str | SheetVariation]:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise gr.Error("write at least one variation prompt (one per line)", title="No prompts")
    if len(lines) > MAX_SHEET_PROMPTS:
        raise gr.Error(f"{len(lines)} prompts: a sheet takes at most {MAX_SHEET_PROMPTS}",
                       title="Too many prompts")
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
        sim = f" {_pct(score.similarity)}" if score.similarity is not None else ""
        head = f"{_badge(score.passed, score.faces)}{sim} · "
    return f"{head}{d.method} · {d.name} · seed {d.seed}"


def _sheet_gallery(run: Any) -> list[GalleryItem]:
    scores = _scores_by_item(run)
    return [(str(d.path), _caption(d, scores.get(d.index))) for d in run.succeeded]


def _sheet_rows(items: list[Any], run: Any) -> list[list[Any]]:
    scores = _scores_by_item(run) if run is not None else {}
    rows = []
    for d in sorted(items, key=lambda d: d.index):
        score = scores.get(d.index)
        if not d.ok:
            rows.append([d.index, f"{d.method} · {d.name}", "", None, None, "error",
                         f"{d.error_code}: {d.error}"])
        elif score is None:
            rows.append([d.index, f"{d.method} · {d.name}", d.seed, None, None,
                         "scoring…" if run is None else "-", ""])
        else:
            rows.append([d.index, f"{d.method} · {d.name}", d.seed, score.distance,
                         score.similarity, _badge(score.passed, score.faces), score.note])
    return rows


def _summary_text(s: dict[str, Any], title: str = "Sheet") -> str:
    share = s.get("pass_rate")
    share_text = "-" if share is None else f"{share * 100:.0f}%"
    no_face = f" · no face: {s['no_face']}" if s.get("no_face") else ""
    return (f"**{title}:** {s.get('count', 0)} images · mean similarity "
            f"**{_pct(s.get('mean_similarity'))}** · min **{_pct(s.get('min_similarity'))}** · "
            f"pass {s.get('passed', 0)}/{s.get('count', 0)} (**{share_text}**) at distance ≤ "
            f"{s.get('threshold')}{no_face}")


def _sheet_summary(run: Any) -> str:
    if run.report is None:
        return f"Generated {len(run.succeeded)} images; not scored: {run.score_error or 'no report'}"
    lines = [_summary_text(run.report.summary())]
    scores = _scores_by_item(run)
    methods = sorted({d.method for d in run.succeeded})
    if len(methods) > 1:
        # Both methods ran on the same prompts and seeds: one line each to compare them.
        for method in methods:
            results = [scores[d.index] for d in run.succeeded if d.method == method]
            sims = [r.similarity for r in results if r.similarity is not None]
            passed = sum(r.passed for r in results)
            lines.append(
                f"- **{METHOD_LABELS.get(method, method)}**: mean {_pct(sum(sims) / len(sims) if sims else None)}"
                f", min {_pct(min(sims) if sims else None)}, pass {passed}/{len(results)}")
    if run.failed:
        lines.append(f"- {len(run.failed)} failed: {run.failed[0].error_code}: {run.failed[0].error}")
    lines.append(f"- wall time {run.wall_seconds:.1f} s")
    return "\n".join(lines)


def _table_rows(table: Any) -> list[list[Any]]:
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # a pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, dict) and "data" in table:
        return list(table["data"])
    return list(table)
