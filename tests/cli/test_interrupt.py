"""Ctrl-C in `ryla`: a real process, a real backend, a job held in the ComfyUI double.

The job is held in a node that cannot be interrupted (the double's `hold_next`), so the
notice is seen while the job still runs: that is what shows that Ctrl-C answers at once
rather than after the job. Each outcome is checked on the backend (GET /jobs/{id})."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.cli.processes import RylaProcess, until
from ui.client import RylaClient

SMALL = ["--width", "256", "--height", "256", "--steps", "2"]


def running_job(client: RylaClient) -> dict:
    jobs = until(lambda: client.jobs(status="running"), "the job runs in ComfyUI")
    assert len(jobs) == 1
    return jobs[0]


def interrupt_asked(double) -> bool:
    return bool(double.jobs) and double.jobs[-1].interrupt.is_set()


def test_ctrl_c_cancels_the_job_on_the_backend_and_exits_130(backend_server, tmp_path: Path) -> None:
    release = backend_server.double.hold_next("VAEDecode")  # after it, SaveImage never starts
    ryla = RylaProcess(["flux", "--backend-url", backend_server.url, "--prompt", "a lighthouse",
                        *SMALL], tmp_path)
    try:
        with RylaClient(backend_server.url) as client:
            job = running_job(client)
            ryla.process.send_signal(signal.SIGINT)
            # said while the job is still held in ComfyUI: the notice does not wait for it
            ryla.wait_for("cancelling 1 job")
            until(lambda: interrupt_asked(backend_server.double), "ComfyUI is asked to stop it")
            release.set()
            code, out, err = ryla.finish()
            assert code == 130, err
            assert f"job {job['id']}" in err and err.rstrip().endswith("cancelled")
            assert out == "" and "Traceback" not in err
            final = client.job(job["id"])
            assert (final["status"], final["outputs"]) == ("cancelled", [])
        assert not (tmp_path / "outputs").exists()
    finally:
        release.set()
        ryla.kill()


def test_a_job_that_finishes_anyway_is_saved_and_said_so(backend_server, tmp_path: Path) -> None:
    release = backend_server.double.hold_next("SaveImage")  # the last node: it runs to its end
    ryla = RylaProcess(["flux", "--backend-url", backend_server.url, "--prompt", "a lighthouse",
                        *SMALL, "--json"], tmp_path)
    try:
        with RylaClient(backend_server.url) as client:
            job = running_job(client)
            ryla.process.send_signal(signal.SIGINT)
            ryla.wait_for("cancelling 1 job")
            until(lambda: interrupt_asked(backend_server.double), "ComfyUI is asked to stop it")
            release.set()
            code, out, err = ryla.finish()
            assert code == 130, err
            assert "finished anyway" in err
            saved = json.loads(out)["files"]
            assert len(saved) == 1 and (tmp_path / saved[0]).read_bytes() == client.output(job["id"])
            assert client.job(job["id"])["status"] == "succeeded"
    finally:
        release.set()
        ryla.kill()


def test_a_second_ctrl_c_exits_at_once_leaving_the_job(backend_server, tmp_path: Path) -> None:
    release = backend_server.double.hold_next("VAEDecode")
    ryla = RylaProcess(["flux", "--backend-url", backend_server.url, "--prompt", "a lighthouse",
                        *SMALL], tmp_path)
    try:
        with RylaClient(backend_server.url) as client:
            job = running_job(client)
            ryla.process.send_signal(signal.SIGINT)
            ryla.wait_for("cancelling 1 job")
            ryla.process.send_signal(signal.SIGINT)  # the job is still held: no answer yet
            code, _, err = ryla.finish()
            assert code == 130
            assert "may still run on the backend" in err and job["id"] in err
            assert client.job(job["id"])["status"] == "running"  # it was not waited for
    finally:
        release.set()
        ryla.kill()


def test_ctrl_c_in_a_sheet_cancels_the_image_in_flight_and_starts_no_more(
        backend_server, tmp_path: Path, reference_face: Path) -> None:
    release = backend_server.double.hold_next("VAEDecode")
    ryla = RylaProcess(["sheet", "--backend-url", backend_server.url, "--reference", str(reference_face),
                        "--count", "3", "--concurrency", "1", "--no-score", "--output", "sheet",
                        *SMALL], tmp_path)
    try:
        with RylaClient(backend_server.url) as client:
            job = running_job(client)
            ryla.process.send_signal(signal.SIGINT)
            ryla.wait_for("cancelling 1 job")
            until(lambda: interrupt_asked(backend_server.double), "ComfyUI is asked to stop it")
            release.set()
            code, _, err = ryla.finish()
            assert code == 130, err
            assert f"job {job['id']}" in err and "cancelled" in err
            jobs = client.jobs()
            assert [(j["id"], j["status"]) for j in jobs] == [(job["id"], "cancelled")]
        manifest = json.loads((tmp_path / "sheet" / "sheet.json").read_text())
        assert [i["error_code"] for i in manifest["items"]] == ["cancelled"] * 3
        assert manifest["generated"] == 0
    finally:
        release.set()
        ryla.kill()
