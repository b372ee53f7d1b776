"""`ryla-backend`: the HTTP API served locally by uvicorn, against a ComfyUI."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Sequence

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.errors import HeadersTooLarge
from backend.settings import DEFAULT_COMFYUI_URL, Settings

# A request's line and headers together, in bytes: uvicorn's h11 parser buffers no more
# and answers 400 (a browser sends about 1-2 KiB, a bearer token adds a few hundred bytes).
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100  # as Python's http.client and aiohttp


class HeaderCountLimit:
    """A request with more than MAX_HEADERS headers is a 431 before any other work,
    authentication included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > MAX_HEADERS:
            error = HeadersTooLarge(f"the request has {len(scope['headers'])} headers; "
                                    f"at most {MAX_HEADERS} are accepted")
            await JSONResponse(error.to_body(), status_code=error.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def server_config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    """uvicorn serving `app` with bounded request heads: the h11 parser, which stops
    buffering at MAX_HEADER_BYTES (httptools buffers a header of any size), and at most
    MAX_HEADERS headers. `options` are uvicorn.Config's (host, port, log_level...)."""
    return uvicorn.Config(HeaderCountLimit(app), http="h11",
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES, **options)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ryla-backend",
        description="Serve the RYLA Studio HTTP API (the routes of docs/api.md) against a ComfyUI. "
                    "Environment: RYLA_API_TOKEN, RYLA_COMFYUI_URL, RYLA_MODELS_DIR, "
                    "RYLA_LORA_DIR, RYLA_DATA_DIR, RYLA_DEADLINE_S, POSTHOG_API_KEY.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--comfyui-url", default=None,
                        help=f"ComfyUI base URL (default $RYLA_COMFYUI_URL or {DEFAULT_COMFYUI_URL})")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="ComfyUI's models directory (default $RYLA_MODELS_DIR or ./models)")
    parser.add_argument("--lora-dir", type=Path, default=None,
                        help="where LoRAs are stored (default <models-dir>/loras)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="job records and outputs (default $RYLA_DATA_DIR or .ryla/backend)")
    parser.add_argument("--deadline-s", type=float, default=None,
                        help="seconds a generation may take before it is cancelled (default 600)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    lora_dir = args.lora_dir
    if lora_dir is None and args.models_dir is not None:
        lora_dir = args.models_dir / "loras"
    return Settings.from_env(comfyui_url=args.comfyui_url, models_dir=args.models_dir,
                             lora_dir=lora_dir, data_dir=args.data_dir, deadline_s=args.deadline_s)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from backend.api import create_app  # after logging is set up

    config = server_config(create_app(settings_from_args(args)), host=args.host,
                           port=args.port, log_level=args.log_level)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
