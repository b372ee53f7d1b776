"""`ryla success-rate` and `ryla bench`: many requests to one route, measured."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ui.cli.options import (UsageError, backend_client, build_request, field_values, parse_set,
                            reference_value)
from ui.cli.output import emit_json, timestamped
from ui.client import BackendError, BackendUnreachable, GenerationResult, RylaClient, extension_for
from ui.prompts import SEED_PROMPTS, PromptFileError, load_prompt_file
from workflows.registry import ROUTE_OF_COMMAND, ROUTES

# Every generation route but /workflow, whose graph comes from the user.
BENCH_ENDPOINTS = tuple(route.command for route in ROUTES.values() if not route.user_graph)


def endpoint_values(args: argparse.Namespace) -> dict[str, Any]:
    values = field_values(args, ("width", "height", "steps", "seed", "lora_id", "method"))
    if args.reference_image is not None:
        values["reference_image"] = reference_value(args.reference_image)
    values.update(parse_set(args.set_fields))
    return values


def endpoint_requests(endpoint: str, prompts: Sequence[str], values: dict[str, Any]) -> list[BaseModel]:
    model = ROUTE_OF_COMMAND[endpoint].request_model
    return [build_request(model, {**values, "prompt": prompt}) for prompt in prompts]


@dataclass
class Attempt:
    index: int
    prompt: str
    seconds: float
    result: GenerationResult | None = None
    error: BackendError | None = None
    file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"index": self.index, "prompt": self.prompt, "success": self.error is None,
                               "seconds": round(self.seconds, 3)}
        if self.result is not None:
            row.update(seed=self.result.seed, request_id=self.result.request_id,
                       file=str(self.file) if self.file else None)
        if self.error is not None:
            row["error"] = self.error.to_dict()
        return row


def _attempt(client: RylaClient, index: int, request: BaseModel) -> Attempt:
    started = time.perf_counter()
    try:
        result = client.generate(request)
    except BackendUnreachable:
        raise  # nothing can succeed: stop the run and report it as a backend error
    except BackendError as exc:
        return Attempt(index, getattr(request, "prompt", ""), time.perf_counter() - started, error=exc)
    return Attempt(index, getattr(request, "prompt", ""), time.perf_counter() - started, result=result)


def _save_attempt(attempt: Attempt, directory: Path, stem: str) -> None:
    if attempt.result is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}{extension_for(attempt.result.content_type)}"
    path.write_bytes(attempt.result.images[0])
    attempt.file = path


def prompts_from(path: Path | None, default: Sequence[str]) -> list[str]:
    if path is None:
        return list(default)
    try:
        return load_prompt_file(path)
    except PromptFileError as exc:
        raise UsageError(f"--prompts: {exc}") from None


def cmd_success_rate(args: argparse.Namespace) -> int:
    prompts = prompts_from(args.prompts, SEED_PROMPTS)
    requests_ = endpoint_requests(args.endpoint, prompts, endpoint_values(args))
    out_dir = args.output or timestamped("success-rate")
    attempts: list[Attempt] = []
    with backend_client(args) as client:
        for index, request in enumerate(requests_, 1):
            attempt = _attempt(client, index, request)
            _save_attempt(attempt, out_dir, f"{args.endpoint}-{index:02d}")
            attempts.append(attempt)
            if not args.json:
                label = f"[{index}/{len(requests_)}] {attempt.prompt}"
                if attempt.error is None:
                    print(f"{label}\n  ok    {attempt.seconds:.2f} s  -> {attempt.file}")
                else:
                    print(f"{label}\n  FAIL  {attempt.seconds:.2f} s  {attempt.error}")
    succeeded = [a for a in attempts if a.error is None]
    rate = 100.0 * len(succeeded) / len(attempts)
    mean = statistics.fmean(a.seconds for a in succeeded) if succeeded else None
    if args.json:
        emit_json({"endpoint": args.endpoint, "route": ROUTE_OF_COMMAND[args.endpoint].path,
                    "output_dir": str(out_dir), "total": len(attempts), "succeeded": len(succeeded),
                    "success_rate": round(rate, 2),
                    "mean_seconds": round(mean, 3) if mean is not None else None,
                    "requests": [a.to_dict() for a in attempts]})
    else:
        print(f"\nsuccess rate: {len(succeeded)}/{len(attempts)} ({rate:.1f} %)")
        if mean is not None:
            print(f"mean time of successful requests: {mean:.2f} s")
        print(f"images: {out_dir}")
    return 0 if len(succeeded) == len(attempts) else 1


def latency_stats(seconds: Sequence[float]) -> dict[str, float | None]:
    """mean, median, min, max and p95 (nearest rank) of request latencies, in seconds."""
    if not seconds:
        return {"mean": None, "median": None, "min": None, "max": None, "p95": None}
    ordered = sorted(seconds)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {"mean": round(statistics.fmean(ordered), 4), "median": round(statistics.median(ordered), 4),
            "min": round(ordered[0], 4), "max": round(ordered[-1], 4), "p95": round(ordered[rank - 1], 4)}


def _run_mode(client: RylaClient, requests_: Sequence[BaseModel], concurrency: int,
              save_dir: Path | None, stem: str) -> dict[str, Any]:
    started = time.perf_counter()
    if concurrency == 1:
        attempts = [_attempt(client, index, request) for index, request in enumerate(requests_, 1)]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            attempts = list(pool.map(lambda pair: _attempt(client, *pair), enumerate(requests_, 1)))
    wall = time.perf_counter() - started
    if save_dir is not None:
        for attempt in attempts:
            _save_attempt(attempt, save_dir, f"{stem}-{attempt.index:02d}")
    ok = [a for a in attempts if a.error is None]
    return {"concurrency": concurrency, "total": len(attempts), "succeeded": len(ok),
            "success_rate": round(100.0 * len(ok) / len(attempts), 2),
            "wall_seconds": round(wall, 4), **latency_stats([a.seconds for a in ok]),
            "errors": [a.error.to_dict() for a in attempts if a.error is not None]}


def cmd_bench(args: argparse.Namespace) -> int:
    endpoints = args.endpoint or ["flux"]
    prompts = [args.prompt] if args.prompt else list(SEED_PROMPTS)
    chosen = [prompts[i % len(prompts)] for i in range(args.requests)]
    values = endpoint_values(args)
    plans = {endpoint: endpoint_requests(endpoint, chosen, values) for endpoint in endpoints}
    results: list[dict[str, Any]] = []
    with backend_client(args) as client:
        for endpoint, requests_ in plans.items():
            save = args.output
            row: dict[str, Any] = {"endpoint": endpoint, "requests": args.requests,
                                   "sequential": _run_mode(client, requests_, 1, save, f"{endpoint}-seq")}
            if args.concurrency > 1:
                row["concurrent"] = _run_mode(client, requests_, args.concurrency, save, f"{endpoint}-conc")
                seq, conc = row["sequential"]["wall_seconds"], row["concurrent"]["wall_seconds"]
                row["speedup"] = round(seq / conc, 3) if conc > 0 else None
            results.append(row)
            if not args.json:
                _print_bench(row)
    all_ok = all(row[mode]["succeeded"] == row[mode]["total"]
                 for row in results for mode in ("sequential", "concurrent") if mode in row)
    if args.json:
        emit_json({"results": results, "all_succeeded": all_ok})
    return 0 if all_ok else 1


def _print_bench(row: dict[str, Any]) -> None:
    print(f"{row['endpoint']}: {row['requests']} requests")
    for mode in ("sequential", "concurrent"):
        if mode not in row:
            continue
        m = row[mode]
        label = mode if mode == "sequential" else f"concurrent x{m['concurrency']}"
        stats = "  ".join(f"{key} {m[key]:.2f}s" for key in ("mean", "median", "min", "max", "p95")
                          if m[key] is not None)
        print(f"  {label:<16} {m['succeeded']}/{m['total']} ok ({m['success_rate']:.0f} %)  "
              f"wall {m['wall_seconds']:.2f}s  {stats}")
        for error in m["errors"]:
            print(f"    error: {error['code']}: {error['message']}")
    if "speedup" in row and row["speedup"] is not None:
        print(f"  concurrent wall time is {row['speedup']:.2f}x faster than sequential"
              if row["speedup"] >= 1 else
              f"  concurrent wall time is {1 / row['speedup']:.2f}x slower than sequential")
