"""Cancelling past the deadline (issue 13): a job reported cancelled is not running in
ComfyUI, even when it starts while it is being cancelled, and a job whose POST /prompt
got no answer in time never runs later. The backend and the ComfyUI double talk real
HTTP; the double's one-shot faults make the races happen every time."""

from __future__ import annotations

import threading
import time

import httpx

from backend.comfyui_client import HEALTH_SHARED_S
from tests.backend.helpers import SHORT_DEADLINE_S, SMALL, error_of, job_with_seed, records, warm_up

CLIENT_TIMEOUT_S = 30
SETTLE_S = 15.0


def _post_in_thread(url: str, body: dict) -> threading.Thread:
    caller = threading.Thread(target=httpx.post, args=(url,),
                              kwargs={"json": body, "timeout": CLIENT_TIMEOUT_S}, daemon=True)
    caller.start()
    return caller


def _wait(condition, what: str, timeout: float = SETTLE_S) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_job_that_starts_while_being_cancelled_is_not_left_running(backend_server_factory,
                                                                  comfyui_double):
    patient = backend_server_factory(comfyui_double, deadline_s=CLIENT_TIMEOUT_S)
    # warmed up, so that its deadline passes with B queued, not while preparing it
    hasty = backend_server_factory(comfyui_double, deadline_s=SHORT_DEADLINE_S)
    warm_up(hasty)
    comfyui_double.step_delay = 0.02  # job B, if it ran, would take about a second
    comfyui_double.hang_next()
    first = _post_in_thread(f"{patient.url}/flux-dev", {"prompt": "a", "seed": 1, **SMALL})
    _wait(lambda: comfyui_double.running is not None, "job A runs")
    # B waits behind A; past B's deadline, the first read of /queue that still shows B
    # pending is answered only after B has started (a stale read, as in a real race)
    comfyui_double.start_pending_during_next_queue_read()
    r = httpx.post(f"{hasty.url}/flux-dev", json={"prompt": "b", "seed": 2, **SMALL, "steps": 40},
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 504
    assert "cancelled in ComfyUI" in error_of(r)["message"]
    job_b = job_with_seed(comfyui_double, 2)
    # reported cancelled: so not running, not waiting, and it never finishes
    assert job_b not in comfyui_double.running_jobs and job_b not in comfyui_double.pending
    time.sleep(0.5)
    assert job_b.status in ("pending", "interrupted"), job_b.status  # deleted, or stopped
    assert (comfyui_double.history.get(job_b.prompt_id) or {}).get("status", {}).get(
        "status_str") != "success"
    record = records(hasty.data_dir)[r.headers["x-request-id"]]
    assert record["status"] == "failed" and record["prompt_id"] == job_b.prompt_id
    assert job_with_seed(comfyui_double, 1).status == "running"  # A was not touched
    comfyui_double.interrupt()
    first.join(CLIENT_TIMEOUT_S)


def test_job_whose_queueing_timed_out_never_runs_later(backend_server_factory, comfyui_double):
    # warmed up, so that the deadline passes during the frozen POST /prompt, not before it
    server = backend_server_factory(comfyui_double, deadline_s=SHORT_DEADLINE_S)
    warm_up(server)
    comfyui_double.step_delay = 0.1  # about four seconds, if it ran
    comfyui_double.freeze_next_prompt(SHORT_DEADLINE_S + 2.0)  # ComfyUI freezes on POST /prompt
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "late", "seed": 3, **SMALL,
                                                   "steps": 30}, timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 504
    message = error_of(r)["message"]
    assert "cancelled in ComfyUI" not in message  # it could not be confirmed: not claimed
    record = records(server.data_dir)[r.headers["x-request-id"]]
    assert record["status"] == "failed" and record["prompt_id"]
    # ComfyUI thaws and queues the job the backend already gave up on ...
    _wait(lambda: comfyui_double.jobs, "the late POST /prompt is queued")
    job = comfyui_double.jobs[0]
    assert job.prompt_id == record["prompt_id"]  # the backend chose the id, so it knows it
    # ... and the backend takes it off the queue or interrupts it
    _wait(lambda: job not in comfyui_double.running_jobs and job not in comfyui_double.pending,
          "the backend removes the late job")
    time.sleep(0.3)
    assert job.status in ("pending", "interrupted"), job.status
    assert not list(comfyui_double.output_dir.rglob("*.png"))  # no image was made


def test_health_answers_quickly_while_comfyui_is_frozen(backend_server_factory, comfyui_double):
    server = backend_server_factory(comfyui_double)
    with httpx.Client(base_url=server.url, timeout=2.0) as client:  # the promise: under 2 s
        assert client.get("/health").json()["comfyui"]["reachable"] is True
        comfyui_double.freeze(4.0)
        time.sleep(HEALTH_SHARED_S)  # past the window in which callers share the last probe
        health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["comfyui"]["reachable"] is False
    assert "did not answer within" in health["comfyui"]["error"]
