"""A face-consistency report a creator can keep: JSON, CSV, a contact-sheet PNG, a text table."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ui.face.consistency import FaceResult, SheetReport

TILE = 256
LABEL_HEIGHT = 64
PAD = 12
HEADER_HEIGHT = 40
COLUMNS = 6
COLOURS = {
    "reference": (40, 90, 200),
    "pass": (30, 150, 60),
    "fail": (200, 40, 40),
    "no face": (120, 120, 120),
    "unreadable": (120, 120, 120),
}


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    csv: Path
    png: Path


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _verdict(result: FaceResult) -> str:
    if not result.readable:
        return "unreadable"
    if result.faces == 0:
        return "no face"
    return "pass" if result.passed else "fail"


def format_table(report: SheetReport) -> str:
    """A fixed-width table of every output, then the sheet summary."""
    rows = [("image", "faces", "distance", "similarity", "result", "note")]
    for r in report.results:
        rows.append(
            (
                r.path,
                str(r.faces),
                _fmt(r.distance, ".3f"),
                "-" if r.similarity is None else f"{r.similarity:.1f} %",
                _verdict(r).upper(),
                r.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    s = report.summary()
    pw = s["pairwise"]
    ref_note = f" ({s['reference_faces']} faces: used the largest)" if s["reference_faces"] > 1 else ""
    lines += [
        "",
        f"reference: {s['reference']}{ref_note}",
        f"threshold: distance <= {s['threshold']} passes",
        f"passed: {s['passed']}/{s['count']} ({_fmt(_pct(s['pass_rate']), '.0f')} %)"
        + (f", {s['no_face']} with no face found" if s["no_face"] else ""),
        f"similarity: mean {_fmt(s['mean_similarity'], '.1f')} %, "
        f"min {_fmt(s['min_similarity'], '.1f')} %",
        f"consistency among outputs ({pw['pairs']} pairs): mean distance "
        f"{_fmt(pw['mean_distance'], '.3f')}, max {_fmt(pw['max_distance'], '.3f')}, "
        f"min similarity {_fmt(pw['min_similarity'], '.1f')} %",
    ]
    return "\n".join(lines)


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100


def write_json(report: SheetReport, path: Path) -> Path:
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(report: SheetReport, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "faces", "distance", "similarity", "pass", "note"])
        for r in report.results:
            writer.writerow(
                [
                    r.path,
                    r.faces,
                    "" if r.distance is None else r.distance,
                    "" if r.similarity is None else r.similarity,
                    "true" if r.passed else "false",
                    r.note,
                ]
            )
    return path


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _tile(
    thumb: Image.Image | None,
    box: tuple[int, int, int, int] | None,
    colour: tuple[int, int, int],
    lines: list[str],
) -> Image.Image:
    tile = Image.new("RGB", (TILE, TILE + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(tile)
    if thumb is not None:
        ox, oy = (TILE - thumb.width) // 2, (TILE - thumb.height) // 2
        tile.paste(thumb, (ox, oy))
        source = thumb.info.get("source_size")
        if box is not None and source:
            k = thumb.width / source[0]
            draw.rectangle(
                [ox + box[0] * k, oy + box[1] * k, ox + box[2] * k, oy + box[3] * k],
                outline=colour,
                width=2,
            )
    draw.rectangle([0, 0, TILE - 1, TILE - 1], outline=colour, width=4)
    font = _font(14)
    for n, line in enumerate(lines):
        draw.text((4, TILE + 4 + n * 19), line, fill=colour if n == 1 else "black", font=font)
    return tile


def _short(path: str, limit: int = 32) -> str:
    name = Path(path).name or path
    return name if len(name) <= limit else "..." + name[-(limit - 3) :]


def contact_sheet(report: SheetReport) -> Image.Image:
    """The reference first, then each output with its score and verdict."""
    tiles = [
        _tile(
            report.reference_thumbnail,
            report.reference_box,
            COLOURS["reference"],
            [_short(report.reference), "REFERENCE"]
            + ([f"{report.reference_faces} faces: largest used"] if report.reference_faces > 1 else []),
        )
    ]
    for r in report.results:
        verdict = _verdict(r)
        if not r.readable:
            score_line = "NOT AN IMAGE"
        elif r.faces == 0:
            score_line = "NO FACE FOUND"
        else:
            score_line = f"{r.similarity:.1f} %  d={r.distance:.3f}  {verdict.upper()}"
        lines = [_short(r.path), score_line] + ([r.note] if r.faces > 1 else [])
        tiles.append(_tile(r.thumbnail, r.box, COLOURS[verdict], lines))
    cols = min(COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    width = PAD + cols * (TILE + PAD)
    height = HEADER_HEIGHT + rows * (TILE + LABEL_HEIGHT + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (245, 245, 245))
    s = report.summary()
    header = (
        f"passed {s['passed']}/{s['count']}   mean {_fmt(s['mean_similarity'], '.1f')} %   "
        f"min {_fmt(s['min_similarity'], '.1f')} %   threshold d <= {s['threshold']}"
    )
    ImageDraw.Draw(sheet).text((PAD, 10), header, fill="black", font=_font(18))
    for n, tile in enumerate(tiles):
        x = PAD + (n % cols) * (TILE + PAD)
        y = HEADER_HEIGHT + (n // cols) * (TILE + LABEL_HEIGHT + PAD)
        sheet.paste(tile, (x, y))
    return sheet


def write_contact_sheet(report: SheetReport, path: Path) -> Path:
    contact_sheet(report).save(path, format="PNG")
    return path


def write_report(report: SheetReport, out_dir: Path, stem: str = "face_scores") -> ReportFiles:
    """Write `<stem>.json`, `<stem>.csv` and `<stem>.png` into out_dir (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return ReportFiles(
        json=write_json(report, out_dir / f"{stem}.json"),
        csv=write_csv(report, out_dir / f"{stem}.csv"),
        png=write_contact_sheet(report, out_dir / f"{stem}.png"),
    )
