"""Scoring real photos with dlib: same person passes, others fail, odd inputs are handled."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from ui.face.consistency import (
    NO_FACE,
    FaceScorer,
    InvalidImage,
    ReferenceFaceNotFound,
    load_image,
    similarity_percent,
)


def test_same_person_passes(scorer: FaceScorer, faces: Path) -> None:
    for ref, other in [("obama_1", "obama_2"), ("biden_1", "biden_2")]:
        report = scorer.score_sheet(faces / f"{ref}.jpg", [faces / f"{other}.jpg"])
        (result,) = report.results
        assert result.passed, result
        assert result.distance is not None and result.distance <= 0.6
        assert result.similarity == pytest.approx(similarity_percent(result.distance), abs=0.01)
        assert result.faces == 1


def test_different_people_fail(scorer: FaceScorer, faces: Path) -> None:
    report = scorer.score_sheet(faces / "obama_1.jpg", [faces / "biden_1.jpg", faces / "biden_2.jpg"])
    for result in report.results:
        assert not result.passed, result
        assert result.distance is not None and result.distance > 0.6
    assert report.summary()["passed"] == 0


def test_threshold_is_configurable(scorer: FaceScorer, faces: Path) -> None:
    strict = scorer.score_sheet(faces / "obama_1.jpg", [faces / "obama_2.jpg"], threshold=0.3)
    loose = scorer.score_sheet(faces / "obama_1.jpg", [faces / "obama_2.jpg"], threshold=0.6)
    assert strict.results[0].distance == loose.results[0].distance
    assert not strict.results[0].passed
    assert loose.results[0].passed


def test_two_faces_uses_the_larger_and_says_so(scorer: FaceScorer, faces: Path) -> None:
    # two_people.jpg holds A (Obama) and B (Biden); B's face is the larger.
    as_biden = scorer.score_sheet(faces / "biden_2.jpg", [faces / "two_people.jpg"]).results[0]
    as_obama = scorer.score_sheet(faces / "obama_1.jpg", [faces / "two_people.jpg"]).results[0]
    assert as_biden.faces == 2 and as_obama.faces == 2
    assert as_biden.passed and not as_obama.passed
    assert "largest" in as_biden.note
    detection = scorer.detect(faces / "two_people.jpg")
    left, top, right, bottom = detection.box
    width = Image.open(faces / "two_people.jpg").width
    assert (left + right) / 2 > width / 2  # Biden stands on the right


def test_no_face_is_reported_and_the_sheet_goes_on(
    scorer: FaceScorer, faces: Path, no_face_png: Path
) -> None:
    report = scorer.score_sheet(faces / "obama_1.jpg", [no_face_png, faces / "obama_2.jpg"])
    blank, real = report.results
    assert blank.faces == 0
    assert blank.distance is None and blank.similarity is None
    assert blank.passed is False
    assert blank.note == NO_FACE
    assert real.passed
    summary = report.summary()
    assert summary["no_face"] == 1 and summary["scored"] == 1
    assert summary["pass_rate"] == pytest.approx(0.5)
    assert summary["pairwise"]["pairs"] == 0


def test_reference_without_face_is_an_error_that_says_what_to_do(
    scorer: FaceScorer, faces: Path, no_face_png: Path
) -> None:
    with pytest.raises(ReferenceFaceNotFound, match="no face found in the reference"):
        scorer.score_sheet(no_face_png, [faces / "obama_1.jpg"])


def test_unreadable_reference_is_an_error_naming_it(scorer: FaceScorer, faces: Path) -> None:
    with pytest.raises(InvalidImage, match="not a readable image"):
        scorer.score_sheet(b"this is not an image", [faces / "obama_2.jpg"])


def test_unreadable_output_gets_its_own_result_and_the_rest_are_scored(
        scorer: FaceScorer, faces: Path) -> None:
    report = scorer.score_sheet(faces / "obama_1.jpg",
                                [faces / "obama_2.jpg", b"this is not an image"],
                                labels=["obama_2.jpg", "notes.png"])
    good, bad = report.results
    assert good.readable and good.passed and good.similarity is not None
    assert (bad.readable, bad.passed, bad.distance) == (False, False, None)
    assert "not a readable image" in bad.note
    assert (report.summary()["unreadable"], report.summary()["no_face"]) == (1, 0)


def _with_transparent_border(img: Image.Image, border: int) -> Image.Image:
    rgba = img.convert("RGBA")
    alpha = Image.new("L", img.size, 0)
    alpha.paste(255, (border, border, img.width - border, img.height - border))
    rgba.putalpha(alpha)
    # Transparent pixels hold black, as many generators write them.
    black = Image.new("RGBA", img.size, (0, 0, 0, 0))
    return Image.composite(rgba, black, alpha)


def test_png_with_alpha_scores_as_its_plain_version(
    scorer: FaceScorer, faces: Path, tmp_path: Path
) -> None:
    original = load_image(faces / "obama_2.jpg")
    border = 60
    rgba = _with_transparent_border(original, border)
    plain = Image.new("RGB", original.size, "white")
    plain.paste(original.crop((border, border, original.width - border, original.height - border)), (border, border))
    rgba.save(tmp_path / "alpha.png")
    plain.save(tmp_path / "plain.png")
    assert load_image(tmp_path / "alpha.png").getpixel((5, 5)) == (255, 255, 255)
    report = scorer.score_sheet(faces / "obama_1.jpg", [tmp_path / "alpha.png", tmp_path / "plain.png"])
    with_alpha, without = report.results
    assert with_alpha.distance == pytest.approx(without.distance, abs=1e-4)
    assert with_alpha.passed == without.passed is True


def test_rotated_jpeg_scores_as_its_plain_version(
    scorer: FaceScorer, faces: Path, tmp_path: Path
) -> None:
    upright = load_image(faces / "obama_1.jpg")
    upright.save(tmp_path / "plain.jpg", quality=95, subsampling=0)
    # Pixels stored turned 90 degrees; Orientation 6 tells viewers to turn them back.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", quality=95, subsampling=0, exif=exif.tobytes())
    assert ImageOps.exif_transpose(Image.open(tmp_path / "rotated.jpg")).size == upright.size
    # Without EXIF orientation the face lies on its side and is not found at all.
    raw_pixels = Image.fromarray(np.asarray(Image.open(tmp_path / "rotated.jpg")))
    assert scorer.detect(raw_pixels).faces == 0

    report = scorer.score_sheet(faces / "obama_2.jpg", [tmp_path / "rotated.jpg", tmp_path / "plain.jpg"])
    rotated, plain = report.results
    assert rotated.faces == plain.faces == 1
    assert rotated.distance == pytest.approx(plain.distance, abs=0.02)
    assert rotated.passed and plain.passed


def test_paths_bytes_and_pil_images_score_the_same(scorer: FaceScorer, faces: Path) -> None:
    path = faces / "obama_2.jpg"
    data = path.read_bytes()
    pil = Image.open(io.BytesIO(data))
    report = scorer.score_sheet(faces / "obama_1.jpg", [path, data, pil], labels=["p", "b", "i"])
    distances = {r.distance for r in report.results}
    assert len(distances) == 1
    assert [r.path for r in report.results] == ["p", "b", "i"]


def test_summary_is_computed_from_the_results(scorer: FaceScorer, faces: Path) -> None:
    outputs = [faces / "obama_2.jpg", faces / "biden_1.jpg", faces / "biden_2.jpg"]
    report = scorer.score_sheet(faces / "obama_1.jpg", outputs)
    s = report.summary()
    sims = [r.similarity for r in report.results]
    assert s["count"] == 3 and s["scored"] == 3
    assert s["passed"] == sum(r.passed for r in report.results)
    assert s["pass_rate"] == pytest.approx(s["passed"] / 3, abs=1e-4)
    assert s["mean_similarity"] == pytest.approx(np.mean(sims), abs=1e-3)
    assert s["min_similarity"] == min(sims)
    # Pairwise consistency among outputs: the two Biden photos are close, Obama is far.
    pairs = {(i, j): d for i, j, d in report.pairwise_distances}
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    direct = np.linalg.norm(
        scorer.detect(outputs[1]).descriptor - scorer.detect(outputs[2]).descriptor
    )
    assert pairs[(1, 2)] == pytest.approx(direct, abs=1e-4)
    assert pairs[(1, 2)] < 0.6 < pairs[(0, 1)]
    assert s["pairwise"]["max_distance"] == max(pairs.values())
    assert s["pairwise"]["consistent"] is False


def test_to_dict_has_exactly_the_json_shape(scorer: FaceScorer, faces: Path) -> None:
    report = scorer.score_sheet(faces / "obama_1.jpg", [faces / "obama_2.jpg"])
    data = report.to_dict()
    assert set(data) == {"results", "summary"}
    assert set(data["results"][0]) == {"path", "distance", "similarity", "pass", "faces", "readable"}
    assert data["results"][0]["path"] == str(faces / "obama_2.jpg")


def test_scorer_is_safe_to_share_between_threads(scorer: FaceScorer, faces: Path) -> None:
    names = ["obama_1", "obama_2", "biden_1", "biden_2"]
    serial = {n: scorer.detect(faces / f"{n}.jpg").descriptor for n in names}
    parallel: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            parallel[name] = scorer.detect(faces / f"{name}.jpg").descriptor
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for name in names:
        np.testing.assert_allclose(parallel[name], serial[name], atol=1e-6)
