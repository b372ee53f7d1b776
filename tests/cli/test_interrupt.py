"""Ctrl-C in `ryla`: a real process, a real backend, a job held in the ComfyUI double.

The job is held in a node that cannot be interrupted (the double's `hold_next`), so the
notice is seen while the job still runs: that is what shows that Ctrl-C answers at once
rather than after the job. Each outcome is checked on the backend (GET /jobs/{id})."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Event

import pytest

from tests.cli.processes import RylaProcess, until
from ui.cli.job_runner import Interrupted
from ui.cli.job_runner import JobRunner
from ui.cli.progress import JobDisplay
from ui.client import BackendError, RylaClient
from workflows.request_models import FluxSchnellRequest

SMALL = ["--width", "256", "--height", "256", "--steps", "2"]
FLUX = ["flux", "--prompt", "a lighthouse", *SMALL]


@dataclass
class HeldRun:
    ryla: RylaProcess
    job: dict
    client: RylaClient
    release: Event

    def settle(self, double) -> tuple[int, str, str]:
        """Let the held node go once ComfyUI was asked to stop; the process's end."""
        until(lambda: double.jobs[-1].interrupt.is_set(), "ComfyUI is asked to stop the job")
        self.release.set()
        return self.ryla.finish()


@contextmanager
def ctrl_c_while_held(backend_server, held: str, argv: list[str],
                      cwd: Path) -> Iterator[HeldRun]:
    """`ryla argv` with its job held at the node `held`, after one Ctrl-C and its notice."""
    release = backend_server.double.hold_next(held)
    ryla = RylaProcess([*argv, "--backend-url", backend_server.url], cwd)
    try:
        with RylaClient(backend_server.url) as client:
            jobs = until(lambda: client.jobs(status="running"), "the job runs in ComfyUI")
            assert len(jobs) == 1
            ryla.process.send_signal(signal.SIGINT)
            # said while the job is still held in ComfyUI: the notice does not wait for it
            ryla.wait_for("cancelling 1 job")
            yield HeldRun(ryla, jobs[0], client, release)
    finally:
        release.set()
        ryla.kill()


def test_ctrl_c_cancels_the_job_on_the_backend_and_exits_130(backend_server, tmp_path: Path) -> None:
    # held before SaveImage: the interrupt stops the job there
    with ctrl_c_while_held(backend_server, "VAEDecode", FLUX, tmp_path) as run:
        code, out, err = run.settle(backend_server.double)
        assert code == 130, err
        assert f"job {run.job['id']}" in err and err.rstrip().endswith("cancelled")
        assert out == "" and "Traceback" not in err
        final = run.client.job(run.job["id"])
        assert (final["status"], final["outputs"]) == ("cancelled", [])
    assert not (tmp_path / "outputs").exists()


def test_a_job_that_finishes_anyway_is_saved_and_said_so(backend_server, tmp_path: Path) -> None:
    # held in SaveImage, the last node: it runs to its end whatever is asked
    with ctrl_c_while_held(backend_server, "SaveImage", [*FLUX, "--json"], tmp_path) as run:
        code, out, err = run.settle(backend_server.double)
        assert code == 130, err
        assert "finished anyway" in err
        saved = json.loads(out)["files"]
        assert len(saved) == 1
        assert (tmp_path / saved[0]).read_bytes() == run.client.output(run.job["id"])
        assert run.client.job(run.job["id"])["status"] == "succeeded"


def test_a_second_ctrl_c_exits_at_once_leaving_the_job(backend_server, tmp_path: Path) -> None:
    with ctrl_c_while_held(backend_server, "VAEDecode", FLUX, tmp_path) as run:
        run.ryla.process.send_signal(signal.SIGINT)  # the job is still held: no answer yet
        code, _, err = run.ryla.finish()
        assert code == 130
        assert "may still run on the backend" in err and run.job["id"] in err
        assert run.client.job(run.job["id"])["status"] == "running"  # it was not waited for


def test_ctrl_c_in_a_sheet_cancels_the_image_in_flight_and_starts_no_more(
        backend_server, tmp_path: Path, reference_face: Path) -> None:
    sheet = ["sheet", "--reference", str(reference_face), "--count", "3", "--concurrency", "1",
             "--no-score", "--output", "sheet", *SMALL]
    with ctrl_c_while_held(backend_server, "VAEDecode", sheet, tmp_path) as run:
        code, _, err = run.settle(backend_server.double)
        assert code == 130, err
        assert f"job {run.job['id']}" in err and "cancelled" in err
        assert [(j["id"], j["status"]) for j in run.client.jobs()] == [(run.job["id"], "cancelled")]
    manifest = json.loads((tmp_path / "sheet" / "sheet.json").read_text())
    assert [i["error_code"] for i in manifest["items"]] == ["cancelled"] * 3
    assert manifest["generated"] == 0


def test_a_cancel_the_backend_does_not_confirm_is_reported_unknown(
        backend_server, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process, with no wait for the confirmation: the job, held, cannot confirm yet."""
    release = backend_server.double.hold_next("VAEDecode")
    errors: list[BackendError] = []
    try:
        with RylaClient(backend_server.url) as client:
            with pytest.raises(Interrupted):
                with JobRunner(client, JobDisplay(False), confirm_wait_s=0) as runner:
                    def generate() -> None:
                        try:
                            runner.generate(FluxSchnellRequest(prompt="held", width=256, height=256))
                        except BackendError as exc:
                            errors.append(exc)

                    worker = threading.Thread(target=generate)
                    worker.start()
                    (job,) = until(lambda: client.jobs(status="running"), "the job runs")
                    os.kill(os.getpid(), signal.SIGINT)  # handled on this, the main, thread
                    worker.join()
            assert [e.code for e in errors] == ["cancel_unconfirmed"]
            err = capsys.readouterr().err
            assert "cancelling 1 job" in err
            assert f"the backend has not confirmed the cancel; it may still run: `ryla jobs show {job['id']}`" in err
            assert client.job(job["id"])["status"] == "running"
    finally:
        release.set()
