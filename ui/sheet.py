"""Character sheet: one reference face, several prompts, images generated concurrently,
saved, then scored for face consistency. Used by `ryla sheet` and the studio.

A failed image does not stop the sheet: its error is recorded next to the images that
worked, and those are still scored.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ui.client import BackendError, GenerationResult, RylaClient, extension_for, image_data_url
from ui.prompts import SheetVariation
from workflows.request_models import MAX_IMAGE_PIXELS, CharacterRequest

SheetMethod = Literal["instantid", "pulid", "both"]
SHEET_METHODS: tuple[str, ...] = ("instantid", "pulid", "both")
MANIFEST_NAME = "sheet.json"


@dataclass
class SheetItem:
    index: int
    method: str
    name: str
    prompt: str
    path: Path | None = None
    content_type: str | None = None
    seed: int | None = None
    request_id: str | None = None
    seconds: float | None = None
    error_code: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None


@dataclass
class SheetRun:
    out_dir: Path
    reference: Path
    items: list[SheetItem]
    report: Any = None  # ui.face.consistency.SheetReport when scoring ran
    report_files: list[Path] = field(default_factory=list)
    score_error: str | None = None
    wall_seconds: float = 0.0

    @property
    def succeeded(self) -> list[SheetItem]:
        return [item for item in self.items if item.ok]

    @property
    def failed(self) -> list[SheetItem]:
        return [item for item in self.items if not item.ok]

    def to_dict(self) -> dict[str, Any]:
        items = []
        for item in self.items:
            row = asdict(item)
            row["path"] = str(item.path) if item.path else None
            items.append(row)
        return {"out_dir": str(self.out_dir), "reference": str(self.reference),
                "generated": len(self.succeeded), "failed": len(self.failed),
                "wall_seconds": round(self.wall_seconds, 3), "items": items,
                "report_files": [str(path) for path in self.report_files],
                "score_summary": self.report.summary() if self.report is not None else None,
                "score_error": self.score_error}


def methods_for(method: str) -> list[str]:
    if method not in SHEET_METHODS:
        raise ValueError(f"method must be one of {', '.join(SHEET_METHODS)}, not {method!r}")
    return ["instantid", "pulid"] if method == "both" else [method]


def _slug(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "image"


def plan_sheet(reference: Path, prompts: Sequence[str | SheetVariation], method: SheetMethod = "instantid",
               options: Mapping[str, Any] | None = None) -> list[tuple[SheetItem, CharacterRequest]]:
    """One CharacterRequest per (method, prompt). Raises pydantic's ValidationError when
    `options` (steps, width, instantid_strength, ...) are out of range."""
    reference_url = image_data_url(reference)
    planned: list[tuple[SheetItem, CharacterRequest]] = []
    for current in methods_for(method):
        for prompt in prompts:
            name, text = ((prompt.name, prompt.prompt) if isinstance(prompt, SheetVariation)
                          else (_slug(prompt), prompt))
            request = CharacterRequest(**{**dict(options or {}), "prompt": text,
                                          "reference_image": reference_url, "method": current})
            planned.append((SheetItem(len(planned) + 1, current, name, text), request))
    return planned


class ReferenceRejected(ValueError):
    """The reference cannot make a sheet; the message says why in a creator's words."""


def check_reference(reference: Path) -> None:
    """Refuse, before any GPU time is spent, a reference that is not an image, is over the
    backend's pixel limit, or shows no face (InstantID and PuLID both need one). Without
    the face models here the face is left to the backend to find."""
    from PIL import Image, UnidentifiedImageError

    too_large = f"the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels: use a smaller copy"
    try:
        with Image.open(reference) as img:  # reads the header only: size before pixels
            width, height = img.size
    except Image.DecompressionBombError:
        raise ReferenceRejected(f"the photo is far too large; {too_large}") from None
    except (UnidentifiedImageError, OSError):
        raise ReferenceRejected("this file is not an image: use a PNG, JPEG or WebP photo") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ReferenceRejected(
            f"the photo is {width}×{height} ({width * height / 1e6:.0f} megapixels); {too_large}")
    from ui.face.consistency import FaceModelsMissing, InvalidImage, default_scorer

    try:
        faces = default_scorer().detect(reference).faces
    except FaceModelsMissing:
        return
    except InvalidImage:
        raise ReferenceRejected("this image cannot be read: use a PNG, JPEG or WebP photo") from None
    if faces == 0:
        raise ReferenceRejected("no face found in the reference: use a photo where one face is "
                                "clearly visible, upright and not too small")


def generate_sheet(client: RylaClient, reference: Path, prompts: Sequence[str | SheetVariation],
                   out_dir: Path, *, method: SheetMethod = "instantid", concurrency: int = 4,
                   threshold: float = 0.6, options: Mapping[str, Any] | None = None,
                   score: bool = True,
                   on_item: Callable[[SheetItem], None] | None = None,
                   run_item: Callable[[SheetItem, CharacterRequest], GenerationResult] | None = None,
                   ) -> SheetRun:
    """Generate, save and score a character sheet into `out_dir`.

    Writes the images, `sheet.json` (every item, with the error of those that failed)
    and, when at least one image was made, the face-consistency report files.
    `run_item` makes one image instead of `client.generate` (the studio runs each as a
    job it follows and can stop); a BackendError it raises is recorded on the item.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    reference = Path(reference)
    planned = plan_sheet(reference, prompts, method, options)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(pair: tuple[SheetItem, CharacterRequest]) -> SheetItem:
        item = _generate_item(client, *pair, out_dir, run_item)
        if on_item is not None:
            on_item(item)
        return item

    wall_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(planned)))) as pool:
        items = list(pool.map(one, planned))
    run = SheetRun(out_dir=out_dir, reference=reference, items=items,
                   wall_seconds=time.perf_counter() - wall_start)
    if score and run.succeeded:
        _score(run, threshold)
    elif score:
        run.score_error = "no image was generated, so there is nothing to score"
    (out_dir / MANIFEST_NAME).write_text(json.dumps(run.to_dict(), indent=2), encoding="utf-8")
    return run


def _generate_item(client: RylaClient, item: SheetItem, request: CharacterRequest,
                   out_dir: Path,
                   run_item: Callable[[SheetItem, CharacterRequest], GenerationResult] | None = None,
                   ) -> SheetItem:
    """One image of the sheet, saved; a backend error is recorded on the item, not raised."""
    start = time.perf_counter()
    try:
        result = run_item(item, request) if run_item is not None else client.generate(request)
    except BackendError as exc:
        item.error_code, item.error = exc.code, exc.message
    else:
        path = out_dir / f"{item.index:02d}-{item.method}-{item.name}{extension_for(result.content_type)}"
        path.write_bytes(result.images[0])
        item.path, item.content_type = path, result.content_type
        item.seed, item.request_id = result.seed, result.request_id
    item.seconds = round(time.perf_counter() - start, 3)
    return item


def _score(run: SheetRun, threshold: float) -> None:
    # Imported here: the face models load lazily, but numpy/dlib imports are still heavy
    # for the studio's generation tabs and `ryla sheet --no-score`.
    from ui.face.consistency import FaceConsistencyError, ReferenceFaceNotFound, score_sheet
    from ui.face.report import write_report

    done = [item for item in run.succeeded if item.path is not None]
    try:
        report = score_sheet(run.reference, [item.path for item in done], threshold=threshold,
                             labels=[item.path.name for item in done])
    except ReferenceFaceNotFound:
        run.score_error = "no face found in the reference"
        return
    except FaceConsistencyError as exc:
        # The images are kept; the sheet says why there are no scores.
        run.score_error = str(exc)
        return
    run.report = report
    files = write_report(report, run.out_dir)
    run.report_files = [files.json, files.csv, files.png]
