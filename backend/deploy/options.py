"""The settings read when deploying (`RYLA_MODAL_GPU=A100-80GB modal deploy ...`), and
what of the deploying shell's environment the containers are given.

`modal deploy` imports backend/modal_app.py on the deploying machine, and every container
imports it again, where that shell's variables are absent. So everything read at deploy
time is handed to the containers explicitly (`container_env`, the functions' `env=`), and
the module reads the same values in both places.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from backend.settings import EnvironmentSettings, Settings, names_list


# What /health says a cold GPU adds to the next generation, in seconds: a container
# start, ComfyUI's start and the first load of the weights. The GPU rehearsal's cold
# start to the first Flux Dev image (2026-11-26, H100s, page cache dropped, without
# Modal) was 50-52 s on three machines and 63 s on a fourth (docs/performance.md); 62 is
# near the slow end. Replace it with the cold start measured on Modal (the check prints it).
MEASURED_COLD_START_S = 62.0


class DeployOptions(EnvironmentSettings):
    # not ignoring blanks: RYLA_MODAL_WARM_UP= (empty) means no warm-up
    model_config = EnvironmentSettings.model_config | {"env_prefix": "RYLA_MODAL_",
                                                       "env_ignore_empty": False}

    # An 80 GB card holds Flux Dev (fp16, 24 GB) with T5 and the face models at once.
    gpu: str = "H100"
    # The most GPU containers at once: the ceiling of the bill. Requests past it wait.
    max_containers: int = Field(default=5, ge=1)
    min_containers: int = Field(default=0, ge=0)  # 1 = always warm, and billed
    # Idle seconds before a GPU container stops; they are billed as GPU time.
    scaledown_s: int = Field(default=300, ge=2)
    # GPU memory snapshots are alpha on Modal; 0 deploys without them (cold starts then pay
    # for torch's import and node loading, ~30-60 s more).
    gpu_snapshot: bool = True
    # What the GPU container's start loads before its snapshot (backend/warmup.py),
    # comma-separated; empty: nothing (a smaller snapshot, a slow first image).
    warm_up: Annotated[tuple[str, ...], NoDecode] = ("flux-dev",)
    # Working hours in which one GPU container is kept warm (backend/warm_hours.py), e.g.
    # `Mon-Fri 09:00-18:00 Europe/Berlin`; empty: none kept warm (docs/warm.md).
    warm_hours: str = Field(default="", validation_alias=AliasChoices("warm_hours", "RYLA_WARM_HOURS"))

    @field_validator("warm_up", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        return tuple(names_list(value)) if isinstance(value, str) else value

    @field_validator("warm_up")
    @classmethod
    def _known(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        # a misspelt warm-up fails `modal deploy`, not every GPU container's start
        from backend.warmup import warm_up_names

        return tuple(warm_up_names(names))

    @field_validator("warm_hours")
    @classmethod
    def _parses(cls, spec: str) -> str:
        # a bad spec fails `modal deploy`, naming the part that is wrong
        from backend.warm_hours import parse_warm_hours

        if spec.strip():
            parse_warm_hours(spec)
        return spec.strip()


# The backend's settings that a deployment sets in its own shell; the paths follow the
# container layout and the secrets come from Modal Secrets, so neither is passed on.
_NOT_PASSED_ON = frozenset({"comfyui_url", "models_dir", "lora_dir", "data_dir", "api_token",
                            "posthog_api_key"})


def passed_on_names() -> list[str]:
    """The variables `container_env` passes on, when the deploying shell sets them."""
    return ([DeployOptions.env_name(f) for f in DeployOptions.model_fields]
            + [Settings.env_name(f) for f in Settings.model_fields if f not in _NOT_PASSED_ON])


def container_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The deploy-time settings `environ` sets, for the containers' environment."""
    return {name: environ[name] for name in passed_on_names() if name in environ}
