"""`ryla score`: the table or the JSON, the report on disk, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from ui.cli.score import add_score_arguments, run_score


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ryla score")
    add_score_arguments(parser)
    return run_score(parser.parse_args(argv))


def test_json_output_has_the_documented_shape(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = _run(
        [str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg"), str(faces / "biden_1.jpg"),
         "--json", "--output", str(out)]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"results", "summary"}
    assert [r["pass"] for r in data["results"]] == [True, False]
    assert all(set(r) == {"path", "distance", "similarity", "pass", "faces", "readable"} for r in data["results"])
    assert data["summary"]["passed"] == 1
    assert json.loads((out / "face_scores.json").read_text()) == data
    assert (out / "face_scores.csv").is_file() and (out / "face_scores.png").is_file()


def test_table_output_and_threshold(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        [str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg"), "--threshold", "0.3",
         "--output", str(tmp_path)]
    )
    assert code == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith(str(faces / "obama_2.jpg"))]
    assert "FAIL" in line  # 0.38 > 0.3
    assert "distance <= 0.3" in out


def test_missing_file_is_bad_usage(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.png"
    code = _run([str(faces / "obama_1.jpg"), str(missing), "--output", str(tmp_path / "r")])
    assert code == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_reference_without_face_is_bad_usage(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), "gray").save(blank)
    code = _run([str(blank), str(faces / "obama_1.jpg"), "--output", str(tmp_path / "r")])
    assert code == 2
    assert "no face found in the reference" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["zero", "0", "-1", "3"])
def test_bad_threshold_is_rejected_by_argparse(faces: Path, bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        _run([str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg"), "--threshold", bad])
    assert exc.value.code == 2
