"""models, success-rate, bench and sheet against ryla-backend over the ComfyUI double."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tests.cli.conftest import Run
from ui.prompts import SEED_PROMPTS, SHEET_VARIATIONS
from workflows.manifest import MODEL_MANIFEST

SMALL = ("--width", "256", "--height", "256", "--steps", "2")


def valid_image(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()
        return image.size[0] > 0


def test_models_lists_the_manifest_with_present_and_missing(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.set_installed({})  # the models directory both of them read
    installed = MODEL_MANIFEST[0]
    target = backend_server.models_dir / installed.folder / installed.local_name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"weights")
    result = ryla("models", "--backend-url", backend_server.url, "--json")
    assert result.code == 0, result.err
    rows = result.json()
    assert len(rows) == len(MODEL_MANIFEST)
    assert [row["local_name"] for row in rows if row["present"]] == [installed.local_name]

    missing = ryla("models", "--backend-url", backend_server.url, "--missing", "--json").json()
    assert len(missing) == len(MODEL_MANIFEST) - 1
    assert installed.local_name not in {row["local_name"] for row in missing}

    table = ryla("models", "--backend-url", backend_server.url)
    assert table.code == 0
    assert f"1 installed, {len(MODEL_MANIFEST) - 1} missing" in table.out


def test_models_names_z_image_files(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.set_installed({})
    rows = ryla("models", "--backend-url", backend_server.url, "--missing", "--json").json()
    z_image = {row["local_name"]: row for row in rows if "z-image" in row["pipelines"]}
    assert set(z_image) == {"z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"}
    assert z_image["qwen_3_4b.safetensors"]["repo_id"] == "Comfy-Org/z_image_turbo"
    table = ryla("models", "--backend-url", backend_server.url)
    assert table.code == 0
    assert "z_image_turbo_bf16.safetensors" in table.out and "qwen_3_4b.safetensors" in table.out


def test_success_rate_runs_the_seed_prompts(ryla: Callable[..., Run], backend_server_session) -> None:
    result = ryla("success-rate", "--backend-url", backend_server_session.url, "--endpoint", "flux",
                  *SMALL, "--output", "rate", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert [row["prompt"] for row in report["requests"]] == list(SEED_PROMPTS)
    assert (report["succeeded"], report["total"], report["success_rate"]) == (10, 10, 100.0)
    assert all(row["success"] and row["seconds"] > 0 for row in report["requests"])
    files = [Path(row["file"]) for row in report["requests"]]
    assert len(set(files)) == 10 and all(valid_image(f) for f in files)
    assert {f.parent for f in files} == {Path("rate")}


def test_success_rate_below_100_exits_1(ryla: Callable[..., Run], backend_server, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# three prompts\nA red door\n\nA blue door\nA green door\n")
    backend_server.double.fail_next("simulated sampler crash")
    result = ryla("success-rate", "--backend-url", backend_server.url, "--endpoint", "flux",
                  "--prompts", str(prompts), *SMALL)
    assert result.code == 1
    assert "success rate: 2/3 (66.7 %)" in result.out
    assert "simulated sampler crash" in result.out
    assert len(list(Path("outputs").glob("success-rate-*/*.jpg"))) == 2


def test_bench_sequential_and_concurrent(ryla: Callable[..., Run], backend_server) -> None:
    # workers=5: the deployed ComfyUI is a Modal class that scales out to more GPU
    # containers under load, each running one job at a time, so 5 concurrent requests
    # can run at once. The gain then comes from the jobs themselves overlapping (not only
    # the HTTP work around one job), which holds on a loaded machine, and it fails if the
    # CLI, the client or the backend serialize requests.
    backend_server.double.workers = 5
    # Each node and sampler step sleeps, as a GPU keeps ComfyUI busy: flux (Schnell) at
    # 2 steps is 9 nodes + 2 steps, so ~0.28 s a job, far above the per-request overhead.
    backend_server.double.step_delay = 0.025
    result = ryla("bench", "--backend-url", backend_server.url, "--endpoint", "flux", "--requests", "5",
                  "--concurrency", "5", *SMALL, "--json")
    assert result.code == 0, result.err
    (row,) = result.json()["results"]
    for mode in ("sequential", "concurrent"):
        stats = row[mode]
        assert (stats["succeeded"], stats["total"], stats["success_rate"]) == (5, 5, 100.0)
        assert stats["min"] <= stats["median"] <= stats["p95"] <= stats["max"]
        assert stats["min"] <= stats["mean"] <= stats["max"]
    assert row["concurrent"]["concurrency"] == 5
    assert row["concurrent"]["wall_seconds"] < row["sequential"]["wall_seconds"]
    assert row["speedup"] > 1


def test_bench_human_output_and_failures(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.fail_next("boom")
    result = ryla("bench", "--backend-url", backend_server.url, "--endpoint", "flux", "-n", "2", *SMALL)
    assert result.code == 1
    assert "1/2 ok" in result.out and "boom" in result.out


def test_sheet_saves_images_manifest_and_face_report(ryla: Callable[..., Run], backend_server_session,
                                                     reference_face: Path) -> None:
    result = ryla("sheet", "--backend-url", backend_server_session.url, "--reference", str(reference_face),
                  "--method", "both", "--count", "2", "--concurrency", "2", *SMALL, "--output", "sheet",
                  "--json")
    assert result.code == 0, result.err
    report = result.json()
    items = report["items"]
    assert [(i["method"], i["name"]) for i in items] == [
        (m, v.name) for m in ("instantid", "pulid") for v in SHEET_VARIATIONS[:2]]
    assert all(valid_image(Path(i["path"])) for i in items)
    assert json.loads(Path("sheet/sheet.json").read_text())["generated"] == 4
    scores = json.loads(Path("sheet/face_scores.json").read_text())
    assert len(scores["results"]) == 4
    # The double pastes the reference into identity-graph outputs (as InstantID/PuLID keep
    # the face): every output has the face, passes and shows a similarity.
    for row in scores["results"]:
        assert row["faces"] == 1 and row["pass"] is True, row
        assert row["similarity"] is not None and row["similarity"] > 75
    assert scores["summary"]["pass_rate"] == 1.0
    assert (scores["summary"]["passed"], scores["summary"]["no_face"]) == (4, 0)
    assert {Path(p).name for p in report["report_files"]} == {"face_scores.json", "face_scores.csv",
                                                            "face_scores.png"}


def test_sheet_keeps_going_when_one_image_fails(ryla: Callable[..., Run], backend_server,
                                                reference_face: Path) -> None:
    backend_server.double.fail_next("face detector crashed")
    result = ryla("sheet", "--backend-url", backend_server.url, "--reference", str(reference_face),
                  "--count", "3", "--concurrency", "1", *SMALL, "--output", "sheet", "--no-score")
    assert result.code == 1
    manifest = json.loads(Path("sheet/sheet.json").read_text())
    assert (manifest["generated"], manifest["failed"]) == (2, 1)
    failed = [i for i in manifest["items"] if i["error"]]
    assert failed[0]["error_code"] == "comfyui_job_failed"
    assert "face detector crashed" in failed[0]["error"]
    assert sorted(p.name for p in Path("sheet").glob("*.jpg")) == sorted(
        Path(i["path"]).name for i in manifest["items"] if i["path"])
    assert "face detector crashed" in result.out


def test_score_is_registered(ryla: Callable[..., Run], reference_face: Path, tmp_path: Path) -> None:
    result = ryla("score", str(reference_face), str(reference_face), "--output", str(tmp_path / "review"),
                  "--json")
    assert result.code == 0, result.err
    assert result.json()["results"][0]["pass"] is True


def test_sheet_refuses_a_reference_without_a_face_before_any_job(
        ryla: Callable[..., Run], backend_server, tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    Image.new("RGB", (512, 512), (180, 170, 160)).save(blank)
    result = ryla("sheet", "--backend-url", backend_server.url, "--reference", str(blank),
                  "--count", "2", *SMALL, "--output", "sheet")
    assert result.code == 2
    assert "no face found in the reference" in result.err
    assert "ReferenceFaceNotFound" not in result.err and str(tmp_path) not in result.err
    assert backend_server.double.jobs == []  # no GPU time spent
    assert not Path("sheet").exists()


def test_sheet_refuses_a_reference_that_is_not_an_image(
        ryla: Callable[..., Run], backend_server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    result = ryla("sheet", "--backend-url", backend_server.url, "--reference", str(notes),
                  "--count", "2", *SMALL)
    assert result.code == 2 and "not an image" in result.err
    assert "UnidentifiedImageError" not in result.err
    assert backend_server.double.jobs == []


def test_sheet_progress_counts_in_order(ryla: Callable[..., Run], backend_server_session,
                                        reference_face: Path) -> None:
    result = ryla("sheet", "--backend-url", backend_server_session.url, "--reference",
                  str(reference_face), "--count", "3", "--concurrency", "3", *SMALL,
                  "--output", "sheet", "--no-score")
    assert result.code == 0, result.err
    counts = [line.split("]")[0] for line in result.out.splitlines() if line.startswith("[")]
    assert counts == ["[1 of 3", "[2 of 3", "[3 of 3"]


def test_score_marks_an_unreadable_file_and_scores_the_rest(
        ryla: Callable[..., Run], faces: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    result = ryla("score", str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg"), str(broken),
                  str(faces / "biden_1.jpg"), "--output", str(tmp_path / "review"), "--json")
    assert result.code == 0, result.err
    rows = {Path(r["path"]).name: r for r in result.json()["results"]}
    assert rows["broken.png"]["readable"] is False and rows["broken.png"]["pass"] is False
    assert rows["obama_2.jpg"]["pass"] is True and rows["biden_1.jpg"]["pass"] is False
    assert result.json()["summary"]["unreadable"] == 1


def test_models_table_fits_100_columns(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.set_installed({})
    result = ryla("models", "--backend-url", backend_server.url, "--missing")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) > len(MODEL_MANIFEST) and max(len(line) for line in lines) <= 100
    assert "ryla models --missing --json" in result.out


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that says it is width×height (its pixels are never read: the size is enough)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT"  # an empty data chunk: Pillow stops reading the header there
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk))
                     + struct.pack(">I", 0) + idat + struct.pack(">I", zlib.crc32(idat)))
    return path


def test_sheet_refuses_a_reference_over_the_pixel_limit(ryla: Callable[..., Run], backend_server,
                                                        tmp_path: Path) -> None:
    huge = _png_header(tmp_path / "huge.png", 10_000, 6_900)  # 69 megapixels
    result = ryla("sheet", "--backend-url", backend_server.url, "--reference", str(huge),
                  "--count", "2", *SMALL)
    assert result.code == 2
    assert "69 megapixels" in result.err and "the limit is 40 megapixels" in result.err
    assert backend_server.double.jobs == []


def test_errors_name_cli_commands_not_http_routes(ryla: Callable[..., Run],
                                                  backend_server_session) -> None:
    result = ryla("flux-lora", "--backend-url", backend_server_session.url, "--prompt", "a cafe",
                  "--lora-id", "nobody", *SMALL)
    assert result.code == 1
    assert "`ryla loras`" in result.err and "GET /loras" not in result.err
