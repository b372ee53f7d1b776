"""The jobs API (SPEC "Jobs"): async submit, the job object, its events, outputs, cancel,
the list, and jobs outliving their caller and the backend process.

Most tests drive the jobs layer with a ScriptedRunner (tests/backend/scripted_runner.py),
which holds each job until the test lets it go: no race with the wall clock. The tests
marked "double" run the whole stack against the ComfyUI double instead."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sseclient import SSEClient

from tests.backend.helpers import SMALL, error_of, job_with_seed, output_of
from tests.backend.scripted_runner import OUTPUT_PNG, PREVIEW_JPEG, PROGRESS, ScriptedRunner
from ui.client import RylaClient
from workflows.request_models import FluxDevRequest

ASYNC = {"Prefer": "respond-async"}
SETTLE_S = 30.0
JOB_KEYS = {"id", "route", "status", "created_at", "started_at", "ended_at", "seed", "progress",
            "outputs", "error"}
PROGRESS_KEYS = {"fraction", "step", "steps", "images_done", "images_total"}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = SETTLE_S) -> Any:
    give_up = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < give_up, f"timed out waiting until {what}"
        time.sleep(0.02)
    return value


def wait_status(url: str, job_id: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = httpx.get(f"{url}/jobs/{job_id}", timeout=10).json()
        return job if job["status"] in statuses else None

    return wait_for(reached, f"job {job_id} is {' or '.join(statuses)}")


def submit(url: str, seed: int = 7, headers: dict[str, str] | None = None) -> httpx.Response:
    r = httpx.post(f"{url}/flux-dev", json={"prompt": "a job", "seed": seed, **SMALL},
                   headers=headers or ASYNC, timeout=30)
    assert r.status_code == 202, r.text
    return r


def sse(url: str, headers: dict[str, str] | None = None) -> Iterator[Any]:
    """The raw events of a stream (with their ids), parsed by sseclient-py."""
    with httpx.stream("GET", url, headers=headers or {}, timeout=SETTLE_S) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield from SSEClient(response.iter_bytes()).events()


@pytest.fixture
def scripted(backend_server_factory) -> tuple[Any, ScriptedRunner]:
    runner = ScriptedRunner()
    return backend_server_factory(runner=runner), runner


def test_async_submit_answers_202_with_location_and_the_job(scripted):
    server, runner = scripted
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "a job", "seed": 7, **SMALL},
                   headers={"Prefer": "wait=10, Respond-Async"}, timeout=30)  # RFC 7240 list
    assert r.status_code == 202, r.text
    job = r.json()
    assert set(job) == JOB_KEYS and set(job["progress"]) == PROGRESS_KEYS
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert r.headers["preference-applied"] == "respond-async"
    assert r.headers["x-request-id"] == job["id"]
    assert len(job["id"]) == 32 and job["route"] == "/flux-dev" and job["seed"] == 7
    assert job["status"] in ("queued", "running") and job["outputs"] == []
    assert job["error"] is None and job["ended_at"] is None
    got = httpx.get(f"{server.url}{r.headers['location']}", timeout=10).json()
    assert got["id"] == job["id"]
    wait_for(runner.started.is_set, "the runner has the job")
    running = wait_status(server.url, job["id"], "running")
    assert running["started_at"] is not None
    assert running["progress"]["fraction"] == PROGRESS.fraction
    assert running["progress"]["step"] == 1 and running["progress"]["steps"] == 2
    runner.release.set()
    done = wait_status(server.url, job["id"], "succeeded")
    assert done["outputs"] == [f"/jobs/{job['id']}/outputs/0"]
    assert done["progress"]["fraction"] == 1.0 and done["progress"]["images_done"] == 1
    assert done["ended_at"] >= done["started_at"] >= done["created_at"]  # ISO 8601, UTC


def test_outputs_are_the_bytes_with_the_sync_routes_media_type(scripted):
    server, runner = scripted
    runner.release.set()
    job_id = submit(server.url).json()["id"]
    job = wait_status(server.url, job_id, "succeeded")
    out = httpx.get(f"{server.url}{job['outputs'][0]}", timeout=10)
    assert out.status_code == 200
    assert out.headers["content-type"] == "image/png"
    assert out.content == OUTPUT_PNG
    for missing in ("1", "x", "-1"):
        r = httpx.get(f"{server.url}/jobs/{job_id}/outputs/{missing}", timeout=10)
        assert r.status_code == 404 and error_of(r)["code"] == "not_found", missing


def test_events_come_in_order_and_end_with_done(scripted):
    server, runner = scripted
    job_id = submit(server.url).json()["id"]
    wait_for(runner.started.is_set, "the runner has the job")
    seen = []
    for event in sse(f"{server.url}/jobs/{job_id}/events"):
        seen.append(event)
        if event.event == "preview":
            runner.release.set()  # the job ends only after the stream showed its preview
    ids = [int(e.id) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    kinds = [e.event for e in seen]
    assert kinds[0] == "status" and kinds[-1] == "done" and "progress" in kinds
    statuses = [httpx.Response(200, content=e.data).json()["status"] for e in seen
                if e.event == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    preview = next(httpx.Response(200, content=e.data).json() for e in seen
                   if e.event == "preview")
    assert preview["step"] == 1 and base64.b64decode(preview["image"]) == PREVIEW_JPEG
    first_progress = next(httpx.Response(200, content=e.data).json() for e in seen
                          if e.event == "progress" and "0.5" in e.data)
    assert set(first_progress) == PROGRESS_KEYS and first_progress["steps"] == 2
    done = httpx.Response(200, content=seen[-1].data).json()
    assert done["id"] == job_id and done["status"] == "succeeded" and len(done["outputs"]) == 1


def test_late_subscriber_gets_the_current_state_and_last_event_id_resumes(scripted):
    server, runner = scripted
    runner.release.set()
    job_id = submit(server.url).json()["id"]
    wait_status(server.url, job_id, "succeeded")
    events_url = f"{server.url}/jobs/{job_id}/events"
    late = list(sse(events_url))
    assert {e.event for e in late[:-1]} == {"status", "progress", "preview"}
    assert late[-1].event == "done"
    state = {e.event: httpx.Response(200, content=e.data).json() for e in late}
    assert state["status"] == {"status": "succeeded"}
    assert state["progress"]["fraction"] == 1.0
    assert base64.b64decode(state["preview"]["image"]) == PREVIEW_JPEG
    # resumed after the first event: exactly the ones after it
    resumed = list(sse(events_url, {"Last-Event-ID": late[0].id}))
    assert [(e.id, e.event) for e in resumed] == [(e.id, e.event) for e in late[1:]]
    assert list(sse(events_url, {"Last-Event-ID": late[-1].id})) == []  # saw it all
    r = httpx.get(events_url, headers={"Last-Event-ID": "yesterday"}, timeout=10)
    assert r.status_code == 400 and error_of(r)["field"] == "Last-Event-ID"


def test_delete_cancels_once_comfyui_confirms_and_409_after_the_end(scripted):
    server, runner = scripted
    job_id = submit(server.url).json()["id"]
    wait_for(runner.started.is_set, "the runner has the job")
    r = httpx.delete(f"{server.url}/jobs/{job_id}", timeout=10)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == job_id and r.json()["status"] in ("queued", "running")
    job = wait_status(server.url, job_id, "cancelled", "succeeded", "failed")
    assert job["status"] == "cancelled" and runner.cancel_seen.is_set()
    assert job["error"]["code"] == "cancelled" and job["outputs"] == []
    again = httpx.delete(f"{server.url}/jobs/{job_id}", timeout=10)
    assert again.status_code == 409
    assert error_of(again)["code"] == "job_ended" and "cancelled" in error_of(again)["message"]
    assert httpx.get(f"{server.url}/jobs/{job_id}/outputs/0", timeout=10).status_code == 404


def test_a_job_comfyui_finished_anyway_is_succeeded_with_its_outputs(scripted):
    server, runner = scripted
    runner.finish_when_cancelled = True  # a node ComfyUI cannot interrupt
    job_id = submit(server.url).json()["id"]
    wait_for(runner.started.is_set, "the runner has the job")
    assert httpx.delete(f"{server.url}/jobs/{job_id}", timeout=10).status_code == 202
    job = wait_status(server.url, job_id, "cancelled", "succeeded", "failed")
    assert job["status"] == "succeeded" and job["error"] is None
    assert httpx.get(f"{server.url}{job['outputs'][0]}", timeout=10).content == OUTPUT_PNG


def test_a_stop_comfyui_could_not_confirm_is_not_called_cancelled(scripted):
    server, runner = scripted
    runner.cancel_confirmed = False
    job_id = submit(server.url).json()["id"]
    wait_for(runner.started.is_set, "the runner has the job")
    assert httpx.delete(f"{server.url}/jobs/{job_id}", timeout=10).status_code == 202
    job = wait_status(server.url, job_id, "cancelled", "succeeded", "failed")
    assert job["status"] == "failed" and job["error"]["code"] == "cancel_unconfirmed"


def test_a_sync_caller_of_a_job_cancelled_through_delete_gets_409(scripted):
    server, runner = scripted
    answer: dict[str, httpx.Response] = {}

    def call() -> None:
        answer["r"] = httpx.post(f"{server.url}/flux-dev", json={"prompt": "sync", **SMALL},
                                 timeout=SETTLE_S)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(runner.started.is_set, "the runner has the job")
    (job,) = httpx.get(f"{server.url}/jobs", timeout=10).json()["jobs"]
    assert httpx.delete(f"{server.url}/jobs/{job['id']}", timeout=10).status_code == 202
    caller.join(SETTLE_S)
    r = answer["r"]
    assert r.status_code == 409 and error_of(r)["code"] == "cancelled"
    assert r.headers["x-request-id"] == job["id"]


def test_a_sync_caller_past_the_deadline_hears_where_the_final_status_will_be(
        backend_server_factory):
    runner = ScriptedRunner()  # a ComfyUI that neither finishes nor confirms a stop
    server = backend_server_factory(runner=runner, deadline_s=1.0)
    r = httpx.post(f"{server.url}/flux-dev", json={"prompt": "slow", **SMALL}, timeout=SETTLE_S)
    assert r.status_code == 504
    error = error_of(r)
    job_id = r.headers["x-request-id"]
    assert error["code"] == "deadline_exceeded"
    assert "not confirmed" in error["message"] and f"/jobs/{job_id}" in error["message"]
    assert "cancelled" not in error["message"]  # nothing said before ComfyUI says it
    assert httpx.get(f"{server.url}/jobs/{job_id}", timeout=10).json()["status"] == "running"
    runner.release.set()  # ComfyUI finishes it after all: the outputs are kept
    job = wait_status(server.url, job_id, "succeeded", "failed", "cancelled")
    assert job["status"] == "succeeded"
    assert httpx.get(f"{server.url}{job['outputs'][0]}", timeout=10).content == OUTPUT_PNG


def test_a_caller_that_goes_away_loses_nothing(scripted):
    server, runner = scripted
    with pytest.raises(httpx.ReadTimeout):  # the caller gives up while the job holds
        httpx.post(f"{server.url}/flux-dev", json={"prompt": "impatient", **SMALL},
                   timeout=httpx.Timeout(10, read=0.5))
    wait_for(runner.started.is_set, "the runner has the job")
    runner.release.set()
    (job,) = wait_for(lambda: httpx.get(f"{server.url}/jobs?status=succeeded",
                                        timeout=10).json()["jobs"], "the job succeeds")
    assert httpx.get(f"{server.url}{job['outputs'][0]}", timeout=10).content == OUTPUT_PNG


def test_jobs_list_is_newest_first_filtered_limited_and_checked(backend_server_factory):
    server = backend_server_factory(runner=ScriptedRunner(hold=False))
    ids = []
    for seed in (1, 2, 3):
        ids.append(submit(server.url, seed).json()["id"])
        wait_status(server.url, ids[-1], "succeeded")
    listed = httpx.get(f"{server.url}/jobs", timeout=10).json()["jobs"]
    assert [j["id"] for j in listed] == ids[::-1]
    assert all(set(j) == JOB_KEYS for j in listed)
    two = httpx.get(f"{server.url}/jobs", params={"limit": "2"}, timeout=10).json()["jobs"]
    assert [j["id"] for j in two] == ids[:0:-1]
    ok = httpx.get(f"{server.url}/jobs", params={"status": "succeeded"}, timeout=10).json()
    assert len(ok["jobs"]) == 3
    assert httpx.get(f"{server.url}/jobs", params={"status": "failed"},
                     timeout=10).json() == {"jobs": []}
    for params, field in [({"status": "done"}, "status"), ({"limit": "0"}, "limit"),
                          ({"limit": "ten"}, "limit"), ({"limit": "100000"}, "limit")]:
        r = httpx.get(f"{server.url}/jobs", params=params, timeout=10)
        assert r.status_code == 400, params
        assert error_of(r)["field"] == field and field in error_of(r)["message"]


def test_an_unknown_job_is_404_on_every_job_route(backend_server_factory):
    server = backend_server_factory(runner=ScriptedRunner(hold=False))
    for job_id in ("0" * 32, "..%2F..%2Fetc", "not-a-job"):
        for method, path in [("GET", ""), ("GET", "/events"), ("GET", "/outputs/0"),
                             ("DELETE", "")]:
            r = httpx.request(method, f"{server.url}/jobs/{job_id}{path}", timeout=10)
            assert r.status_code == 404, (method, job_id, path)
            assert error_of(r)["code"] == "not_found"


def test_the_job_routes_need_the_token(backend_server_factory):
    server = backend_server_factory(runner=ScriptedRunner(hold=False), api_token="s3cret")
    for method, path in [("GET", "/jobs"), ("GET", "/jobs/" + "0" * 32),
                         ("GET", "/jobs/" + "0" * 32 + "/events"), ("DELETE", "/jobs/" + "0" * 32),
                         ("GET", "/jobs/" + "0" * 32 + "/outputs/0")]:
        r = httpx.request(method, f"{server.url}{path}", timeout=10)
        assert r.status_code == 401, (method, path)
    assert RylaClient(server.url, token="s3cret").jobs() == []  # the client sends it


# --- the whole stack, against the ComfyUI double --------------------------------------

def test_sync_route_answers_as_before_and_its_job_is_listed(backend_server):
    r = httpx.post(f"{backend_server.url}/flux-dev", json={"prompt": "sync", "seed": 21, **SMALL},
                   timeout=30)
    assert r.status_code == 200, r.text
    job_id = r.headers["x-request-id"]
    job = httpx.get(f"{backend_server.url}/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded" and job["seed"] == 21 and job["route"] == "/flux-dev"
    listed = httpx.get(f"{backend_server.url}/jobs", timeout=10).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    out = httpx.get(f"{backend_server.url}{job['outputs'][0]}", timeout=10)
    assert out.content == r.content and out.headers["content-type"] == r.headers["content-type"]


def test_jobs_and_outputs_survive_a_backend_restart(backend_server_factory, comfyui_double):
    first = backend_server_factory(comfyui_double)
    client = RylaClient(first.url)
    job = client.submit(FluxDevRequest(prompt="kept", seed=31, **SMALL))
    ended = client.wait(job["id"])
    assert ended["status"] == "succeeded"
    image = client.output(job["id"], 0)
    assert image == output_of(comfyui_double, job_with_seed(comfyui_double, 31))
    first.stop()
    second = backend_server_factory(comfyui_double, data_dir=first.data_dir)
    again = RylaClient(second.url)
    assert again.job(job["id"]) == ended
    assert [j["id"] for j in again.jobs()] == [job["id"]]
    assert again.output(job["id"], 0) == image
    assert again.wait(job["id"]) == ended  # its events end with the same done


def test_async_job_on_the_double_reports_rising_progress(backend_server):
    """Needs ComfyUIClient's on_event (jobscomfy): the double's progress messages."""
    double = backend_server.double
    client = RylaClient(backend_server.url)
    double.step_delay = 0.05  # each step a separate moment, for the stream to show
    double.hang_next()  # a first job holds ComfyUI, so the watched one waits in its queue
    client.submit(FluxDevRequest(prompt="blocker", seed=40, **SMALL))
    wait_for(lambda: double.running is not None, "ComfyUI runs the first job")
    job = client.submit(FluxDevRequest(prompt="watched", seed=41, **{**SMALL, "steps": 6}))
    seen: list[tuple[str, Any]] = []
    subscribed = threading.Event()
    ended: dict[str, Any] = {}

    def on_event(event: str, data: Any) -> None:
        seen.append((event, data))
        subscribed.set()

    watcher = threading.Thread(target=lambda: ended.update(client.wait(job["id"], on_event)))
    watcher.start()
    wait_for(subscribed.is_set, "the watcher hears the queued job")
    double.interrupt()  # the first job stops; the watched one runs
    watcher.join(SETTLE_S)
    assert ended["status"] == "succeeded"
    statuses = [data["status"] for event, data in seen if event == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    fractions = [data["fraction"] for event, data in seen if event == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(0 < f < 1 for f in fractions)
    assert any(data.get("steps") == 6 for event, data in seen if event == "progress")


def test_delete_on_the_double_cancels_and_leaves_no_output(backend_server):
    """Needs ComfyUIClient's cancel (jobscomfy): ComfyUI confirms the interrupt."""
    double = backend_server.double
    double.hang_next()
    client = RylaClient(backend_server.url)
    job = client.submit(FluxDevRequest(prompt="stopped", seed=51, **SMALL))
    wait_for(lambda: double.running is not None, "ComfyUI runs the job")
    assert client.cancel(job["id"])["status"] in ("queued", "running")
    ended = client.wait(job["id"])
    assert ended["status"] == "cancelled" and ended["outputs"] == []
    assert job_with_seed(double, 51).status == "interrupted"
    assert not list(double.output_dir.rglob("*.png"))


def test_openapi_documents_the_202_the_job_and_the_event_stream(backend_server_factory):
    server = backend_server_factory(runner=ScriptedRunner(hold=False))
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert set(schema["components"]["schemas"]["Job"]["required"]) == JOB_KEYS
    flux = schema["paths"]["/flux-dev"]["post"]
    assert flux["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Job")
    assert any(p["name"] == "Prefer" and p["in"] == "header" for p in flux["parameters"])
    events = schema["paths"]["/jobs/{job_id}/events"]["get"]["responses"]["200"]
    assert set(events["content"]) == {"text/event-stream"}
    assert "409" in schema["paths"]["/jobs/{job_id}"]["delete"]["responses"]


def test_job_records_are_parsed_again_only_when_their_file_changes(tmp_path, monkeypatch) -> None:
    import json as json_module

    from backend.records import JobRecords

    records = JobRecords(tmp_path)
    for n in range(3):
        records.write({"request_id": f"job{n}", "status": "succeeded", "created_at": n})
    assert {r["request_id"] for r in records.all()} == {"job0", "job1", "job2"}
    parsed: list[str] = []
    real_loads = json_module.loads
    monkeypatch.setattr("backend.records.json.loads",
                        lambda text: parsed.append(text) or real_loads(text))
    assert len(records.all()) == 3 and parsed == []  # nothing changed: nothing parsed
    records.write({"request_id": "job1", "status": "failed", "created_at": 1, "note": "longer"})
    assert {r["request_id"]: r["status"] for r in records.all()}["job1"] == "failed"
    assert len(parsed) == 1  # only the file that changed
    records.path("job2").unlink()
    assert {r["request_id"] for r in records.all()} == {"job0", "job1"}
