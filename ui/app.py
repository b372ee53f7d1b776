"""`ryla-studio`: the Gradio studio. Builds the layout (ui/layout.py), wires its events
to the callbacks (ui/callbacks.py) and launches it.

    ryla-studio [--host 127.0.0.1] [--port 7860] [--backend-url URL] [--data-dir DIR]
                [--share] [--auth user:pass]

`--share` needs a password: `--auth user:pass`, or RYLA_STUDIO_PASSWORD (user "ryla").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ui.callbacks import SHEET_PRESETS, StudioCallbacks, preset_prompts
from ui.client import RylaClient
from ui.history import History
from ui.layout import StudioLayout, build_layout

CSS_PATH = Path(__file__).with_name("studio.css")
DEFAULT_USER = "ryla"
# Generation can take minutes on a cold GPU; more than a few at once only queue on it.
GENERATION_CONCURRENCY = 2
STUDIO_RETRY_BUDGET_S = 3.0


def build_app(client: RylaClient, history: History, *, status_every: float = 15.0) -> gr.Blocks:
    """The studio as a `gr.Blocks`, not launched (tests launch it on a free port)."""
    cb = StudioCallbacks(client, history)
    preset_names = list(SHEET_PRESETS)
    with gr.Blocks(title="RYLA Studio") as app:
        ui = build_layout(preset_names, preset_prompts(preset_names[0]), status_every)
        _wire(ui, cb)
        _on_load(app, ui, cb)
    return app


def _wire(ui: StudioLayout, cb: StudioCallbacks) -> None:
    private: dict[str, Any] = {"api_visibility": "private"}
    gen: dict[str, Any] = {"concurrency_limit": GENERATION_CONCURRENCY,
                           "concurrency_id": "generation"}

    # Backend status: on load, then polled.
    status_event = {"fn": cb.backend_status, "outputs": ui.status, "show_progress": "hidden"}
    ui.status_timer.tick(**status_event, api_name="backend_status_tick", **private)

    f = ui.flux
    f.generate.click(
        cb.generate_flux,
        inputs=[f.prompt, f.negative, f.size, f.steps, f.guidance, f.seed, f.random_seed,
                f.model, f.batch],
        outputs=[f.gallery, f.details, f.last_seed],
        api_name="generate_flux", **gen)
    f.reuse_seed.click(cb.reuse_seed, inputs=f.last_seed, outputs=[f.seed, f.random_seed],
                       api_name="reuse_seed")
    # Schnell is distilled for ~4 steps and no guidance: switch the defaults with it.
    f.model.change(lambda m: (4, 0.0) if m == "Schnell" else (28, 3.5), inputs=f.model,
                   outputs=[f.steps, f.guidance], **private)

    s = ui.sheet
    s.preset.change(preset_prompts, inputs=s.preset, outputs=s.prompts, **private)
    s.generate.click(
        cb.generate_sheet,
        inputs=[s.reference_in, s.method, s.instantid_strength, s.controlnet_strength,
                s.prompts, s.size, s.steps, s.seed, s.threshold],
        outputs=[s.panel.reference, s.panel.gallery, s.panel.summary, s.panel.table],
        api_name="generate_sheet", **gen)

    lo = ui.lora
    lora_list_out = [lo.table, lo.lora, lo.trigger_word]
    lo.refresh.click(cb.list_loras, outputs=lora_list_out, api_name="list_loras")
    lo.lora.change(cb.trigger_for, inputs=[lo.lora, lo.table], outputs=lo.trigger_word, **private)
    lo.upload.click(cb.upload_lora, inputs=[lo.upload_file, lo.upload_id, lo.upload_trigger],
                    outputs=[lo.upload_result, lo.table, lo.lora, lo.trigger_word],
                    api_name="upload_lora")
    lo.generate.click(
        cb.generate_lora,
        inputs=[lo.lora, lo.trigger_word, lo.strength, lo.prompt, lo.size, lo.steps,
                lo.guidance, lo.seed, lo.batch],
        outputs=[lo.gallery, lo.details], api_name="generate_lora", **gen)

    r = ui.review
    r.run.click(cb.review, inputs=[r.reference_in, r.images_in, r.threshold],
                outputs=[r.panel.reference, r.panel.gallery, r.panel.summary, r.panel.table,
                         r.report],
                api_name="review")

    h = ui.history
    h.refresh.click(cb.list_history, outputs=[h.table, h.item], api_name="list_history")
    h.item.change(cb.show_history_item, inputs=h.item, outputs=[h.gallery, h.params],
                  api_name="history_item")
    h.reuse.click(
        cb.reuse_settings, inputs=h.item,
        outputs=[ui.tabs,
                 f.prompt, f.negative, f.size, f.steps, f.guidance, f.seed, f.random_seed,
                 f.model, f.batch,
                 lo.lora, lo.trigger_word, lo.strength, lo.prompt, lo.size, lo.steps,
                 lo.guidance, lo.seed, lo.batch,
                 s.reference_in, s.method, s.instantid_strength, s.controlnet_strength,
                 s.prompts, s.size, s.steps, s.seed, s.threshold],
        api_name="reuse_settings")
    h.to_review.click(cb.open_in_review, inputs=h.item,
                      outputs=[r.reference_in, r.images_in, ui.tabs], api_name="open_in_review")



def _on_load(app: gr.Blocks, ui: StudioLayout, cb: StudioCallbacks) -> None:
    """Fill what needs no click, once per page load. No backend must not pop errors on
    load, so the LoRA list loads quietly here and loudly from its button."""
    private: dict[str, Any] = {"api_visibility": "private"}
    app.load(cb.backend_status, outputs=ui.status, show_progress="hidden", **private)
    app.load(cb.list_history, outputs=[ui.history.table, ui.history.item], **private)
    app.load(cb.list_loras_quietly, outputs=[ui.lora.table, ui.lora.lora, ui.lora.trigger_word],
             show_progress="hidden", **private)


def launch_options(history: History) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch` that every launch needs: history files may
    be served, and the studio's stylesheet."""
    return {"allowed_paths": [str(history.root)], "css_paths": [CSS_PATH] if CSS_PATH.is_file() else None,
            "theme": gr.themes.Soft()}


def resolve_auth(auth: str | None, share: bool) -> tuple[str, str] | None:
    """(user, password) from --auth or RYLA_STUDIO_PASSWORD; None when neither is set.
    Raises SystemExit when --share is asked for without one: a public link to a GPU
    backend must not be open to anyone who finds it."""
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise SystemExit("ryla-studio: --auth takes user:password (both non-empty)")
        return user, password
    password = os.environ.get("RYLA_STUDIO_PASSWORD")
    if password:
        return DEFAULT_USER, password
    if share:
        raise SystemExit("ryla-studio: --share needs a password: set RYLA_STUDIO_PASSWORD "
                         "(user 'ryla') or pass --auth user:password")
    return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ryla-studio", description="RYLA Studio (Gradio UI)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true",
                        help="open a public Gradio share link (needs --auth or RYLA_STUDIO_PASSWORD)")
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login")
    parser.add_argument("--backend-url", help="backend base URL (default RYLA_BACKEND_URL or "
                        "http://127.0.0.1:8000)")
    parser.add_argument("--data-dir", type=Path,
                        help="history folder (default RYLA_STUDIO_DATA or ~/.ryla)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = resolve_auth(args.auth, args.share)
    # A short retry budget: the status line and error popups should answer in seconds
    # when the backend is down, not after the CLI's longer wait.
    client = RylaClient(args.backend_url, retry_budget=STUDIO_RETRY_BUDGET_S)
    history = History(args.data_dir)
    app = build_app(client, history)
    app.queue(default_concurrency_limit=4)
    print(f"RYLA Studio: backend {client.base_url}, history in {history.root}", flush=True)
    app.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
               auth_message="RYLA Studio" if auth else None, prevent_thread_lock=True,
               **launch_options(history))
    if args.share and not app.share_url:
        # Gradio prints its own reason; say plainly that the studio is still usable.
        print(f"ryla-studio: the share link could not be opened (no network?); the studio "
              f"keeps running locally at {app.local_url}", file=sys.stderr, flush=True)
    try:
        app.block_thread()
    except KeyboardInterrupt:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
