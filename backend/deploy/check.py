"""The first-deploy check: what one GPU container finds, printed as a list of facts, each
with whether it is what the deployment needs (`modal run backend/modal_app.py::check`).

The parts that need no GPU are plain functions of a ComfyUI URL and the directories, so
they run offline against the ComfyUI test double; the torch facts come from the caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.warmup import WARM_UP_REQUESTS, pipeline_readiness, warm_up

# The node packs the pipelines need (the image checks them out into custom_nodes/)
NODE_PACKS = ("ComfyUI_InstantID", "ComfyUI_PuLID_Flux_ll")
# torch's CUDA major -> the oldest NVIDIA driver that runs it (NVIDIA's release notes)
MIN_DRIVER = {12: 525, 13: 580}


@dataclass(frozen=True)
class Fact:
    name: str
    value: str
    ok: bool = True
    advice: str = ""  # what to do when not ok


@dataclass
class CheckReport:
    facts: list[Fact] = field(default_factory=list)

    def add(self, name: str, value: object, ok: bool = True, advice: str = "") -> None:
        self.facts.append(Fact(name, str(value), ok, "" if ok else advice))

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.facts)

    def text(self) -> str:
        lines = [f"{'ok  ' if f.ok else 'FAIL'} {f.name}: {f.value}" + (f"\n       -> {f.advice}" if f.advice else "")
                 for f in self.facts]
        return "\n".join([*lines, "all checks passed" if self.ok else "some checks FAILED (see -> above)"])

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "facts": [f.__dict__ for f in self.facts]}


def driver_version(run: Callable[..., Any] = subprocess.run) -> str | None:
    """The NVIDIA driver's version from nvidia-smi, None without one."""
    try:
        out = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                  capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


# Run in a child process, so that this container keeps no CUDA context of its own.
_TORCH_PROBE = """
import json
probe = {}
try:
    import torch
    probe.update(version=torch.__version__, cuda=torch.version.cuda, works=False)
    if torch.cuda.is_available():
        probe["device"] = torch.cuda.get_device_name(0)
        probe["works"] = float((torch.ones(2, device="cuda") * 2).sum().item()) == 4.0
    else:
        probe["error"] = "torch.cuda.is_available() is False"
except Exception as exc:
    probe["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(probe))
"""


def torch_probe(python: str = sys.executable) -> dict[str, Any]:
    """torch's version, its CUDA build, and whether a CUDA kernel runs, from a child process."""
    out = subprocess.run([python, "-c", _TORCH_PROBE], capture_output=True, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": f"the probe exited {out.returncode}: {out.stderr[-500:]}"}


def torch_facts(report: CheckReport, probe: Mapping[str, Any], driver: str | None) -> None:
    """torch's and CUDA's versions, the driver's, and whether a CUDA kernel runs."""
    if "version" not in probe:
        report.add("torch", probe.get("error", "not importable"), ok=False,
                   advice="the GPU image's package lists lack torch, or it cannot load")
        return
    cuda = probe.get("cuda")
    report.add("torch", f"{probe['version']} (CUDA {cuda})")
    floor = MIN_DRIVER.get(int(str(cuda).split(".")[0])) if cuda else None
    major = int(driver.split(".")[0]) if driver else 0
    report.add("NVIDIA driver", f"{driver or 'none found'} (torch's CUDA {cuda} needs {floor or '?'} or newer)",
               ok=bool(driver) and (floor is None or major >= floor),
               advice="the driver is older than torch's CUDA build needs: pin a torch build for an "
                      "older CUDA (docs/deploy.md, 'Which torch build')")
    report.add("CUDA works", probe.get("device") or probe.get("error", "no"), ok=bool(probe.get("works")),
               advice="no GPU in this container, or the driver cannot run torch's CUDA build")


def container_identity() -> str:
    """This container's task and kernel boot: a process restored from a memory snapshot
    finds other values than the one that took the snapshot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{os.environ.get('MODAL_TASK_ID', '')}/{boot}"


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def comfyui_facts(report: CheckReport, comfyui_url: str) -> None:
    """ComfyUI's version and the node packs it loaded."""
    stats = _get_json(f"{comfyui_url}/system_stats")
    report.add("ComfyUI", stats.get("system", {}).get("comfyui_version", "unknown"))
    modules = {str(info.get("python_module", "")) for info in _get_json(f"{comfyui_url}/object_info").values()}
    loaded = sorted({m.split(".")[1] for m in modules if m.startswith("custom_nodes.") and "." in m})
    missing = [pack for pack in NODE_PACKS if pack not in loaded]
    report.add("node packs", ", ".join(loaded) or "none", ok=not missing,
               advice=f"{', '.join(missing)} did not load: read ComfyUI's start-up log in the "
                      "container's logs (an import error of the pack or of its requirements)")


def files_facts(report: CheckReport, models_dir: Path, lora_dir: Path) -> list[str]:
    """Which pipelines have all their files, and the LoRA count; the ready pipelines."""
    readiness = pipeline_readiness(models_dir)
    ready = [p for p, ok in readiness.items() if ok]
    missing = [p for p, ok in readiness.items() if not ok]
    report.add("pipelines ready", ", ".join(ready) or "none", ok=bool(ready),
               advice="no pipeline has all its files: run `modal run backend/modal_app.py::download_models`")
    if missing:
        report.add("pipelines missing files", ", ".join(missing) + " (GET /models lists the files)")
    report.add("LoRAs", len(list(Path(lora_dir).glob("*.safetensors"))))
    return ready


def generation_fact(report: CheckReport, comfyui_url: str, models_dir: Path, lora_dir: Path,
                    ready: list[str], timeout_s: float = 600.0) -> None:
    """One small real generation (a ready warm-up's one-step prompt) and its time."""
    from backend.comfyui_client import ComfyUIClient
    from backend.errors import ApiError

    name = next((n for n, (pipeline, _) in WARM_UP_REQUESTS.items() if pipeline in ready), None)
    if name is None:
        report.add("generation", "skipped: no warm-up's pipeline has all its files", ok=False,
                   advice="download flux-schnell or flux-dev's files")
        return

    async def run() -> float:
        comfy = ComfyUIClient(comfyui_url, models_dir=models_dir, lora_dir=lora_dir)
        try:
            return await warm_up(comfy, name, timeout_s)
        finally:
            await comfy.aclose()

    started = time.monotonic()
    try:
        seconds = asyncio.run(run())
        report.add("generation", f"{name}, one step at its warm-up size: {seconds:.1f} s")
    except ApiError as exc:
        report.add("generation", f"{name} failed after {time.monotonic() - started:.1f} s: {exc.message}",
                   ok=False, advice="the message says which node failed; ComfyUI's log has the traceback")


def run_check(comfyui_url: str, models_dir: Path, lora_dir: Path, *, torch: Mapping[str, Any],
              driver: str | None, restored_from_snapshot: bool | None,
              startup: Mapping[str, float] | None = None) -> CheckReport:
    """Every fact of the first-deploy check (`torch`: torch_probe's answer)."""
    report = CheckReport()
    torch_facts(report, torch, driver)
    comfyui_facts(report, comfyui_url)
    ready = files_facts(report, models_dir, lora_dir)
    generation_fact(report, comfyui_url, models_dir, lora_dir, ready)
    report.add("restored from a snapshot", {None: "snapshots off", True: "yes", False: "no (a cold start)"}
               [restored_from_snapshot])
    for name, seconds in (startup or {}).items():
        report.add(name, f"{seconds:.1f} s")
    return report
