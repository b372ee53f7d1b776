"""The studio's layout: components only, no behaviour (events are wired in ui/app.py,
their functions live in ui/callbacks.py).

Every component a test or a callback needs is a field of `StudioLayout`; elem_ids
give Playwright stable handles that do not depend on label wording.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

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

MODEL_CHOICES = ["Dev", "Schnell"]
METHOD_CHOICES = ["InstantID (SDXL)", "PuLID (Flux)", "Both (compare)"]

TAB_FLUX, TAB_SHEET, TAB_LORA, TAB_REVIEW, TAB_HISTORY = "flux", "sheet", "lora", "review", "history"


@dataclass
class FluxTab:
    prompt: gr.Textbox
    negative: gr.Textbox
    size: gr.Dropdown
    steps: gr.Slider
    guidance: gr.Slider
    seed: gr.Number
    random_seed: gr.Checkbox
    reuse_seed: gr.Button
    model: gr.Radio
    batch: gr.Slider
    generate: gr.Button
    gallery: gr.Gallery
    details: gr.Dataframe
    last_seed: gr.Number


@dataclass
class ReviewPanel:
    """Reference beside its scored outputs, shared by the Character sheet and Review tabs."""

    reference: gr.Image
    gallery: gr.Gallery
    summary: gr.Markdown
    table: gr.Dataframe


@dataclass
class SheetTab:
    reference_in: gr.Image
    method: gr.Radio
    instantid_strength: gr.Slider
    controlnet_strength: gr.Slider
    preset: gr.Dropdown
    prompts: gr.Textbox
    size: gr.Dropdown
    steps: gr.Slider
    seed: gr.Number
    threshold: gr.Slider
    generate: gr.Button
    panel: ReviewPanel


@dataclass
class LoraTab:
    table: gr.Dataframe
    refresh: gr.Button
    upload_file: gr.File
    upload_id: gr.Textbox
    upload_trigger: gr.Textbox
    upload: gr.Button
    upload_result: gr.Markdown
    lora: gr.Dropdown
    trigger_word: gr.Textbox
    strength: gr.Slider
    prompt: gr.Textbox
    size: gr.Dropdown
    steps: gr.Slider
    guidance: gr.Slider
    seed: gr.Number
    batch: gr.Slider
    generate: gr.Button
    gallery: gr.Gallery
    details: gr.Dataframe


@dataclass
class ReviewTab:
    reference_in: gr.Image
    images_in: gr.File
    threshold: gr.Slider
    run: gr.Button
    panel: ReviewPanel
    report: gr.File


@dataclass
class HistoryTab:
    refresh: gr.Button
    table: gr.Dataframe
    item: gr.Dropdown
    gallery: gr.Gallery
    params: gr.JSON
    reuse: gr.Button
    to_review: gr.Button


@dataclass
class StudioLayout:
    status: gr.HTML
    status_timer: gr.Timer
    tabs: gr.Tabs
    flux: FluxTab
    sheet: SheetTab
    lora: LoraTab
    review: ReviewTab
    history: HistoryTab


def _size_dropdown(elem_id: str) -> gr.Dropdown:
    # Custom values let "use these settings again" restore a size that is not a preset.
    return gr.Dropdown(list(SIZE_PRESETS), value=DEFAULT_SIZE, label="Size", elem_id=elem_id,
                       allow_custom_value=True)


def _review_panel(prefix: str) -> ReviewPanel:
    # The reference sits in a narrow column left of the outputs so that every output
    # is judged against the same face at a glance.
    with gr.Row(equal_height=False, elem_classes=["ryla-side-by-side"]):
        with gr.Column(scale=1, min_width=200):
            reference = gr.Image(
                label="Reference", type="filepath", interactive=False,
                elem_id=f"{prefix}-reference-view", height=320,
            )
        with gr.Column(scale=3):
            gallery = gr.Gallery(
                label="Outputs (face similarity and pass/fail)", columns=4, height=520,
                object_fit="contain", elem_id=f"{prefix}-outputs", interactive=False,
            )
    summary = gr.Markdown(elem_id=f"{prefix}-summary")
    table = gr.Dataframe(
        headers=["#", "label", "seed", "distance", "similarity %", "result", "note"],
        label="Scores", interactive=False, elem_id=f"{prefix}-scores", wrap=True,
    )
    return ReviewPanel(reference=reference, gallery=gallery, summary=summary, table=table)


def _flux_tab() -> FluxTab:
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id="flux-prompt",
                                placeholder="a portrait photo of ...")
            negative = gr.Textbox(label="Negative prompt", lines=2, elem_id="flux-negative")
            with gr.Row():
                model = gr.Radio(MODEL_CHOICES, value="Dev", label="Model", elem_id="flux-model")
                size = _size_dropdown("flux-size")
            with gr.Row():
                steps = gr.Slider(1, 100, value=28, step=1, label="Steps", elem_id="flux-steps")
                guidance = gr.Slider(0, 20, value=3.5, step=0.1, label="Guidance",
                                     elem_id="flux-guidance")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="flux-seed")
                random_seed = gr.Checkbox(value=True, label="Random seed", elem_id="flux-random")
                reuse_seed = gr.Button("Reuse last seed", size="sm", elem_id="flux-reuse")
            batch = gr.Slider(1, 8, value=1, step=1, label="Batch count", elem_id="flux-batch")
            generate = gr.Button("Generate", variant="primary", elem_id="flux-generate")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Results", columns=2, height=520, object_fit="contain",
                                 elem_id="flux-gallery", interactive=False)
            details = gr.Dataframe(headers=["#", "seed", "timings"], label="Seeds and timings",
                                   interactive=False, elem_id="flux-details", wrap=True)
            last_seed = gr.Number(label="Last seed", precision=0, interactive=False,
                                  elem_id="flux-last-seed")
    return FluxTab(prompt, negative, size, steps, guidance, seed, random_seed, reuse_seed,
                   model, batch, generate, gallery, details, last_seed)


def _sheet_tab(preset_names: list[str], default_prompts: str) -> SheetTab:
    with gr.Row():
        with gr.Column(scale=1):
            reference_in = gr.Image(label="Reference face", type="filepath",
                                    sources=["upload", "clipboard"], elem_id="sheet-reference",
                                    height=260)
            method = gr.Radio(METHOD_CHOICES, value=METHOD_CHOICES[0], label="Method",
                              elem_id="sheet-method")
            instantid_strength = gr.Slider(0, 1.5, value=0.8, step=0.05,
                                           label="Identity strength", elem_id="sheet-id-strength")
            controlnet_strength = gr.Slider(0, 1.5, value=0.8, step=0.05,
                                            label="ControlNet strength (InstantID)",
                                            elem_id="sheet-cn-strength")
            with gr.Row():
                size = _size_dropdown("sheet-size")
                steps = gr.Slider(1, 100, value=30, step=1, label="Steps", elem_id="sheet-steps")
            with gr.Row():
                seed = gr.Number(value=1, precision=0, minimum=0,
                                 label="Seed (every image and both methods; empty: random)",
                                 elem_id="sheet-seed")
                threshold = gr.Slider(0.3, 0.9, value=0.6, step=0.01,
                                      label="Pass threshold (face distance)",
                                      elem_id="sheet-threshold")
        with gr.Column(scale=2):
            preset = gr.Dropdown(preset_names, value=preset_names[0] if preset_names else None,
                                 label="Variation preset", elem_id="sheet-preset")
            prompts = gr.Textbox(value=default_prompts, lines=10, max_lines=14,
                                 label="Variation prompts (one per line, 7-10)",
                                 elem_id="sheet-prompts")
            generate = gr.Button("Generate sheet", variant="primary", elem_id="sheet-generate")
    panel = _review_panel("sheet")
    return SheetTab(reference_in, method, instantid_strength, controlnet_strength, preset,
                    prompts, size, steps, seed, threshold, generate, panel)


def _lora_tab() -> LoraTab:
    with gr.Row():
        with gr.Column(scale=1):
            table = gr.Dataframe(headers=["id", "trigger word"], label="LoRAs on the backend",
                                 interactive=False, elem_id="lora-table")
            refresh = gr.Button("Refresh list", size="sm", elem_id="lora-refresh")
            with gr.Accordion("Upload a LoRA", open=False):
                upload_file = gr.File(label=".safetensors file", file_types=[".safetensors"],
                                      elem_id="lora-upload-file")
                upload_id = gr.Textbox(label="LoRA id (letters, digits, _ and -)",
                                       elem_id="lora-upload-id")
                upload_trigger = gr.Textbox(label="Trigger word", elem_id="lora-upload-trigger")
                upload = gr.Button("Upload", elem_id="lora-upload")
                upload_result = gr.Markdown(elem_id="lora-upload-result")
        with gr.Column(scale=2):
            with gr.Row():
                lora = gr.Dropdown([], label="LoRA", elem_id="lora-choice",
                                   allow_custom_value=True)
                trigger_word = gr.Textbox(label="Trigger word (applied to the prompt)",
                                          elem_id="lora-trigger")
            strength = gr.Slider(0.0, 1.0, value=0.8, step=0.05, label="LoRA strength",
                                 elem_id="lora-strength")
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id="lora-prompt")
            with gr.Row():
                size = _size_dropdown("lora-size")
                steps = gr.Slider(1, 100, value=28, step=1, label="Steps", elem_id="lora-steps")
                guidance = gr.Slider(0, 20, value=3.5, step=0.1, label="Guidance",
                                     elem_id="lora-guidance")
            with gr.Row():
                seed = gr.Number(value=None, precision=0, minimum=0,
                                 label="Seed (empty: random)", elem_id="lora-seed")
                batch = gr.Slider(1, 8, value=1, step=1, label="Batch count", elem_id="lora-batch")
            generate = gr.Button("Generate with LoRA", variant="primary", elem_id="lora-generate")
    gallery = gr.Gallery(label="Results", columns=4, height=420, object_fit="contain",
                         elem_id="lora-gallery", interactive=False)
    details = gr.Dataframe(headers=["#", "seed", "timings"], label="Seeds and timings",
                           interactive=False, elem_id="lora-details", wrap=True)
    return LoraTab(table, refresh, upload_file, upload_id, upload_trigger, upload, upload_result,
                   lora, trigger_word, strength, prompt, size, steps, guidance, seed, batch,
                   generate, gallery, details)


def _review_tab() -> ReviewTab:
    gr.Markdown("Score any images against any reference face. Works without a backend.")
    with gr.Row():
        reference_in = gr.Image(label="Reference face", type="filepath", elem_id="review-reference",
                                height=240, scale=1)
        images_in = gr.File(label="Images to review", file_count="multiple",
                            file_types=["image"], elem_id="review-images", scale=2)
    with gr.Row():
        threshold = gr.Slider(0.3, 0.9, value=0.6, step=0.01,
                              label="Pass threshold (face distance)", elem_id="review-threshold")
        run = gr.Button("Review", variant="primary", elem_id="review-run")
    panel = _review_panel("review")
    report = gr.File(label="Report (JSON, CSV, contact sheet)", file_count="multiple",
                     interactive=False, elem_id="review-report")
    return ReviewTab(reference_in, images_in, threshold, run, panel, report)


def _history_tab() -> HistoryTab:
    with gr.Row():
        # Custom values: the choices are those of the last refresh, and an id from a
        # newer run (or pasted from the folder name) must still open.
        item = gr.Dropdown([], label="Item", elem_id="history-item", scale=3,
                           allow_custom_value=True)
        refresh = gr.Button("Refresh", size="sm", elem_id="history-refresh", scale=1)
    table = gr.Dataframe(headers=["id", "when", "kind", "prompt", "images", "seeds", "mean similarity"],
                         label="History (newest first)", interactive=False,
                         elem_id="history-table", wrap=True, max_height=300)
    with gr.Row():
        gallery = gr.Gallery(label="Files", columns=4, height=360, object_fit="contain",
                             elem_id="history-gallery", interactive=False, scale=2)
        params = gr.JSON(label="Parameters, seeds, timings, scores", elem_id="history-params",
                         scale=1)
    with gr.Row():
        reuse = gr.Button("Use these settings again", variant="primary", elem_id="history-reuse")
        to_review = gr.Button("Open in Review", elem_id="history-to-review")
    return HistoryTab(refresh, table, item, gallery, params, reuse, to_review)


def build_layout(preset_names: list[str], default_prompts: str,
                 status_every: float = 15.0) -> StudioLayout:
    """Create every component; call inside a `gr.Blocks` context."""
    with gr.Row(elem_classes=["ryla-header"]):
        gr.Markdown("## RYLA Studio", elem_id="ryla-title")
        status = gr.HTML("Backend: checking…", elem_id="backend-status")
    # Polled so that the status follows the backend coming up or going away.
    status_timer = gr.Timer(status_every)
    with gr.Tabs(selected=TAB_FLUX) as tabs:
        with gr.Tab("Flux Dev", id=TAB_FLUX, elem_id="tab-flux"):
            flux = _flux_tab()
        with gr.Tab("Character sheet", id=TAB_SHEET, elem_id="tab-sheet"):
            sheet = _sheet_tab(preset_names, default_prompts)
        with gr.Tab("LoRA", id=TAB_LORA, elem_id="tab-lora"):
            lora = _lora_tab()
        with gr.Tab("Review", id=TAB_REVIEW, elem_id="tab-review"):
            review = _review_tab()
        with gr.Tab("History", id=TAB_HISTORY, elem_id="tab-history"):
            history = _history_tab()
    return StudioLayout(status, status_timer, tabs, flux, sheet, lora, review, history)
