"""The generation loop the Flux and LoRA tabs share: a batch of images one after another,
each written to the local history before it is shown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from pydantic import BaseModel

from ui.client import GenerationResult, RylaClient, extension_for
from ui.studio.feedback import GalleryItem, format_timings
from ui.studio.history import History, HistoryItem
from ui.studio.seeds import seed_text

# Generation can take minutes on a cold GPU; more than a few at once only queue on it.
GENERATION_CONCURRENCY = 2
GENERATION_EVENT: dict[str, Any] = {"concurrency_limit": GENERATION_CONCURRENCY,
                                    "concurrency_id": "generation"}
PRIVATE: dict[str, Any] = {"api_visibility": "private"}

Batch = Iterator[tuple[list[GalleryItem], list[list[Any]], int | None]]


def generate_batch(client: RylaClient, history: History, kind: str,
                   make_request: Callable[[int | None], BaseModel], seed: int | None,
                   batch: int, params: dict[str, Any], progress: gr.Progress) -> Batch:
    """Generate `batch` images one after another (one GPU: no gain in parallel),
    yielding the gallery after each so that results appear as they arrive.
    A fixed seed gives image i the seed `seed + i`, so a batch is reproducible."""
    batch = max(1, int(batch or 1))
    # pydantic's ValidationError and the backend's errors go to the caller, which shows
    # them by their field or in the tab's notice (ui/studio/problems.py).
    requests_ = [make_request(None if seed is None else seed + i) for i in range(batch)]
    results: list[tuple[GenerationResult, float]] = []
    item: HistoryItem | None = None
    for i, request in enumerate(requests_):
        progress((i, batch), desc=f"Generating image {i + 1} of {batch}")
        started = time.perf_counter()
        result = client.generate(request)
        results.append((result, time.perf_counter() - started))
        item = _save_batch(history, kind, params, results, item)
        gallery = [(str(path), out["caption"]) for path, out in zip(item.paths(), item.outputs)]
        # Seeds as text: a browser rounds numbers above 2**53 (ui/studio/seeds.py).
        rows = [[n + 1, seed_text(out["seed"]), out["timings_text"]]
                for n, out in enumerate(item.outputs)]
        yield gallery, rows, result.seed
    progress((batch, batch), desc="Done")


def _save_batch(history: History, kind: str, params: dict[str, Any],
                results: list[tuple[GenerationResult, float]],
                item: HistoryItem | None) -> HistoryItem:
    """One history item per batch, rewritten as each image lands, so that a batch
    cut short still keeps what it made."""
    if item is None:
        item = history.create(kind, params)
    assert item.folder is not None
    for result, round_trip in results[len(item.outputs):]:
        name = f"{len(item.files):03d}{extension_for(result.content_type)}"
        (item.folder / name).write_bytes(result.images[0])
        item.files.append(name)
        timings_text = format_timings(result.timings, round_trip)
        item.outputs.append({
            "seed": result.seed, "request_id": result.request_id,
            "timings": result.timings, "round_trip_s": round(round_trip, 3),
            "timings_text": timings_text,
            "caption": f"seed {result.seed} · {timings_text}",
        })
    item.summary = {"images": len(item.files), "seeds": [o["seed"] for o in item.outputs]}
    history.update(item)
    return item
