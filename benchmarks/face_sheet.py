"""Time to score a 10-image character sheet of 1024x1024 images against a reference.

Run: `python -m benchmarks.face_sheet [--repeats N]`. Builds the sheet from the real photos in
tests/data/faces (each cropped square and scaled to 1024x1024, saved as PNG like generated
outputs) and prints a table. Target: under 5 s for the sheet on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from ui.face.consistency import FaceScorer

FACES_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "faces"
TARGET_S = 5.0


def _square_1024(path: Path) -> Image.Image:
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    # Crop to a square around the upper part, where portraits keep the face.
    side = min(img.size)
    left = (img.width - side) // 2
    return img.crop((left, 0, left + side, side)).resize((1024, 1024), Image.Resampling.LANCZOS)


def build_sheet(folder: Path) -> tuple[Path, list[Path]]:
    sources = sorted(FACES_DIR.glob("*.jpg"))
    if not sources:
        raise SystemExit(f"no photos in {FACES_DIR}; the benchmark needs the repository's test photos")
    reference = folder / "reference.png"
    _square_1024(FACES_DIR / "obama_1.jpg").save(reference)
    outputs = []
    for n in range(10):
        path = folder / f"output_{n:02d}.png"
        _square_1024(sources[n % len(sources)]).save(path)
        outputs.append(path)
    return reference, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        reference, outputs = build_sheet(Path(tmp))
        t0 = time.perf_counter()
        scorer = FaceScorer()
        load_s = time.perf_counter() - t0
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            report = scorer.score_sheet(reference, outputs)
            runs.append(time.perf_counter() - t0)
    median = statistics.median(runs)
    s = report.summary()
    rows = [
        ("model load (once per process)", f"{load_s:.2f} s"),
        (f"score sheet: 1 reference + {len(outputs)} outputs, 1024x1024 (median of {len(runs)})", f"{median:.2f} s"),
        ("  fastest / slowest run", f"{min(runs):.2f} s / {max(runs):.2f} s"),
        ("  per image", f"{median / (len(outputs) + 1) * 1000:.0f} ms"),
        ("first call incl. model load", f"{load_s + runs[0]:.2f} s"),
        (f"target (< {TARGET_S:.0f} s for the sheet)", "met" if median < TARGET_S else "MISSED"),
        ("faces found / passed", f"{s['scored']}/{s['count']} found, {s['passed']} passed"),
    ]
    width = max(len(a) for a, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  ------")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
