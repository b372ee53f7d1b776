"""The web tier without Modal: its settings, and the backend's app with the hooks a
deployment on shared directories (Modal Volumes) needs.

    app = build_app(deployment_settings(os.environ, ContainerLayout()), runner)

`build_app` without a runner serves a local ComfyUI, as `ryla-backend` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backend.deploy.layout import ContainerLayout
from backend.errors import LoraNotPublished
from backend.settings import Settings

if TYPE_CHECKING:  # fastapi is only needed where the app is built
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from backend.graph_runner import GraphRunner

log = logging.getLogger(__name__)

API_SECRET_NAME = "ryla-api-token"  # the Modal Secret that holds RYLA_API_TOKEN
# Waits between attempts to publish an uploaded LoRA: a commit fails while another
# upload in the same container holds a file open on the Volume, which is brief.
PUBLISH_RETRY_DELAYS_S = (0.5, 1.0, 2.0)


def deployment_settings(env: Mapping[str, str], layout: ContainerLayout) -> Settings:
    """The backend's settings from `env`, with the paths of `layout` whatever `env` says,
    so that the API and ComfyUI always agree on where models and LoRAs live."""
    token = env.get("RYLA_API_TOKEN", "").strip()
    if not token:
        # Fail closed: a deployment without a token would be an open GPU endpoint.
        raise RuntimeError(f"RYLA_API_TOKEN is empty; set it in the Modal Secret {API_SECRET_NAME!r}")
    return Settings.from_env(env, comfyui_url=layout.comfyui_url, models_dir=layout.models_dir,
                             lora_dir=layout.lora_dir, data_dir=layout.data_dir, api_token=token)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class SharedVolumes:
    """What a deployment whose directories are shared between machines does around a
    request: refresh its view before LoRAs or models are listed or used, publish the LoRA
    directory after an upload and the data directory (job records, outputs) after each
    generation, failed ones too. Each runs on a thread; none runs for a request that
    failed auth or was refused as bad input (4xx)."""

    reload_loras: Callable[[], None] = _nothing
    reload_models: Callable[[], None] = _nothing
    publish_loras: Callable[[], None] = _nothing
    publish_data: Callable[[], None] = _nothing
    publish_retry_delays_s: Sequence[float] = field(default_factory=lambda: PUBLISH_RETRY_DELAYS_S)


def lora_routes() -> frozenset[str]:
    """The generation routes whose pipeline loads a LoRA file."""
    from workflows.registry import LORA_FILE, PIPELINES, ROUTES

    return frozenset(r.path for r in ROUTES.values() if r.pipeline and PIPELINES[r.pipeline].needs(LORA_FILE))


async def publish_with_retry(publish: Callable[[], None], delays_s: Sequence[float]) -> Exception | None:
    """Run `publish` until it succeeds, waiting `delays_s` between attempts; the last
    error if it never did."""
    for delay in (*delays_s, None):
        try:
            await asyncio.to_thread(publish)
            return None
        except Exception as exc:  # noqa: BLE001 - Modal's control plane: retried, then answered 503
            log.warning("LoRA Volume not committed: %s: %s", type(exc).__name__, exc)
            if delay is None:
                return exc
            await asyncio.sleep(delay)
    return None


def build_app(settings: Settings, runner: "GraphRunner | None" = None,
              volumes: SharedVolumes = SharedVolumes()) -> "FastAPI":
    """The same app as `ryla-backend` with `runner` behind it (None: the ComfyUI at
    settings.comfyui_url), and `volumes`' hooks around the requests that need them."""
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    from backend.api import _error_response, create_app
    from workflows.registry import ROUTES

    web_app = create_app(settings, runner)
    uses_loras = lora_routes()

    async def share_volumes(request: "Request", call_next: Callable) -> "Response":  # type: ignore[type-arg]
        path, method = request.url.path.rstrip("/"), request.method
        if (path == "/loras" and method == "GET") or path in uses_loras:
            await asyncio.to_thread(volumes.reload_loras)
        elif path == "/models":
            await asyncio.to_thread(volumes.reload_models)  # a download may have finished since
        response = await call_next(request)
        refused = 400 <= response.status_code < 500
        if path == "/loras" and method == "POST" and not refused and response.status_code < 300:
            # after the endpoint returned: the upload's files on the Volume are closed
            failed = await publish_with_retry(volumes.publish_loras, volumes.publish_retry_delays_s)
            if failed is not None:
                return _error_response(LoraNotPublished(
                    "the LoRA was saved but the LoRA Volume could not be committed, so the GPU "
                    f"containers cannot see it yet ({type(failed).__name__}: {failed}); upload it again"))
        if path in ROUTES and method == "POST" and not refused:
            await asyncio.to_thread(volumes.publish_data)
        return response

    # Innermost: Starlette runs user_middleware first to last, outermost first, and
    # add_middleware puts a new one first. Appended here, it runs after auth and the body
    # limit, so a request without the token or over the limit never touches a Volume.
    web_app.user_middleware.append(Middleware(BaseHTTPMiddleware, dispatch=share_volumes))
    return web_app
