"""The kept report: JSON, CSV and contact sheet agree with the scores; the table says it all."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from ui.face.consistency import FaceScorer, SheetReport
from ui.face.report import COLOURS, LABEL_HEIGHT, TILE, format_table, write_report


@pytest.fixture(scope="module")
def mixed_report(scorer: FaceScorer, faces: Path, tmp_path_factory: pytest.TempPathFactory) -> SheetReport:
    blank = tmp_path_factory.mktemp("blank") / "blank.png"
    Image.new("RGB", (512, 512), (200, 180, 160)).save(blank)
    outputs = [faces / "obama_2.jpg", faces / "biden_1.jpg", faces / "two_people.jpg", blank]
    return scorer.score_sheet(faces / "obama_1.jpg", outputs)


def test_json_and_csv_hold_the_scores(mixed_report: SheetReport, tmp_path: Path) -> None:
    files = write_report(mixed_report, tmp_path / "out")
    assert json.loads(files.json.read_text()) == json.loads(json.dumps(mixed_report.to_dict()))
    with files.csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [r.path for r in mixed_report.results]
    for row, result in zip(rows, mixed_report.results):
        assert row["pass"] == ("true" if result.passed else "false")
        assert int(row["faces"]) == result.faces
        if result.distance is None:
            assert row["distance"] == "" and row["note"] == "no face found"
        else:
            assert float(row["distance"]) == pytest.approx(result.distance)
            assert float(row["similarity"]) == pytest.approx(result.similarity)


def test_contact_sheet_shows_reference_and_every_output(
    mixed_report: SheetReport, tmp_path: Path
) -> None:
    files = write_report(mixed_report, tmp_path)
    sheet = Image.open(files.png).convert("RGB")
    tiles = 1 + len(mixed_report.results)
    assert sheet.width >= tiles * TILE and sheet.height >= TILE + LABEL_HEIGHT
    # Each tile's frame is coloured by its verdict: reference, pass, fail, fail, no face.
    expected = ["reference", "pass", "fail", "fail", "no face"]
    assert [r.passed for r in mixed_report.results] == [True, False, False, False]
    pad, header = 12, 40
    for n, verdict in enumerate(expected):
        x = pad + n * (TILE + pad) + 1
        assert sheet.getpixel((x, header + TILE // 2)) == COLOURS[verdict], verdict


def test_table_names_each_image_and_flags_odd_ones(mixed_report: SheetReport) -> None:
    table = format_table(mixed_report)
    lines = table.splitlines()
    for result in mixed_report.results:
        (line,) = [ln for ln in lines if ln.startswith(result.path)]
        if result.faces == 0:
            assert "no face found" in line
        else:
            assert f"{result.similarity:.1f} %" in line
            assert ("PASS" if result.passed else "FAIL") in line
        if result.faces > 1:
            assert "used the largest" in line
    summary = mixed_report.summary()
    assert f"passed: {summary['passed']}/{summary['count']}" in table
