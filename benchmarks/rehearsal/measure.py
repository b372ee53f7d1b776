"""Drive every route of a running backend through `ryla`'s own client (ui.client.RylaClient)
and record one row per request, for the GPU rehearsal.

    python -m benchmarks.rehearsal.measure --backend-url URL --out results.json \
        --gpu "NVIDIA H100 80GB HBM3" --comfyui-ready-s 27.1 --lora a.safetensors \
        --reference face.jpg [--phase all|mixed] [--mode default]

Each row: route, method (for /flux-instantid), status, wall_s, gpu, label, switch (the
model family this request switched to, or null), mode (the run's settings), request_mode
(`/flux-dev`'s standard or fast), the server's timings, output bytes,
and the run's cold-start figures comfyui_ready_s and first_image_s (the first request's
wall time, weights read from disk with the page cache dropped). The felt-* phases add
prewarm (whether the studio's POST /warm came first), typing_s and felt_s. The jobs phase
(issue 22) adds path (sync or async), part, pair, seed, previews_enabled, comfyui_exec_s
and, on the async path, progress_events, previews, first_progress_s, first_preview_s,
submit_s and done_s (docs/performance.md says what each means). A table is printed at the
end. Failures are rows too (status and the backend's message), never a crash.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel

from benchmarks.rehearsal.summarize import jobs_summary
from ui.client import BackendError, RylaClient, image_data_url, route_for
from ui.prompts import SHEET_VARIATIONS
from ui.sheet import plan_sheet
from workflows.render import apply_fast_mode, render_workflow
from workflows.registry import ROUTES
from workflows.request_models import (CharacterRequest, FluxDevRequest, FluxLoraRequest,
                                      FluxSchnellRequest, Wan2Request, WorkflowRequest, ZImageRequest)

PROMPT = "a portrait photo of a woman with red hair, {}, soft light"


@dataclass
class JobWatch:
    """What a client following a job's events (GET /jobs/{id}/events) saw, in seconds
    from its submit. Previews come only from ComfyUI, so each one heard counts; progress
    counts only while the job is running (ComfyUI's progress, then the closing 100 %), not
    the job's opening state nor the end state that a subscriber arriving late is handed."""
    submitted: float  # time.perf_counter() at the submit
    running: bool = False
    progress_events: int = 0
    previews: int = 0
    first_progress_s: float | None = None
    first_preview_s: float | None = None

    def on_event(self, event: str, data: Any) -> None:
        now = round(time.perf_counter() - self.submitted, 3)
        if event == "status":
            self.running = data.get("status") == "running"
        elif event == "progress" and self.running:
            self.progress_events += 1
            self.first_progress_s = self.first_progress_s if self.first_progress_s is not None else now
        elif event == "preview":
            self.previews += 1
            self.first_preview_s = self.first_preview_s if self.first_preview_s is not None else now

    def figures(self) -> dict:
        return {"progress_events": self.progress_events, "previews": self.previews,
                "first_progress_s": self.first_progress_s, "first_preview_s": self.first_preview_s}


@dataclass
class PendingJob:
    row: dict
    watch: JobWatch


class Rehearsal:
    def __init__(self, client: RylaClient, gpu: str, mode: str, log: Path | None = None) -> None:
        self.client, self.gpu, self.mode, self.log = client, gpu, mode, log
        self.rows: list[dict] = []
        self.last_family: str | None = None

    def _row(self, label: str, request: BaseModel, family: str, **extra: object) -> dict:
        switch = family if family != self.last_family and self.last_family is not None else None
        self.last_family = family
        route = route_for(request)
        return {"label": label, "route": route, "method": getattr(request, "method", None)
                if route == "/flux-instantid" else None, "gpu": self.gpu, "mode": self.mode,
                "request_mode": getattr(request, "mode", None), "switch": switch, **extra}

    def _record(self, row: dict) -> dict:
        row["ended_epoch"] = round(time.time(), 3)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        if self.log is not None:  # one line a request, so a run cut short keeps what it measured
            with self.log.open("a") as f:
                f.write(json.dumps(row) + "\n")
        return row

    def run(self, label: str, request: BaseModel, family: str, **extra: object) -> dict:
        """One request through its synchronous route."""
        row = self._row(label, request, family, **extra)
        t0 = time.perf_counter()
        try:
            result = self.client.generate(request)
            row.update(status=200, content_type=result.content_type,
                       output_bytes=[len(i) for i in result.images], timings=result.timings,
                       request_id=result.request_id, seed=result.seed)
        except BackendError as exc:
            row.update(status=exc.status, error=f"{exc.code}: {exc.message}"[:500])
        row["wall_s"] = round(time.perf_counter() - t0, 3)
        return self._record(row)

    def submit(self, label: str, request: BaseModel, family: str, **extra: object) -> PendingJob:
        """Start one request as a job (`Prefer: respond-async`); `finish` follows it."""
        row = self._row(label, request, family, **{"path": "async", **extra})
        pending = PendingJob(row, JobWatch(time.perf_counter()))
        try:
            job = self.client.submit(request)
            row.update(request_id=job["id"], seed=job.get("seed"))
        except BackendError as exc:
            row.update(status=exc.status, error=f"{exc.code}: {exc.message}"[:500])
        row["submit_s"] = round(time.perf_counter() - pending.watch.submitted, 3)
        return pending

    def finish(self, pending: PendingJob) -> dict:
        """Follow a submitted job's events to its end and fetch its outputs, as the studio
        and `ryla` do; `wall_s` is submit to the last output's bytes received."""
        row, watch = pending.row, pending.watch
        if "error" not in row:
            try:
                job = self.client.wait(row["request_id"], on_event=watch.on_event)
                row["done_s"] = round(time.perf_counter() - watch.submitted, 3)
                if job.get("status") == "succeeded":
                    outputs = [self.client.output(row["request_id"], n) for n in range(len(job["outputs"]))]
                    row.update(status=200, output_bytes=[len(o) for o in outputs])
                else:
                    error = job.get("error") or {}
                    row.update(status=job.get("status"),
                               error=f"{error.get('code')}: {error.get('message')}"[:500])
            except BackendError as exc:
                row.update(status=exc.status, error=f"{exc.code}: {exc.message}"[:500])
        row["wall_s"] = round(time.perf_counter() - watch.submitted, 3)
        row.update(watch.figures())
        return self._record(row)

    def run_async(self, label: str, request: BaseModel, family: str, **extra: object) -> dict:
        """One request through the async path: submit, events to the end, outputs."""
        return self.finish(self.submit(label, request, family, **extra))

    def concurrent(self, label: str, requests: list[BaseModel], family: str) -> None:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(requests)) as pool:
            rows = list(pool.map(lambda r: self.run(label, r, family), requests))
        self.rows.append({"label": f"{label}: wall for all", "route": route_for(requests[0]),
                          "gpu": self.gpu, "mode": self.mode, "requests": len(requests),
                          "status": 200 if all(row["status"] == 200 for row in rows) else 0,
                          "wall_s": round(time.perf_counter() - t0, 3)})


def dev(tag: str, seed: int, **kw) -> FluxDevRequest:
    return FluxDevRequest(prompt=PROMPT.format(tag), width=1024, height=1024, steps=28, seed=seed, **kw)


def every_route(r: Rehearsal, reference: str, lora_ids: list[str]) -> None:
    r.run("flux-dev first (cold)", dev("first", 1), "dev")
    for i in range(3):
        r.run("flux-dev warm", dev(f"warm {i}", 10 + i), "dev")
    r.run("flux first", FluxSchnellRequest(prompt=PROMPT.format("schnell"), seed=5), "schnell")
    r.run("flux warm", FluxSchnellRequest(prompt=PROMPT.format("schnell 2"), seed=6), "schnell")
    r.run("flux-dev after schnell", dev("back", 7), "dev")
    for i, lora in enumerate(lora_ids[:1] * 2):
        r.run("flux-lora" + (" first" if i == 0 else " warm"),
              FluxLoraRequest(prompt=PROMPT.format("lora"), lora_id=lora, lora_strength=0.8,
                              width=1024, height=1024, steps=28, seed=20 + i), f"lora:{lora}")
    for method in ("pulid", "instantid"):
        for i in range(2):
            r.run(f"flux-instantid {method}" + (" first" if i == 0 else " warm"),
                  CharacterRequest(prompt="smiling, side profile", reference_image=reference,
                                   method=method, width=1024, height=1024, seed=30 + i,
                                   steps=28 if method == "pulid" else 30,
                                   guidance=3.5 if method == "pulid" else 4.0), method)
    graph = render_workflow("flux-schnell", FluxSchnellRequest(prompt="a lighthouse at dusk"), seed=40)
    r.run("workflow (schnell graph)", WorkflowRequest(workflow=graph), "schnell")
    for i in range(2):
        z = ZImageRequest(prompt=PROMPT.format("draft"), width=1024, height=1024, seed=60 + i)
        # through its own route once the API has it, else its graph through /workflow
        request = z if "/z-image" in ROUTES else WorkflowRequest(workflow=render_workflow("z-image", z, seed=60 + i))
        r.run("z-image" + (" first" if i == 0 else " warm"), request, "z-image")
    for i in range(2):
        r.run("wan2" + (" first" if i == 0 else " warm"),
              Wan2Request(prompt="waves at dusk", width=832, height=480, frames=33, steps=20, seed=50 + i), "wan")
    r.concurrent("flux-dev 5 concurrent", [dev(f"concurrent {i}", 100 + i) for i in range(5)], "dev")


def mixed_sequence(r: Rehearsal, reference: str, lora_ids: list[str], rounds: int = 2,
                   with_fast: bool = False) -> None:
    """Issue 12's residency check: Dev, Schnell, Dev + LoRA a, Dev + LoRA b, PuLID, Dev
    (`with_fast`: then Dev in fast mode, whose fp8 copy stays resident beside the rest)."""
    for n in range(rounds):
        tag = "first" if n == 0 else "again"
        r.run(f"mixed {tag}: dev", dev(f"mixed {n}", 200 + n), "dev")
        r.run(f"mixed {tag}: schnell", FluxSchnellRequest(prompt=PROMPT.format("m"), seed=210 + n), "schnell")
        for lora in lora_ids[:2]:
            r.run(f"mixed {tag}: dev + lora {lora}",
                  FluxLoraRequest(prompt=PROMPT.format("m"), lora_id=lora, width=1024, height=1024,
                                  steps=28, seed=220 + n), f"lora:{lora}")
        r.run(f"mixed {tag}: pulid", CharacterRequest(prompt="smiling", reference_image=reference,
                                                      method="pulid", width=1024, height=1024, steps=28,
                                                      guidance=3.5, seed=230 + n), "pulid")
        r.run(f"mixed {tag}: dev", dev(f"mixed end {n}", 240 + n), "dev")
        if with_fast:
            r.run(f"mixed {tag}: dev fast", dev(f"mixed fast {n}", 250 + n, mode="fast"), "dev-fast")


def _dev_graph(seed: int, loader: dict, text_encoder: dict | None = None) -> dict:
    """The Flux Dev graph with its UNETLoader (and DualCLIPLoader) inputs overridden."""
    graph = render_workflow("flux-dev", dev(f"graph {seed}", seed), seed=seed)
    for node in graph.values():
        if node["class_type"] == "UNETLoader":
            node["inputs"].update(loader)
        if node["class_type"] == "DualCLIPLoader" and text_encoder:
            node["inputs"].update(text_encoder)
    return graph


def _graph_runs(r: Rehearsal, label: str, first: str, graph: dict, seed: int, runs: int) -> None:
    for i in range(runs):
        for node in graph.values():
            if node["class_type"] == "KSampler":
                node["inputs"]["seed"] = seed + i
        r.run(label + (f" {first}" if i == 0 else ""), WorkflowRequest(workflow=graph), "dev-fp8")


def fast_mode(r: Rehearsal, runs: int = 4) -> None:
    """Flux Dev 1024x1024/28 with fp8 weights and fp8 matrix multiplication (ComfyUI's
    `fp8_e4m3fn_fast` weight dtype) against the bf16 default, on the same server."""
    for i in range(2):
        r.run("bf16 dev 1024/28", dev(f"bf16 {i}", 300 + i), "dev")
    graph = _dev_graph(310, {"weight_dtype": "fp8_e4m3fn_fast"})
    _graph_runs(r, "fp8_e4m3fn_fast dev 1024/28", "first", graph, 320, runs)


def compile_mode(r: Rehearsal, cached: bool, runs: int = 4) -> None:
    """Fast mode with torch.compile (workflows.render.apply_fast_mode): the first compiled
    request pays the compile (or, `cached`, reads inductor's cache that an earlier run left),
    after an uncompiled fp8 request has loaded the weights; bf16 and uncompiled fp8 beside it."""
    tag = "cached compile" if cached else "compile"
    _graph_runs(r, "fp8 dev 1024/28", "first (loads)", _dev_graph(500, {"weight_dtype": "fp8_e4m3fn_fast"}), 500, 2)
    compiled = apply_fast_mode(_dev_graph(510, {}), compile_model=True)
    _graph_runs(r, "fp8 + torch.compile dev 1024/28", f"first ({tag})", compiled, 510, runs)
    if not cached:
        for i in range(2):
            r.run("bf16 dev 1024/28", dev(f"bf16 {i}", 520 + i), "dev")
        _graph_runs(r, "fp8 + torch.compile dev 1024/28", "again after bf16", compiled, 530, 2)


def fast_mode_routes(r: Rehearsal, cached: bool, runs: int = 4) -> None:
    """Fast mode as users ask for it (`mode: fast` on /flux-dev), beside the standard mode
    on the same server, then Schnell. The first fast request loads Dev's fp8 copy and
    compiles (or, `cached`, reads the inductor cache an earlier server left)."""
    tag = "cached compile" if cached else "compile"
    r.run("flux-dev standard first (cold)", dev("standard first", 600), "dev")
    for i in range(2):
        r.run("flux-dev standard", dev(f"standard {i}", 601 + i), "dev")
    for i in range(runs):
        r.run("flux-dev fast" + (f" first (loads fp8, {tag})" if i == 0 else ""),
              dev(f"fast {i}", 610 + i, mode="fast"), "dev-fast")
    r.run("flux-dev standard after fast", dev("standard back", 620), "dev")
    r.run("flux-dev fast after standard", dev("fast back", 621, mode="fast"), "dev-fast")
    for i in range(2):
        r.run("flux" + (" first" if i == 0 else ""),
              FluxSchnellRequest(prompt=PROMPT.format(f"schnell {i}"), seed=630 + i), "schnell")
    r.run("flux-dev fast after schnell", dev("fast after schnell", 640, mode="fast"), "dev-fast")


def cold_start(r: Rehearsal) -> None:
    """The first Flux Dev images of a fresh server (what a cold container's user waits for)."""
    r.run("flux-dev first (cold)", dev("cold", 700), "dev")
    r.run("flux-dev", dev("warm", 701), "dev")


def cold_fp8(r: Rehearsal, runs: int = 3) -> None:
    """The first request after a cold start when Flux Dev and T5 are read from their fp8
    copies (half the bytes), sampled with fp8 matrix multiplication."""
    graph = _dev_graph(400, {"unet_name": "flux1-dev-fp8-e4m3fn.safetensors", "weight_dtype": "fp8_e4m3fn_fast"},
                       {"clip_name2": "t5xxl_fp8_e4m3fn.safetensors"})
    _graph_runs(r, "fp8 files dev 1024/28", "first (cold)", graph, 400, runs)


TYPING_S = 20.0  # a creator's first seconds in the studio: a prompt typed, a reference picked


def felt_latency(r: Rehearsal, prewarm: bool, typing_s: float = TYPING_S) -> None:
    """What a creator feels after a cold start (issue 25): the studio opens and, with
    `prewarm`, calls POST /warm as the studio does; the creator types for `typing_s`, then
    clicks Generate (Flux Dev 1024/28). `felt_s` is the click to the image received.

    Run each on a fresh stack, page cache dropped (`rehearse.sh felt`). There ComfyUI is
    already up when the API answers, so /warm loads the models (benchmarks/rehearsal/
    warm_start.py) and `felt_s` leaves out ComfyUI's own start (`comfyui_ready_s`, in
    every row), which on Modal comes before the load without a warm-up and overlaps the
    typing with one."""
    warm = r.client.warm() if prewarm else None
    time.sleep(typing_s)  # the creator typing; no request goes out meanwhile
    row = r.run("flux-dev click after typing" + (" (prewarmed)" if prewarm else " (no warm-up)"),
                dev("felt", 800), "dev", prewarm=prewarm, typing_s=typing_s, warm_answer=warm)
    row["felt_s"] = row["wall_s"]


JOBS_SEED = 9000  # above every other phase's seeds: a row finds its prompt in ComfyUI's history by seed
SHEET_OPTIONS = {"pulid": {"width": 1024, "height": 1024, "steps": 28, "guidance": 3.5},
                 "instantid": {"width": 1024, "height": 1024, "steps": 30, "guidance": 4.0}}


def jobs_phase(r: Rehearsal, reference: Path, repeat: int = 3, settle_s: float = 0.5,
               sheet_images: int = 7, sheet_method: str = "pulid") -> None:
    """Issue 22: warm Flux Dev 1024/28 through the synchronous route and through the async
    path (submit, events, outputs), `repeat` pairs in ABBA order, then a character sheet of
    `sheet_images` submitted at once as the studio and `ryla sheet` do (none with 0).

    One prompt for every Flux Dev request (its encoding is cached alike for both paths), a
    new seed for each (so ComfyUI's cache never answers for the sampler). Each request
    waits `settle_s` first: after a prompt ComfyUI collects garbage at most every 10 s, and
    a request sent right then would wait for it, on whichever path came next."""
    r.run("jobs: flux-dev warm-up (not compared)", dev("jobs", JOBS_SEED), "dev", path="sync", part="warm-up")
    seed = JOBS_SEED + 1
    for pair in range(repeat):
        for path in (("sync", "async") if pair % 2 == 0 else ("async", "sync")):
            time.sleep(settle_s)
            run = r.run if path == "sync" else r.run_async
            run(f"jobs: flux-dev {path}", dev("jobs", seed), "dev", path=path, part="flux-dev", pair=pair)
            seed += 1
    if sheet_images < 1:
        return
    time.sleep(settle_s)
    planned = plan_sheet(reference, SHEET_VARIATIONS[:sheet_images], sheet_method, SHEET_OPTIONS[sheet_method])
    t0 = time.perf_counter()
    pending = [r.submit(f"jobs: sheet {sheet_method} {item.name}", request, sheet_method, part="sheet",
                        image=item.index) for item, request in planned]
    with ThreadPoolExecutor(len(pending)) as pool:
        rows = list(pool.map(r.finish, pending))
    r.rows.append({"label": f"jobs: sheet {sheet_method}: wall for all", "route": "/flux-instantid",
                   "method": sheet_method, "gpu": r.gpu, "mode": r.mode, "path": "async",
                   "part": "sheet total", "requests": len(rows),
                   "status": 200 if all(row["status"] == 200 for row in rows) else 0,
                   "wall_s": round(time.perf_counter() - t0, 3)})


def add_comfyui_exec_s(comfyui_url: str, rows: list[dict]) -> None:
    """ComfyUI's own time for each row that names a seed: its prompt's `execution_start`
    to its end, from ComfyUI's /history (timestamps in ms), the prompt found by the seed of
    its sampler. Same for both paths, so `wall_s - comfyui_exec_s` is what the path adds."""
    try:
        response = requests.get(f"{comfyui_url.rstrip('/')}/history", params={"max_items": 1000}, timeout=30)
        response.raise_for_status()
        history = response.json()
    except (requests.RequestException, ValueError) as exc:
        print(f"ComfyUI's history unreadable, no comfyui_exec_s: {exc}", flush=True)
        return
    exec_s: dict[int, float] = {}
    for entry in history.values():
        times = {kind: data.get("timestamp") for kind, data in entry.get("status", {}).get("messages", [])}
        end = next((times[k] for k in ("execution_success", "execution_error", "execution_interrupted")
                    if k in times), None)
        if times.get("execution_start") is None or end is None:
            continue
        for node in entry["prompt"][2].values():
            for key in ("seed", "noise_seed"):
                if isinstance(node.get("inputs", {}).get(key), int):
                    exec_s[node["inputs"][key]] = round((end - times["execution_start"]) / 1000, 3)
    for row in rows:
        if row.get("seed") in exec_s:
            row["comfyui_exec_s"] = exec_s[row["seed"]]


def previews_enabled(command: list[str]) -> bool:
    """Whether ComfyUI sends latent previews: its last --preview-method (argparse keeps the
    last) is not `none`; the default, without one, is none."""
    methods = [value for arg, value in zip(command, command[1:]) if arg == "--preview-method"]
    methods += [arg.split("=", 1)[1] for arg in command if arg.startswith("--preview-method=")]
    return bool(methods) and methods[-1] != "none"


def wait_healthy(client: RylaClient, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            health = client.health()
            if health.get("comfyui", {}).get("reachable", True):
                return health
        except BackendError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def print_table(rows: list[dict]) -> None:
    print(f"\n{'label':44} {'route':16} {'method':9} {'status':6} {'wall_s':>8}  switch")
    for row in rows:
        print(f"{row.get('label', '')[:44]:44} {row.get('route', ''):16} {row.get('method') or '':9} "
              f"{row.get('status', '')!s:6} {row.get('wall_s', 0):8.2f}  {row.get('switch') or ''}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend-url", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--gpu", required=True)
    p.add_argument("--comfyui-ready-s", type=float, default=None)
    p.add_argument("--stack-figures", type=Path, default=None,
                   help="the JSON line stack.py printed (start figures: comfyui_ready_s, warm-up, prefetch)")
    p.add_argument("--lora", type=Path, action="append", default=[], help="LoRA files to upload (ids a, b, ...)")
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--phase", choices=("routes", "mixed", "fast", "cold-fp8", "compile", "compile-cached",
                                        "fast-mode", "fast-mode-cached", "cold", "mixed-fast", "felt-cold",
                                        "felt-prewarm", "jobs", "all"), default="all")
    p.add_argument("--typing-s", type=float, default=TYPING_S,
                   help="felt-* phases: seconds between opening the studio and the click")
    p.add_argument("--repeat", type=int, default=3, help="jobs: Flux Dev requests per path")
    p.add_argument("--settle-s", type=float, default=0.5, help="jobs: pause before each request")
    p.add_argument("--sheet-images", type=int, default=7, help="jobs: the sheet's images (0: no sheet)")
    p.add_argument("--sheet-method", choices=tuple(SHEET_OPTIONS), default="pulid")
    p.add_argument("--comfyui-url", default=None,
                   help="jobs: ComfyUI's own address, read for its execution times (/history)")
    p.add_argument("--previews", choices=("on", "off"), default=None,
                   help="whether ComfyUI sends previews, when no --stack-figures tells it")
    p.add_argument("--mode", default="default", help="a label for this run's ComfyUI settings")
    p.add_argument("--extra", default="{}", help="JSON merged into every row (e.g. start figures)")
    a = p.parse_args(argv)
    client = RylaClient(a.backend_url, timeout=900)
    print("health", json.dumps(wait_healthy(client)), flush=True)
    lora_ids = []
    for i, path in enumerate(a.lora):
        lora_id = f"rehearsal-{'abcdefgh'[i]}"
        client.upload_lora(lora_id, path, trigger_word=f"rhsl{'abcdefgh'[i]}")
        lora_ids.append(lora_id)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    r = Rehearsal(client, a.gpu, a.mode, log=a.out.with_suffix(".jsonl"))
    reference = image_data_url(a.reference)
    if a.phase in ("routes", "all"):
        every_route(r, reference, lora_ids)
    if a.phase in ("mixed", "all"):
        mixed_sequence(r, reference, lora_ids)
    if a.phase == "mixed-fast":
        mixed_sequence(r, reference, lora_ids, with_fast=True)
    if a.phase in ("fast", "all"):
        fast_mode(r)
    if a.phase == "cold-fp8":
        cold_fp8(r)
    if a.phase in ("compile", "compile-cached"):
        compile_mode(r, cached=a.phase == "compile-cached")
    if a.phase in ("fast-mode", "fast-mode-cached"):
        fast_mode_routes(r, cached=a.phase == "fast-mode-cached")
    if a.phase == "cold":
        cold_start(r)
    if a.phase in ("felt-cold", "felt-prewarm"):
        felt_latency(r, prewarm=a.phase == "felt-prewarm", typing_s=a.typing_s)
    if a.phase == "jobs":
        jobs_phase(r, a.reference, a.repeat, a.settle_s, a.sheet_images, a.sheet_method)
        if a.comfyui_url:
            add_comfyui_exec_s(a.comfyui_url, r.rows)
    start = json.loads(a.stack_figures.read_text().splitlines()[0]) if a.stack_figures else {}
    command = start.pop("command", None)
    if a.previews is not None or command is not None:
        start["previews_enabled"] = a.previews == "on" if a.previews is not None else previews_enabled(command)
    start_epoch = start.pop("start_epoch", None)
    # the jobs phase's requests are warm (it may run on a stack an earlier step started):
    # no first image of a cold start to report
    first_row = r.rows[0] if r.rows and a.phase != "jobs" else {}
    run = {"comfyui_ready_s": start.get("comfyui_ready_s", a.comfyui_ready_s),
           "first_image_s": first_row.get("wall_s"), **start, **json.loads(a.extra)}
    if start_epoch is not None and "ended_epoch" in first_row:
        # what a user of a cold container waits: process start to first image received
        run["cold_start_to_first_image_s"] = round(first_row["ended_epoch"] - start_epoch, 2)
    print("run:", json.dumps(run), flush=True)
    for row in r.rows:
        row.update(run)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r.rows, indent=1))
    print_table(r.rows)
    if a.phase == "jobs":
        print("\n" + jobs_summary(r.rows))
    return 0 if all(row.get("status") == 200 for row in r.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
