"""Read what Modal objects were declared with, offline (modal 1.6.x, no token).

Modal keeps a function's options in the closure of its loader and an image's build
steps in the closures of its layers; nothing public exposes them without a server.
These helpers read those closures. If a Modal upgrade moves them, these helpers fail
loudly (KeyError/AttributeError) rather than letting a test pass on nothing.
"""

from __future__ import annotations

from typing import Any

import modal
from modal._partial_function import _PartialFunctionFlags
from modal._utils.async_utils import synchronizer

# Any builder version Modal accepts; the steps recorded here do not depend on it.
IMAGE_BUILDER_VERSION = "2025.06"


def _closure_vars(fn: Any) -> dict[str, Any]:
    cells = fn.__closure__ or ()
    return dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in cells)))


def function_options(obj: modal.Function | modal.Cls) -> dict[str, Any]:
    """The keyword values @app.function / @app.cls (and @modal.concurrent) recorded."""
    if isinstance(obj, modal.Cls):
        obj = obj._get_class_service_function()
    inner = synchronizer._translate_in(obj)
    options = _closure_vars(inner._load)
    for key in ("gpu", "validated_volumes_no_cloud_buckets", "secrets", "enable_memory_snapshot",
                "experimental_options", "max_concurrent_inputs", "target_concurrent_inputs_int",
                "scaledown_window", "min_containers", "timeout", "image", "method_definitions"):
        if key not in options:
            raise KeyError(f"modal no longer records {key!r} where these tests look")
    return options


def volume_names(options: dict[str, Any]) -> dict[str, str]:
    """mount path -> Volume name."""
    # repr is modal.Volume.from_name('name'): the name is not kept anywhere else offline
    return {path: repr(vol).split("'")[1] for path, vol in options["validated_volumes_no_cloud_buckets"]}


def secret_names(options: dict[str, Any]) -> list[str]:
    """The named Secrets (Secret.from_name) a function gets."""
    return [repr(s).split("'")[1] for s in options["secrets"] if "from_name" in repr(s)]


def secret_env(options: dict[str, Any]) -> dict[str, str]:
    """The variables the function's container gets from Secret.from_dict (what `env=` makes)."""
    env: dict[str, str] = {}
    for secret in options["secrets"]:
        if "from_dict" not in repr(secret):
            continue
        # _load -> load_env_dict -> the dict it was given
        loader = _closure_vars(synchronizer._translate_in(secret)._load)["load_env_dict"]
        found = [v for v in _closure_vars(loader).values() if isinstance(v, dict)]
        if len(found) != 1:
            raise KeyError("modal no longer keeps Secret.from_dict's variables where these tests look")
        env.update(found[0])
    return env


def local_python_sources(image: modal.Image) -> set[str]:
    """Packages added with add_local_python_source."""
    return set(synchronizer._translate_in(image)._added_python_source_set)


def image_commands(image: modal.Image) -> list[str]:
    """Every Dockerfile line of the image and its base layers, base first."""
    layers: list[list[str]] = []
    stack = [synchronizer._translate_in(image)]
    seen: set[int] = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        closure = _closure_vars(layer._load)
        dockerfile_function = closure.get("dockerfile_function")
        if dockerfile_function is not None:
            layers.append(list(dockerfile_function(IMAGE_BUILDER_VERSION).commands))
        if "base_image" in closure:  # a local-files layer (add_local_*): its base only
            stack.append(closure["base_image"])
        elif layer._deps is not None:
            stack.extend(d for d in layer._deps() if type(d).__name__ == "_Image")
    return [line for commands in reversed(layers) for line in commands]


def method_flags(cls: modal.Cls) -> dict[str, _PartialFunctionFlags]:
    return {name: _PartialFunctionFlags(synchronizer._translate_in(pf).flags)
            for name, pf in cls._get_partial_functions().items()}


def method_params(cls: modal.Cls, name: str) -> Any:
    return synchronizer._translate_in(cls._get_partial_functions()[name]).params


def raw_method(cls: modal.Cls, name: str) -> Any:
    return synchronizer._translate_in(cls._get_partial_functions()[name]).raw_f


def raw_function(fn: modal.Function) -> Any:
    """The Python function an @app.function decorated."""
    return synchronizer._translate_in(fn)._raw_f


def webhook_config(obj: modal.Function) -> Any:
    """The web endpoint config of a function (None when it serves no endpoint)."""
    return function_options(obj).get("webhook_config")


def uses_image(options: dict[str, Any], image: modal.Image) -> bool:
    """Whether a function was declared with this image."""
    return options["image"] is synchronizer._translate_in(image)
