"""`ryla-studio`: the Gradio studio. Builds every tab (each module ui/studio/*_tab.py has
its fields, layout, behaviour and events), the header's status line, and launches it.

    ryla-studio [--host 127.0.0.1] [--port 7860] [--backend-url URL] [--data-dir DIR]
                [--share] [--auth user:pass]

`--share` needs a password: `--auth user:pass`, or RYLA_STUDIO_PASSWORD (user "ryla").
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.client import RylaClient
from ui.studio.batch import PRIVATE
from ui.studio.fields import Field
from ui.studio.flux_tab import FluxTab
from ui.studio.history import History
from ui.studio.history_tab import HistoryTab
from ui.studio.login_limit import LOGIN_MESSAGE, LoginLimiter
from ui.studio.lora_tab import LoraTab
from ui.studio.review_tab import ReviewTab
from ui.studio.sheet_tab import SheetTab
from ui.studio.status import backend_status
from ui.studio.warm import GpuState, Prewarm, PrewarmSettings

CSS_PATH = Path(__file__).with_name("studio.css")
DEFAULT_USER = "ryla"
MIN_SHARE_PASSWORD = 8  # a public link's only lock
STUDIO_RETRY_BUDGET_S = 3.0


DEMO_BANNER = ("**Demo:** the images here are placeholders from a demo backend without a GPU; "
               "every tab works, but no real model runs.")


def build_app(client: RylaClient, history: History, *, status_every: float = 15.0,
              fields: Mapping[str, tuple[Field, ...]] | None = None,
              demo: bool = False, prewarm: PrewarmSettings | None = None) -> gr.Blocks:
    """The studio as a `gr.Blocks`, not launched (tests launch it on a free port).
    `fields` replaces a tab's field spec by its kind ("flux", "sheet", "lora", "review");
    `demo` shows a banner saying that the images are placeholders (`make demo`);
    `prewarm` (default from the environment: RYLA_STUDIO_PREWARM...) warms on intent."""
    spec = dict(fields or {})
    gpu = GpuState()
    warm = Prewarm(client, gpu, prewarm or PrewarmSettings.from_env())

    def own(kind: str) -> dict[str, Any]:
        return {"fields": spec[kind]} if kind in spec else {}

    flux = FluxTab(client, history, gpu=gpu, **own("flux"))
    sheet = SheetTab(client, history, gpu=gpu, **own("sheet"))
    lora, review = LoraTab(client, history, gpu=gpu, **own("lora")), ReviewTab(history, **own("review"))
    past = HistoryTab(history, client)
    with gr.Blocks(title="RYLA Studio") as app:
        status, gpu_line, timer = _header(status_every)
        if demo:
            gr.Markdown(DEMO_BANNER, elem_id="demo-banner")
        with gr.Tabs(selected=flux.kind) as tabs:
            for tab in (flux, sheet, lora, review, past):
                with gr.Tab(tab.title, id=tab.kind, elem_id=f"tab-{tab.kind}"):
                    tab.build()
        for tab in (flux, sheet, lora, review):
            tab.wire(tabs)
        review.score_after(past.wire(tabs, [flux, sheet, lora],
                                     [review.made["reference_image"], review.made["images"]]))
        # The status line on load, then polled so that it follows the backend coming up
        # or going away.
        check = {"fn": lambda: (backend_status(client, gpu), gpu.header_html()),
                 "outputs": [status, gpu_line], "show_progress": "hidden"}
        timer.tick(**check, api_name="backend_status_tick", **PRIVATE)
        app.load(**check, **PRIVATE)
        if warm.settings.enabled:
            # The page's own script decides when (open, typing, upload: once per window)
            # and clicks this hidden trigger; the page's last ask is kept for the server's guard.
            trigger = gr.Button("warm", elem_id="ryla-warm-trigger", visible="hidden")
            asked_at = gr.State(None)
            trigger.click(warm.warm, inputs=asked_at, outputs=[gpu_line, asked_at],
                          show_progress="hidden", concurrency_limit=None, **PRIVATE)
            app.load(None, js=warm.page_script(), **PRIVATE)
        past.on_load(app)
        lora.on_load(app)
    return app


def _header(status_every: float) -> tuple[gr.HTML, gr.HTML, gr.Timer]:
    with gr.Row(elem_classes=["ryla-header"]):
        gr.Markdown("## RYLA Studio", elem_id="ryla-title")
        gpu_line = gr.HTML("", elem_id="gpu-status")
        status = gr.HTML("Backend: checking…", elem_id="backend-status")
    return status, gpu_line, gr.Timer(status_every)


def launch_options(history: History) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch` that every launch needs: the history's files
    may be served (what the studio shows; not the rest of its data folder), the page says
    nothing of the API before login, and the studio's stylesheet."""
    return {"allowed_paths": [str(history.items_dir)],
            "app_kwargs": {"middleware": [Middleware(ApiInfoAfterLogin)]},
            "css_paths": [CSS_PATH] if CSS_PATH.is_file() else None,
            "theme": gr.themes.Soft()}


API_INFO_RE = re.compile(rb"<script>window\.gradio_api_info = .*?;</script>", re.DOTALL)


class ApiInfoAfterLogin:
    """Gradio's page embeds `window.gradio_api_info` (every named endpoint and its
    parameters) even on the login page, while /gradio_api/info asks for a login. Before
    login the page gets an empty one; Gradio offers no setting for this (6.31)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gradio_app = scope.get("app")
        if (scope["type"] != "http" or scope["method"] != "GET"
                or getattr(gradio_app, "auth", None) is None or _logged_in(gradio_app, scope)):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = b""

        async def rewrite(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                if not dict(message["headers"]).get(b"content-type", b"").startswith(b"text/html"):
                    await send(message)  # scripts, styles: passed on as they come
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            body = API_INFO_RE.sub(b"<script>window.gradio_api_info = {};</script>", body)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _logged_in(gradio_app: Any, scope: Scope) -> bool:
    """As Gradio's own check: a login cookie naming a token it handed out."""
    cookies = Request(scope).cookies
    token = (cookies.get(f"access-token-{gradio_app.cookie_id}")
             or cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
    return gradio_app.tokens.get(token) is not None


def resolve_auth(auth: str | None, share: bool) -> tuple[str, str] | None:
    """(user, password) from --auth or RYLA_STUDIO_PASSWORD; None when neither is set.
    Raises SystemExit when --share is asked for without one: a public link to a GPU
    backend must not be open to anyone who finds it."""
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise SystemExit("ryla-studio: --auth takes user:password (both non-empty)")
        return user, _long_enough(password, share, "--auth's password")
    password = os.environ.get("RYLA_STUDIO_PASSWORD")
    if password:
        return DEFAULT_USER, _long_enough(password, share, "RYLA_STUDIO_PASSWORD")
    if share:
        raise SystemExit("ryla-studio: --share needs a password: set RYLA_STUDIO_PASSWORD "
                         "(user 'ryla') or pass --auth user:password")
    return None


def _long_enough(password: str, share: bool, where: str) -> str:
    if share and len(password) < MIN_SHARE_PASSWORD:
        raise SystemExit(f"ryla-studio: {where} is {len(password)} characters; a share link "
                         f"needs a password of at least {MIN_SHARE_PASSWORD}")
    return password


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
    parser.add_argument("--demo", action="store_true",
                        help="show a banner: the backend is the demo one, its images placeholders "
                             "(make demo)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = resolve_auth(args.auth, args.share)
    # A short retry budget: the status line and error popups should answer in seconds
    # when the backend is down, not after the CLI's longer wait.
    client = RylaClient(args.backend_url, retry_budget=STUDIO_RETRY_BUDGET_S)
    history = History(args.data_dir)
    app = build_app(client, history, demo=args.demo)
    app.queue(default_concurrency_limit=4)
    print(f"RYLA Studio: backend {client.base_url}, history in {history.root}", flush=True)
    # failed logins are rate-limited per username (ui/studio/login_limit.py)
    app.launch(server_name=args.host, server_port=args.port, share=args.share,
               auth=LoginLimiter(*auth) if auth else None,
               auth_message=LOGIN_MESSAGE if auth else None, prevent_thread_lock=True,
               quiet=True,  # Gradio's own hints ("set share=True in launch()") contradict --share
               **launch_options(history))
    print(f"RYLA Studio: open {app.local_url}" + ("" if args.share else
          " (for a public link: --share with a password of 8+ characters)"), flush=True)
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
