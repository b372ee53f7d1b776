"""Each Modal image's Python packages are enough for what that image runs.

A clean virtualenv gets exactly the packages an image of backend/modal_app.py installs, in
one pip resolve as the image does, and a copy of only the packages the image adds
(backend/, workflows/); then what that image runs is built there:

- the CPU image (CPU_IMAGE_PACKAGES): the web tier's app, the way `web` builds it
  (deployment settings, the app with the Modal runner, whose GPU function and heartbeat
  store are stand-ins here), answering /models and /health;
- the GPU image (IMAGE_PACKAGES: ComfyUI's pinned requirements, the node packs', the
  backend's and the Hub's): the GPU class's worker (backend.gpu_worker, ComfyUI's command
  line, the ComfyUI client) and the same web app.

A module the code imports but the image lacks, or lists that cannot be installed
together, fail here. The GPU stack is left out: torch, torchvision and torchaudio are
installed as metadata-only stand-ins of the pinned versions (the packages that require
them resolve without gigabytes of CUDA libraries, and nothing can import them),
onnxruntime-gpu not at all. Slow on a first run (the GPU image's lists are about a
gigabyte of wheels); pip's cache makes reruns fast (PIP_CACHE_DIR, else ~/.cache/pip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from backend.deploy import image as pins

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 40 * 60  # a guard for a first, uncached run on a slow line


def _stand_in_wheel(spec: str, folder: Path) -> Path:
    """A wheel of `name==version` that installs nothing but its metadata."""
    name, version = spec.split("==")
    dist_info = f"{name}-{version}.dist-info"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 "Summary: stand-in for the GPU build (tests only)\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: ryla-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
        record = "".join(f"{member},,\n" for member in files) + f"{dist_info}/RECORD,,\n"
        wheel.writestr(f"{dist_info}/RECORD", record)
    return path


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(cmd[:4])} ...\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


def _image_env(base: Path, packages: Sequence[str]) -> tuple[str, dict[str, str], Path]:
    """(python, installed name -> version, source root) of a clean virtualenv holding
    `packages` minus the GPU stack, and the image's own source packages."""
    assert sys.version_info[:2] == (3, 11), "the images are python 3.11; run this with 3.11"
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--cache-dir", cache]
    torch_stack = [spec for spec in packages if spec in pins.TORCH_PACKAGES]
    if torch_stack:
        wheels = base / "stand-ins"
        wheels.mkdir()
        stand_ins = [str(_stand_in_wheel(spec, wheels)) for spec in torch_stack]
        _run([*pip, "install", "--no-deps", "--no-index", *stand_ins], timeout=300)
    # torch's pins stay in: the resolve must agree with them, which the stand-ins satisfy
    wanted = [spec for spec in packages if spec not in pins.GPU_PACKAGES or spec in torch_stack]
    _run([*pip, "install", *wanted], timeout=INSTALL_TIMEOUT_S)
    installed = {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(
        _run([*pip, "list", "--format", "json"], timeout=120).stdout)}
    source = base / "root"  # only what the image adds: add_local_python_source
    for package in pins.LOCAL_PACKAGES:
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return python, installed, source


def _run_in_image(python: str, source: Path, code: str, base: Path) -> dict:
    out = _run([python, "-c", code, str(base / "deploy")], cwd=source, timeout=300,
               env={"PATH": os.environ.get("PATH", ""), "HOME": str(base)})
    return json.loads(out.stdout.strip().splitlines()[-1])


# The web tier as `web` builds it, with stand-ins for the Modal objects behind the runner.
BUILD_WEB_APP = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from fastapi.testclient import TestClient
    from backend.deploy.layout import ContainerLayout
    from backend.deploy.web import build_app, deployment_settings
    from backend.modal_dispatch import ModalGraphRunner
    from backend.snapshot_validation import SnapshotValidator

    class NoGpu:
        async def spawn(self, wire_job):
            raise RuntimeError("no GPU function in this test")

    class NoHeartbeats:
        async def read(self):
            return {}

    base = Path(sys.argv[1])
    layout = ContainerLayout(comfyui_dir=base / "ComfyUI", lora_dir=base / "loras",
                             data_dir=base / "data")
    env = {"RYLA_API_TOKEN": "t0k", "POSTHOG_API_KEY": "phc_test"}  # PostHog imported too
    settings = deployment_settings(env, layout)
    runner = ModalGraphRunner(NoGpu(), NoHeartbeats(),
                              SnapshotValidator(settings.models_dir, settings.lora_dir),
                              cold_start_s=73, heartbeat_stale_s=30)
    app = build_app(settings, runner)
    auth = {"Authorization": "Bearer t0k"}
    with TestClient(app) as client:
        denied = client.get("/models").status_code
        models = client.get("/models", headers=auth)
        health = client.get("/health")
    try:
        import torch  # noqa: F401
        torch_importable = True
    except ImportError:
        torch_importable = False
    print(json.dumps({"routes": sorted(r.path for r in app.routes), "denied": denied,
                      "models": models.status_code, "rows": len(models.json()),
                      "health": health.status_code, "analytics": "posthog" in sys.modules,
                      "torch_importable": torch_importable}))
""")

# The GPU class's side: its worker and ComfyUI's command line, then the same web app.
BUILD_GPU_WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from backend.comfyui_client import ComfyUIClient
    from backend.deploy.comfyui import comfyui_command
    from backend.deploy.layout import ContainerLayout
    from backend.gpu_worker import GpuWorker

    base = Path(sys.argv[1])
    layout = ContainerLayout(comfyui_dir=base / "ComfyUI", lora_dir=base / "loras")
    worker = GpuWorker(layout.comfyui_url, models_dir=layout.models_dir, lora_dir=layout.lora_dir)
    client = ComfyUIClient(worker.comfyui_url, models_dir=worker.models_dir, lora_dir=worker.lora_dir)
    print(json.dumps({"command": comfyui_command(layout), "client": type(client).__name__}))
""")

WEB_ROUTES = {"/flux-dev", "/flux", "/flux-lora", "/flux-instantid", "/wan2", "/workflow",
              "/loras", "/models", "/health"}


def _assert_web_app(result: dict) -> None:
    assert WEB_ROUTES <= set(result["routes"])
    assert (result["denied"], result["models"], result["health"]) == (401, 200, 200)
    assert result["analytics"] is True  # POSTHOG_API_KEY set: the PostHog client was made
    assert result["torch_importable"] is False  # the web app never needs the GPU stack


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 300)
def test_cpu_image_serves_the_web_tier(tmp_path: Path) -> None:
    python, installed, source = _image_env(tmp_path, pins.CPU_IMAGE_PACKAGES)
    assert "modal" not in installed  # Modal brings its own client into the container
    for spec in pins.HUB_PACKAGES:
        name, version = spec.split("==")
        assert installed.get(name.lower().replace("_", "-")) == version, spec
    _assert_web_app(_run_in_image(python, source, BUILD_WEB_APP, tmp_path))


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 300)
def test_gpu_image_runs_the_worker_and_the_web_app(tmp_path: Path) -> None:
    python, installed, source = _image_env(tmp_path, pins.IMAGE_PACKAGES)
    assert "modal" not in installed
    for spec in (*pins.COMFYUI_PACKAGES, *pins.CUSTOM_NODE_PACKAGES, *pins.HUB_PACKAGES):
        name, version = spec.split("==")
        assert installed.get(name.lower().replace("_", "-")) == version, spec
    worker = _run_in_image(python, source, BUILD_GPU_WORKER, tmp_path)
    assert worker["command"][1] == str(tmp_path / "deploy" / "ComfyUI" / "main.py")
    assert worker["client"] == "ComfyUIClient"
    _assert_web_app(_run_in_image(python, source, BUILD_WEB_APP, tmp_path))
