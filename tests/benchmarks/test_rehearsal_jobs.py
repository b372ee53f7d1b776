"""The rehearsal's jobs phase (benchmarks/rehearsal/measure.py `jobs`, issue 22) against the
backend over the ComfyUI test double, whose sampler steps send progress and, unless turned
off, latent previews: Flux Dev through the synchronous route and through the async path
(submit, events, outputs), a sheet submitted at once, previews on and off, and the
summary's arithmetic. No figure here is a speed: the GPU rehearsal measures those."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.rehearsal import measure
from benchmarks.rehearsal.summarize import jobs_summary
from benchmarks.rehearsal.summarize import main as summarize_main

ASYNC_FIGURES = {"progress_events", "previews", "first_progress_s", "first_preview_s", "submit_s", "done_s"}


def _jobs(backend_server, faces: Path, out: Path, *extra: str) -> list[dict]:
    code = measure.main(["--backend-url", backend_server.url, "--out", str(out), "--gpu", "test double",
                         "--reference", str(faces / "obama_1.jpg"), "--phase", "jobs", "--repeat", "2",
                         "--settle-s", "0", "--comfyui-url", backend_server.double.url, *extra])
    rows = json.loads(out.read_text())
    assert code == 0, [r for r in rows if r["status"] != 200]
    return rows


def test_jobs_phase_compares_the_paths_and_counts_what_the_events_carried(
        backend_server, faces: Path, tmp_path: Path, capsys) -> None:
    on = _jobs(backend_server, faces, tmp_path / "on.json", "--sheet-images", "3", "--previews", "on")
    dev = [r for r in on if r.get("part") == "flux-dev"]
    assert [(r["path"], r["pair"]) for r in dev] == [("sync", 0), ("async", 0), ("async", 1), ("sync", 1)]
    assert on[0]["part"] == "warm-up" and on[0]["path"] == "sync"
    async_rows = [r for r in on if r.get("path") == "async" and r.get("part") != "sheet total"]
    assert len(async_rows) == 2 + 3
    for row in async_rows:
        assert ASYNC_FIGURES <= set(row) and row["output_bytes"][0] > 0
        assert row["previews"] >= 1 and row["first_preview_s"] is not None  # the double sent some
        assert (row["first_progress_s"] is None) == (row["progress_events"] == 0)
    assert all(r["previews_enabled"] is True for r in on)
    # ComfyUI's own time of every request, found in its history by the request's seed
    requests_ = [r for r in on if "requests" not in r]
    assert len({r["seed"] for r in requests_}) == len(requests_) == 1 + 4 + 3
    assert all(r["comfyui_exec_s"] >= 0 for r in requests_)
    sheet = [r for r in on if r.get("part") == "sheet"]
    assert {(r["route"], r["method"], r["status"]) for r in sheet} == {("/flux-instantid", "pulid", 200)}
    assert [r["requests"] for r in on if r.get("part") == "sheet total"] == [3]
    sizes = [next(n["inputs"]["width"] for n in job.graph.values() if "width" in n["inputs"])
             for job in backend_server.double.jobs]
    assert sizes == [1024] * 8

    backend_server.double.previews = False  # as ComfyUI with --preview-method none
    off = _jobs(backend_server, faces, tmp_path / "off.json", "--sheet-images", "0", "--previews", "off")
    assert not [r for r in off if r.get("part", "").startswith("sheet")]
    assert [r["previews"] for r in off if r.get("path") == "async"] == [0, 0]
    assert all(r["previews_enabled"] is False for r in off)

    capsys.readouterr()
    assert summarize_main(["--jobs", str(tmp_path / "on.json"), str(tmp_path / "off.json")]) == 0
    table = capsys.readouterr().out
    assert "| on | sync | 2 |" in table and "| off | async | 2 |" in table
    assert "previews on: async - sync, median of 2 pairs" in table
    assert "previews' cost, async" in table and "Sheet (pulid, 3 images" in table


def test_a_watch_counts_progress_while_running_and_every_preview() -> None:
    watch = measure.JobWatch(submitted=0.0)
    for event, data in [("status", {"status": "queued"}), ("progress", {"fraction": 0.0}),
                        ("status", {"status": "running"}), ("progress", {"fraction": 0.2}),
                        ("preview", {"step": 1}), ("progress", {"fraction": 0.5}),
                        ("preview", {"step": 9}), ("progress", {"fraction": 1.0}),
                        ("status", {"status": "succeeded"}), ("done", {"status": "succeeded"})]:
        watch.on_event(event, data)
    figures = watch.figures()
    assert (figures["progress_events"], figures["previews"]) == (3, 2)
    assert figures["first_progress_s"] is not None and figures["first_preview_s"] is not None

    late = measure.JobWatch(submitted=0.0)  # joined after the end: handed the end state only
    for event, data in [("preview", {"step": 28}), ("progress", {"fraction": 1.0}),
                        ("status", {"status": "succeeded"}), ("done", {})]:
        late.on_event(event, data)
    assert late.figures()["progress_events"] == 0 and late.figures()["first_progress_s"] is None
    assert late.figures()["previews"] == 1


def test_previews_follow_the_last_preview_method_on_comfyuis_command_line() -> None:
    deployed = ["python", "main.py", "--cache-lru", "128", "--preview-method", "taesd"]
    assert measure.previews_enabled(deployed)
    assert not measure.previews_enabled(deployed + ["--front-end-root", "fe", "--preview-method", "none"])
    assert not measure.previews_enabled(deployed + ["--preview-method=none"])
    assert not measure.previews_enabled(["python", "main.py"])  # ComfyUI's default: none


def test_summary_reports_the_median_pairwise_overhead_and_the_previews_cost() -> None:
    def row(path: str, pair: int, wall: float, exec_s: float, previews: bool) -> dict:
        return {"part": "flux-dev", "path": path, "pair": pair, "status": 200, "wall_s": wall,
                "comfyui_exec_s": exec_s, "previews_enabled": previews}
    rows = [row("sync", 0, 4.700, 4.600, True), row("async", 0, 4.730, 4.610, True),
            row("async", 1, 4.790, 4.650, True), row("sync", 1, 4.770, 4.660, True),
            row("sync", 0, 4.600, 4.500, False), row("async", 0, 4.640, 4.520, False)]
    text = jobs_summary(rows)
    # pairs: +30 and +20 ms of wall; beyond ComfyUI +20 and +30 ms: medians +25 and +25
    assert "previews on: async - sync, median of 2 pairs: wall +25 ms, beyond ComfyUI's own time +25 ms" in text
    # median on - median off: sync wall 4.735 - 4.600, ComfyUI 4.630 - 4.500
    assert "previews' cost, sync: wall +135 ms, ComfyUI +130 ms" in text
