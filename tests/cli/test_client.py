"""RylaClient against a scripted server: decoding, routes, errors and the retry rules."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.builders import free_port
from tests.cli.modal_like_server import ModalLikeServer
from tests.cli.stub_server import Answer, StubServer
from ui.client import (
    BackendError,
    BackendUnreachable,
    GenerationResult,
    RylaClient,
    route_for,
)
from workflows.registry import ROUTES
from workflows.request_models import (
    CharacterRequest,
    FluxDevRequest,
    FluxSchnellRequest,
)


def png_bytes(colour: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def ok_answer(images: list[bytes], seed: int = 42, request_id: str = "req-1") -> Answer:
    return Answer.json({"images": [base64.b64encode(i).decode() for i in images], "seed": seed,
                        "timings": {"total_ms": 12.5}, "request_id": request_id})


class FakeClock:
    """time.monotonic and time.sleep for a client: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


def test_generate_posts_to_the_models_route_and_decodes_images(stub: StubServer) -> None:
    image = png_bytes()
    stub.answers.append(ok_answer([image, png_bytes((1, 2, 3))], seed=7, request_id="abc"))
    client = RylaClient(stub.url, token="s3cret")
    result = client.generate(FluxSchnellRequest(prompt="a cat", width=512, height=512))

    assert isinstance(result, GenerationResult)
    assert result.images[0] == image and len(result.images) == 2
    assert result.content_type == "image/png"
    assert (result.seed, result.request_id) == (7, "abc")
    assert result.timings == {"total_ms": 12.5}
    seen = stub.seen[0]
    assert (seen.method, seen.path) == ("POST", "/flux")
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Authorization"] == "Bearer s3cret"
    body = json.loads(seen.body)
    assert body["prompt"] == "a cat" and body["width"] == 512
    assert "seed" not in body  # absent means random on the backend


def test_every_request_model_has_its_own_route() -> None:
    assert {route_for(route.request_model.model_construct()) for route in ROUTES.values()} == set(ROUTES)
    with pytest.raises(TypeError, match="has no route"):
        route_for(FluxDevRequest.__base__.model_construct())  # GenerationRequest itself


def test_no_authorization_header_without_a_token(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RYLA_API_TOKEN", raising=False)
    stub.answers.append(Answer.json({"status": "ok"}))
    RylaClient(stub.url).health()
    assert "Authorization" not in stub.seen[0].headers


def test_environment_gives_url_and_token(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYLA_BACKEND_URL", stub.url + "/")
    monkeypatch.setenv("RYLA_API_TOKEN", "from-env")
    stub.answers.append(Answer.json({"loras": [{"id": "anna"}]}))
    client = RylaClient()
    assert client.loras() == [{"id": "anna"}]
    assert stub.seen[0].headers["Authorization"] == "Bearer from-env"
    assert "from-env" not in repr(client)


def test_backend_error_carries_code_message_and_field(stub: StubServer) -> None:
    stub.answers.append(Answer.json({"error": {"code": "lora_not_found", "message": "no LoRA 'zed'",
                                               "field": "lora_id"}}, status=404))
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url, token="tok-123").generate(
            FluxDevRequest(prompt="x"))
    err = caught.value
    assert (err.status, err.code, err.message, err.field) == (404, "lora_not_found", "no LoRA 'zed'", "lora_id")
    assert "zed" in str(err) and "tok-123" not in str(err)


def test_non_json_error_keeps_status_and_text(stub: StubServer) -> None:
    stub.answers.append(Answer(502, b"Bad Gateway from a proxy", {"Content-Type": "text/plain"}))
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url).health()
    assert caught.value.status == 502
    assert caught.value.code == "http_502"
    assert "proxy" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_not_retried(stub: StubServer, status: int) -> None:
    # The job may have run: sending it again could make a second image (and bill twice).
    stub.answers += [Answer.json({"error": {"code": "x", "message": "boom"}}, status=status),
                     ok_answer([png_bytes()])]
    fake = FakeClock()
    with pytest.raises(BackendError):
        RylaClient(stub.url, sleep=fake.sleep, clock=fake.clock).generate(FluxDevRequest(prompt="x"))
    assert len(stub.seen) == 1 and fake.sleeps == []


def test_503_with_retry_after_is_retried_after_that_wait(stub: StubServer) -> None:
    busy = Answer.json({"error": {"code": "comfyui_unavailable", "message": "busy"}}, 503, **{"Retry-After": "3"})
    stub.answers += [busy, ok_answer([png_bytes()], seed=5)]
    fake = FakeClock()
    result = RylaClient(stub.url, retry_budget=10, sleep=fake.sleep, clock=fake.clock).generate(
        FluxDevRequest(prompt="x"))
    assert result.seed == 5
    assert len(stub.seen) == 2
    assert fake.sleeps == [3.0]


def test_503_without_retry_after_is_not_retried(stub: StubServer) -> None:
    stub.answers += [Answer.json({"error": {"code": "model_not_installed", "message": "flux1-dev missing"}}, 503),
                     ok_answer([png_bytes()])]
    fake = FakeClock()
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url, sleep=fake.sleep, clock=fake.clock).generate(FluxDevRequest(prompt="x"))
    assert caught.value.code == "model_not_installed"
    assert len(stub.seen) == 1


def test_retry_after_past_the_budget_gives_up_at_once(stub: StubServer) -> None:
    busy = Answer.json({"error": {"code": "comfyui_unavailable", "message": "busy"}}, 503, **{"Retry-After": "2"})
    stub.answers += [busy, busy, busy, ok_answer([png_bytes()])]
    fake = FakeClock()
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url, retry_budget=5, sleep=fake.sleep, clock=fake.clock).generate(
            FluxDevRequest(prompt="x"))
    assert caught.value.status == 503
    # 2 s + 2 s fit in 5 s, a third wait would not: three requests, two waits.
    assert fake.sleeps == [2.0, 2.0]
    assert len(stub.seen) == 3


def test_refused_connection_is_retried_within_the_budget() -> None:
    port = free_port()
    fake = FakeClock()
    client = RylaClient(f"http://127.0.0.1:{port}", retry_budget=4, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(BackendUnreachable) as caught:
        client.health()
    assert len(fake.sleeps) >= 3  # backed off and tried again
    assert sum(fake.sleeps) <= 4 + 1e-9
    assert caught.value.status == 0 and caught.value.code == "backend_unreachable"
    assert str(port) in caught.value.message and "ryla-backend" in caught.value.message


def test_refused_connection_succeeds_once_the_backend_is_up() -> None:
    port = free_port()
    started: list[StubServer] = []

    def sleep_then_start(seconds: float) -> None:
        if not started:
            server = StubServer(port)
            server.answers.append(ok_answer([png_bytes()], seed=11))
            started.append(server)

    try:
        client = RylaClient(f"http://127.0.0.1:{port}", retry_budget=30, sleep=sleep_then_start)
        result = client.generate(FluxDevRequest(prompt="x"))
        assert result.seed == 11
        assert len(started[0].seen) == 1  # the request reached the server exactly once
    finally:
        for server in started:
            server.close()


def test_zero_budget_means_one_try() -> None:
    fake = FakeClock()
    client = RylaClient(f"http://127.0.0.1:{free_port()}", retry_budget=0, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(BackendUnreachable):
        client.models()
    assert fake.sleeps == []


def test_raw_image_answer_uses_the_spec_headers(stub: StubServer) -> None:
    image = png_bytes()
    stub.answers.append(Answer(200, image, {"Content-Type": "image/png", "X-Seed": "99",
                                            "X-Request-Id": "r9", "X-Generation-Time-Ms": "321"}))
    result = RylaClient(stub.url).generate(FluxDevRequest(prompt="x"))
    assert (result.images, result.content_type, result.seed, result.request_id) == ([image], "image/png", 99, "r9")
    assert result.timings["generation_ms"] == 321.0


def test_answer_without_images_is_an_error(stub: StubServer) -> None:
    stub.answers.append(Answer.json({"images": [], "seed": 1}))
    with pytest.raises(BackendError, match="no images"):
        RylaClient(stub.url).generate(FluxDevRequest(prompt="x"))


def test_generate_many_keeps_order_and_failures_in_place(stub: StubServer) -> None:
    # One thread: the stub answers in arrival order, so the third request gets the error.
    for i in range(4):
        stub.answers.append(ok_answer([png_bytes((i * 40, 0, 0))], seed=i))
    stub.answers.insert(2, Answer.json({"error": {"code": "comfyui_job_failed", "message": "OOM"}}, 502))
    requests_ = [FluxDevRequest(prompt=f"p{i}") for i in range(5)]
    outcomes = RylaClient(stub.url).generate_many(requests_, concurrency=1)
    assert [type(o).__name__ for o in outcomes] == [
        "GenerationResult", "GenerationResult", "BackendError", "GenerationResult", "GenerationResult"]
    assert [json.loads(s.body)["prompt"] for s in stub.seen] == [f"p{i}" for i in range(5)]
    assert outcomes[2].message == "OOM"  # type: ignore[union-attr]


def test_generate_many_runs_concurrently(stub: StubServer) -> None:
    for i in range(6):
        stub.answers.append(ok_answer([png_bytes()], seed=i))
    requests_ = [CharacterRequest(prompt=f"p{i}", reference_image="aGk=") for i in range(6)]
    outcomes = RylaClient(stub.url).generate_many(requests_, concurrency=3)
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    assert sorted(o.seed for o in outcomes) == list(range(6))  # type: ignore[union-attr]
    assert {s.path for s in stub.seen} == {"/flux-instantid"}


# -- long jobs on Modal: 303 to a result URL ---------------------------------------------


@pytest.fixture
def modal_like() -> Iterator[Callable[..., ModalLikeServer]]:
    servers: list[ModalLikeServer] = []

    def make(**kwargs: Any) -> ModalLikeServer:
        servers.append(ModalLikeServer(ok_answer([png_bytes()], seed=9), **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("location", ["absolute", "relative"])
def test_a_long_job_is_fetched_from_modals_result_url_with_the_token(
        modal_like: Callable[..., ModalLikeServer], location: str) -> None:
    # the job outlasts two 150 s cuts (scaled down): POST -> 303 -> GET -> 303 -> GET -> 200
    server = modal_like(job_s=0.5, cut_s=0.2, location=location)
    result = RylaClient(server.url, token="t0k").generate(FluxDevRequest(prompt="a slow one"))
    assert result.seed == 9 and result.images == [png_bytes()]
    assert [h.method for h in server.hops] == ["POST", "GET", "GET"]
    assert json.loads(server.hops[0].body)["prompt"] == "a slow one"
    assert server.hops[1].body == b"" and server.hops[1].path == server.hops[2].path
    assert "?__modal_function_call_id=fc-1" in server.hops[1].path
    assert server.hops[1].path.startswith("/flux-dev?")
    # the token goes with every hop: the result URL is the backend's own host
    assert {h.authorization for h in server.hops} == {"Bearer t0k"}


def test_a_redirect_to_another_host_is_not_followed_with_the_token(
        modal_like: Callable[..., ModalLikeServer]) -> None:
    elsewhere = StubServer()
    try:
        server = modal_like(job_s=5.0, cut_s=0.05, location=elsewhere.url)
        with pytest.raises(BackendError) as caught:
            RylaClient(server.url, token="t0k").generate(FluxDevRequest(prompt="x"))
        assert caught.value.code == "redirect_to_other_host"
        assert urlsplit(elsewhere.url).netloc in caught.value.message
        assert elsewhere.seen == []  # nothing, and so no token, went to the other host
    finally:
        elsewhere.close()


def test_following_results_stays_within_the_calls_timeout(
        modal_like: Callable[..., ModalLikeServer]) -> None:
    server = modal_like(job_s=30.0, cut_s=0.05)
    with pytest.raises(BackendUnreachable) as caught:
        RylaClient(server.url, timeout=0.3).generate(FluxDevRequest(prompt="x"))
    assert "may still be running" in caught.value.message
    assert "__modal_function_call_id=fc-1" in caught.value.message  # where to look later
    assert 2 <= len(server.hops) < 20


def test_other_redirects_are_reported_not_followed(stub: StubServer) -> None:
    stub.answers.append(Answer(301, b"", {"Location": "https://elsewhere.example/"}))
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url, token="t").health()
    assert caught.value.status == 301 and "https://elsewhere.example/" in caught.value.message
    assert len(stub.seen) == 1


# -- jobs ----------------------------------------------------------------------------------

JOB = {"id": "f" * 32, "route": "/flux-dev", "status": "queued", "created_at": "2026-01-01T00:00:00Z",
       "started_at": None, "ended_at": None, "seed": 5, "outputs": [], "error": None,
       "progress": {"fraction": 0.0, "step": None, "steps": None, "images_done": 0,
                    "images_total": 1}}


def sse_answer(*events: tuple[int, str, dict[str, Any]]) -> Answer:
    """An event stream that ends after `events` (as a dropped connection would)."""
    body = "".join(f"id: {i}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
                   for i, name, data in events)
    return Answer(200, body.encode(), {"Content-Type": "text/event-stream"})


def test_submit_asks_for_an_async_answer_and_returns_the_job(stub: StubServer) -> None:
    stub.answers.append(Answer.json(JOB, status=202, Location=f"/jobs/{JOB['id']}"))
    job = RylaClient(stub.url, token="tok").submit(FluxDevRequest(prompt="later", seed=5))
    assert job == JOB
    seen = stub.seen[0]
    assert (seen.method, seen.path) == ("POST", "/flux-dev")
    assert seen.headers["Prefer"] == "respond-async"
    assert seen.headers["Authorization"] == "Bearer tok"
    assert json.loads(seen.body)["prompt"] == "later"


def test_submit_to_a_backend_without_jobs_says_so(stub: StubServer) -> None:
    stub.answers.append(ok_answer([png_bytes()]))  # a sync answer: Prefer ignored
    with pytest.raises(BackendError, match="did not start a job"):
        RylaClient(stub.url).submit(FluxDevRequest(prompt="later"))


def test_job_routes_are_asked_as_the_spec_names_them(stub: StubServer) -> None:
    image = png_bytes()
    stub.answers += [Answer.json(JOB), Answer.json({"jobs": [JOB]}),
                     Answer.json({**JOB, "status": "running"}, status=202),
                     Answer(200, image, {"Content-Type": "image/png"})]
    client = RylaClient(stub.url)
    assert client.job(JOB["id"]) == JOB
    assert client.jobs(status="running", limit=3) == [JOB]
    assert client.cancel(JOB["id"])["status"] == "running"
    assert client.output(JOB["id"], 0) == image
    assert [(s.method, s.path) for s in stub.seen] == [
        ("GET", f"/jobs/{JOB['id']}"), ("GET", "/jobs?status=running&limit=3"),
        ("DELETE", f"/jobs/{JOB['id']}"), ("GET", f"/jobs/{JOB['id']}/outputs/0")]


def test_cancel_of_an_ended_job_raises_its_409(stub: StubServer) -> None:
    stub.answers.append(Answer.json({"error": {"code": "job_ended", "message": "already ended: "
                                               "succeeded", "field": None}}, status=409))
    with pytest.raises(BackendError) as caught:
        RylaClient(stub.url).cancel(JOB["id"])
    assert (caught.value.status, caught.value.code) == (409, "job_ended")


def test_events_are_parsed_with_their_data(stub: StubServer) -> None:
    progress = {**JOB["progress"], "fraction": 0.5, "step": 2, "steps": 4}
    stub.answers.append(sse_answer((1, "status", {"status": "running"}), (2, "progress", progress),
                                   (3, "done", {**JOB, "status": "succeeded"})))
    events = list(RylaClient(stub.url).events(JOB["id"], last_event_id="0"))
    assert events == [("status", {"status": "running"}), ("progress", progress),
                      ("done", {**JOB, "status": "succeeded"})]
    assert stub.seen[0].path == f"/jobs/{JOB['id']}/events"
    assert stub.seen[0].headers["Last-Event-ID"] == "0"


def test_wait_resumes_a_dropped_stream_after_the_last_event(stub: StubServer) -> None:
    done = {**JOB, "status": "succeeded", "outputs": [f"/jobs/{JOB['id']}/outputs/0"]}
    stub.answers += [sse_answer((10, "status", {"status": "running"}),
                                (11, "progress", {**JOB["progress"], "fraction": 0.25})),
                     sse_answer(),  # a connection that drops before any event
                     sse_answer((12, "progress", {**JOB["progress"], "fraction": 1.0}),
                                (13, "done", done))]
    heard: list[str] = []
    assert RylaClient(stub.url).wait(JOB["id"], on_event=lambda e, _: heard.append(e)) == done
    assert heard == ["status", "progress", "progress", "done"]  # nothing twice
    assert "Last-Event-ID" not in stub.seen[0].headers
    assert [s.headers["Last-Event-ID"] for s in stub.seen[1:]] == ["11", "11"]


def test_wait_gives_up_on_a_stream_that_keeps_dropping_silently(stub: StubServer) -> None:
    stub.answers += [sse_answer() for _ in range(10)]
    with pytest.raises(BackendUnreachable, match="lost the events"):
        RylaClient(stub.url).wait(JOB["id"])
    assert len(stub.seen) == 6  # the first try and five reconnects
