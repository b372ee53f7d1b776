"""`ryla jobs` list, show, watch, cancel and fetch against ryla-backend over the double."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Run
from tests.cli.processes import until
from ui.client import RylaClient
from workflows.request_models import FluxSchnellRequest

SMALL = ("--width", "256", "--height", "256", "--steps", "2")


def generated(ryla: Callable[..., Run], url: str, prompt: str) -> tuple[str, Path]:
    result = ryla("flux", "--backend-url", url, "--prompt", prompt, *SMALL, "--json")
    assert result.code == 0, result.err
    return result.json()["request_id"], Path(result.json()["files"][0])


def test_list_shows_jobs_newest_first_and_filters(ryla: Callable[..., Run], backend_server) -> None:
    first, _ = generated(ryla, backend_server.url, "first")
    second, _ = generated(ryla, backend_server.url, "second")
    listed = ryla("jobs", "--backend-url", backend_server.url, "--json")
    assert listed.code == 0, listed.err
    assert [job["id"] for job in listed.json()] == [second, first]
    limited = ryla("jobs", "list", "--limit", "1", "--backend-url", backend_server.url, "--json")
    assert [job["id"] for job in limited.json()] == [second]
    assert ryla("jobs", "--status", "failed", "--backend-url", backend_server.url, "--json").json() == []
    table = ryla("jobs", "--backend-url", backend_server.url)
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split() == ["id", "route", "status", "progress", "outputs", "created_at"]
    assert [row.split()[:5] for row in rows] == [[second, "/flux", "succeeded", "100%", "1"],
                                                 [first, "/flux", "succeeded", "100%", "1"]]
    none = ryla("jobs", "--status", "running", "--backend-url", backend_server.url)
    assert (none.code, none.out.strip()) == (0, "no running jobs")


def test_show_and_fetch_a_finished_job(ryla: Callable[..., Run], backend_server_session,
                                       tmp_path: Path) -> None:
    job_id, saved = generated(ryla, backend_server_session.url, "a lighthouse")
    shown = ryla("jobs", "show", job_id, "--backend-url", backend_server_session.url)
    assert shown.code == 0, shown.err
    assert "status    succeeded" in shown.out and f"`ryla jobs fetch {job_id}`" in shown.out
    as_json = ryla("jobs", "show", job_id, "--backend-url", backend_server_session.url, "--json")
    assert (as_json.json()["id"], as_json.json()["route"]) == (job_id, "/flux")
    target = tmp_path / "again.jpg"
    fetched = ryla("jobs", "fetch", job_id, "--output", str(target),
                   "--backend-url", backend_server_session.url, "--json")
    assert fetched.code == 0, fetched.err
    assert fetched.json()["files"] == [str(target)]
    assert target.read_bytes() == saved.read_bytes()
    default = ryla("jobs", "fetch", job_id, "--backend-url", backend_server_session.url)
    assert default.code == 0 and default.out.startswith(f"saved outputs/job-{job_id[:8]}-")


def test_unknown_job_and_bad_usage(ryla: Callable[..., Run], backend_server_session) -> None:
    url = backend_server_session.url
    for action in ("show", "watch", "cancel", "fetch"):
        result = ryla("jobs", action, "0" * 32, "--backend-url", url)
        assert result.code == 1, action
        assert "no job" in result.err and "`ryla jobs` lists them" in result.err
        assert "/jobs" not in result.err  # commands, not routes
    assert ryla("jobs", "--status", "lost", "--backend-url", url).code == 2
    assert ryla("jobs", "show", "--backend-url", url).code == 2  # no ID
    assert ryla("jobs", "--limit", "0", "--backend-url", url).code == 2


def test_cancel_of_an_ended_job_is_refused(ryla: Callable[..., Run], backend_server_session) -> None:
    job_id, _ = generated(ryla, backend_server_session.url, "done already")
    result = ryla("jobs", "cancel", job_id, "--backend-url", backend_server_session.url)
    assert result.code == 1
    assert "has already ended (succeeded)" in result.err


def test_fetch_of_a_failed_job_says_why_not(ryla: Callable[..., Run], backend_server) -> None:
    backend_server.double.fail_next("out of memory")
    failed = ryla("flux", "--backend-url", backend_server.url, "--prompt", "x", *SMALL)
    assert failed.code == 1
    (job,) = ryla("jobs", "--backend-url", backend_server.url, "--json").json()
    result = ryla("jobs", "fetch", job["id"], "--backend-url", backend_server.url)
    assert result.code == 1 and f"job {job['id']} is failed; it has no outputs" in result.err
    watched = ryla("jobs", "watch", job["id"], "--backend-url", backend_server.url)
    assert watched.code == 1 and "out of memory" in watched.out


def release_when(condition: Callable[[], bool], release: threading.Event, what: str) -> threading.Thread:
    def wait_then_release() -> None:
        try:
            until(condition, what)
        finally:
            release.set()

    thread = threading.Thread(target=wait_then_release, daemon=True)
    thread.start()
    return thread


def test_watch_follows_a_running_job_to_its_end(ryla: Callable[..., Run], backend_server,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    double = backend_server.double
    release = double.hold_next("VAEDecode")
    heard: list[str] = []
    follow = RylaClient.wait

    def recording_wait(self: RylaClient, job_id: str, on_event: Any = None) -> dict:
        def record(event: str, data: Any) -> None:
            heard.append(event if event != "status" else data["status"])
            if on_event is not None:
                on_event(event, data)
        return follow(self, job_id, on_event=record)

    monkeypatch.setattr(RylaClient, "wait", recording_wait)
    with RylaClient(backend_server.url) as client:
        job = client.submit(FluxSchnellRequest(prompt="slow", width=256, height=256))
        until(lambda: client.job(job["id"])["status"] == "running", "the job runs")
        # released once `watch` has heard the held job running
        helper = release_when(lambda: "running" in heard, release, "watch hears the job run")
        watched = ryla("jobs", "watch", job["id"], "--backend-url", backend_server.url, "--json")
        helper.join()
    assert watched.code == 0, watched.err
    assert (watched.json()["status"], len(watched.json()["outputs"])) == ("succeeded", 1)
    assert heard[0] == "running" and heard[-1] == "done"


def test_cancel_waits_for_comfyui_to_confirm(ryla: Callable[..., Run], backend_server) -> None:
    double = backend_server.double
    release = double.hold_next("VAEDecode")
    with RylaClient(backend_server.url) as client:
        job = client.submit(FluxSchnellRequest(prompt="slow", width=256, height=256))
        until(lambda: client.job(job["id"])["status"] == "running", "the job runs")
        helper = release_when(lambda: double.jobs[-1].interrupt.is_set(), release,
                              "ComfyUI is asked to stop the job")
        result = ryla("jobs", "cancel", job["id"], "--backend-url", backend_server.url)
        helper.join()
        assert result.code == 0, result.err
        assert result.out.strip() == f"job {job['id']}: cancelled"
        assert client.job(job["id"])["status"] == "cancelled"
