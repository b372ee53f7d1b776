"""Backend settings, declared once: each field's default is here, its environment
variable is RYLA_<FIELD> (the PostHog pair keeps PostHog's own names), and
`ryla-backend`'s flags win over both (`Settings.from_env(env, **overrides)`).

`Settings(...)` is exactly what it is given; only `from_env` reads an environment, so a
test's or a deployment's settings never pick up the shell they run in by accident.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Self

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from workflows.request_models import MAX_IMAGE_PIXELS

DEFAULT_COMFYUI_URL = "http://127.0.0.1:8188"
ENV_PREFIX = "RYLA_"


def names_list(setting: str) -> list[str]:
    """The names in a comma-separated setting, in order, spaces and blanks dropped
    (`--pipelines flux-dev, pulid`, RYLA_MODAL_WARM_UP)."""
    return [name.strip() for name in setting.split(",") if name.strip()]


class _GivenEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source reading a given mapping, not os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # as pydantic-settings reads os.environ (names case-insensitive, blanks ignored),
        # and values stripped: " off " is off
        return {name.lower(): value.strip() for name, value in self._given.items()
                if not (self.env_ignore_empty and value.strip() == "")}


class EnvironmentSettings(BaseSettings):
    """Settings read from an environment by `from_env` only (see the module's docstring)."""

    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True, populate_by_name=True, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_: Any, **__: Any):  # type: ignore[no-untyped-def,override]
        return (init_settings,)

    @classmethod
    def env_name(cls, field: str) -> str:
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[-1])
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """The settings in `env` (default: os.environ); `overrides` that are not None win."""
        values = _GivenEnvironment(cls, os.environ if env is None else env)()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{cls.env_name(str(e['loc'][0]))}: {e['msg']}" if e["loc"] else e["msg"]
                                 for e in exc.errors())
            raise ValueError(problems) from exc


class Settings(EnvironmentSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    comfyui_url: str = DEFAULT_COMFYUI_URL
    # ComfyUI's models directory: GET /models checks the manifest against it.
    models_dir: Path = Path("models")
    # ComfyUI's models/loras (the default), so that LoraLoaderModelOnly lists
    # character-<id>.safetensors
    lora_dir: Path = None  # type: ignore[assignment]
    # job records (data_dir/jobs) and saved outputs (data_dir/outputs)
    data_dir: Path = Path(".ryla/backend")
    # repr=False: secrets never reach logs through a printed Settings
    api_token: str | None = Field(default=None, repr=False)
    deadline_s: float = 600.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_lora_bytes: int = 2 * 1024 * 1024 * 1024
    max_image_pixels: int = MAX_IMAGE_PIXELS
    posthog_api_key: str | None = Field(default=None, repr=False,
                                        validation_alias=AliasChoices("posthog_api_key", "POSTHOG_API_KEY"))
    posthog_host: str | None = Field(default=None, validation_alias=AliasChoices("posthog_host", "POSTHOG_HOST"))
    # Fast mode's torch.compile; off where ComfyUI's torch cannot compile (no C compiler or
    # Triton), fast mode is then fp8 only.
    fast_mode_compile: bool = True
    # Days that job records and outputs are kept (the Modal app prunes older ones daily).
    retention_days: float = Field(default=30.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _lora_dir_inside_models_dir(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("lora_dir") is None:
            values = {**values, "lora_dir": Path(values.get("models_dir") or "models") / "loras"}
        return values
