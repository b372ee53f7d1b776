"""Backend settings, from the environment (and `ryla-backend`'s flags, which win)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from workflows.request_models import MAX_IMAGE_PIXELS

DEFAULT_COMFYUI_URL = "http://127.0.0.1:8188"


def names_list(setting: str) -> list[str]:
    """The names in a comma-separated setting, in order, spaces and blanks dropped
    (`--pipelines flux-dev, pulid`, RYLA_MODAL_WARM_UP)."""
    return [name.strip() for name in setting.split(",") if name.strip()]


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    comfyui_url: str = DEFAULT_COMFYUI_URL
    # ComfyUI's models directory: GET /models checks the manifest against it.
    models_dir: Path = Path("models")
    # ComfyUI's models/loras, so that LoraLoaderModelOnly lists character-<id>.safetensors
    lora_dir: Path = Path("models/loras")
    # job records (data_dir/jobs) and saved outputs (data_dir/outputs)
    data_dir: Path = Path(".ryla/backend")
    # repr=False: secrets never reach logs through a printed Settings
    api_token: str | None = field(default=None, repr=False)
    deadline_s: float = 600.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_lora_bytes: int = 2 * 1024 * 1024 * 1024
    max_image_pixels: int = MAX_IMAGE_PIXELS
    posthog_api_key: str | None = field(default=None, repr=False)
    posthog_host: str | None = None
    # Fast mode's torch.compile; off where ComfyUI's torch cannot compile (no C compiler or
    # Triton), fast mode is then fp8 only.
    fast_mode_compile: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        env = os.environ if env is None else env
        models_dir = Path(env.get("RYLA_MODELS_DIR", "models"))
        settings = cls(
            comfyui_url=env.get("RYLA_COMFYUI_URL", DEFAULT_COMFYUI_URL),
            models_dir=models_dir,
            lora_dir=Path(env.get("RYLA_LORA_DIR", str(models_dir / "loras"))),
            data_dir=Path(env.get("RYLA_DATA_DIR", ".ryla/backend")),
            api_token=env.get("RYLA_API_TOKEN") or None,
            deadline_s=_env_float(env, "RYLA_DEADLINE_S", 600.0),
            max_body_bytes=int(_env_float(env, "RYLA_MAX_BODY_BYTES", 32 * 1024 * 1024)),
            posthog_api_key=env.get("POSTHOG_API_KEY") or None,
            posthog_host=env.get("POSTHOG_HOST") or None,
            fast_mode_compile=env.get("RYLA_FAST_MODE_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off"),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
