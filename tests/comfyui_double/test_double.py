"""The ComfyUI test double's own behaviour: fault injection, queue order, outputs that
depend on the graph, validation against installed files. (What it shares with a real
ComfyUI is checked in tests/contract/.)"""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import requests
import websocket
from PIL import Image

from tests.comfyui_double import ComfyUIDouble

GUARD_S = 30  # a guard against a stuck double, never a measurement
GRAPHS = Path(__file__).resolve().parents[2] / "workflows" / "graphs"
TERMINAL = {"execution_success", "execution_error", "execution_interrupted"}


def small_graph(width: int = 16, height: int = 8, color: int = 0x102030) -> dict:
    return {"1": {"class_type": "EmptyImage",
                  "inputs": {"width": width, "height": height, "batch_size": 1, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                        "filename_prefix": "small"}}}


def flux_graph(seed: int, text: str = "a lighthouse at dusk", size: int = 1024) -> dict:
    graph = json.loads((GRAPHS / "flux-dev.json").read_text())
    graph["8"]["inputs"].update(seed=seed, steps=3)
    graph["4"]["inputs"]["text"] = text
    graph["7"]["inputs"].update(width=size, height=size)
    return graph


class Client:
    """A ComfyUI client as the backend is one: a socket per client id, then POST /prompt."""

    def __init__(self, double: ComfyUIDouble) -> None:
        self.double = double
        self.client_id = str(uuid.uuid4())
        self.socket = websocket.create_connection(f"{double.ws_url}?clientId={self.client_id}",
                                                  timeout=GUARD_S)
        self.messages: list[dict] = []
        self.frames: list[bytes] = []  # binary frames: previews

    def queue(self, graph: dict) -> str:
        response = requests.post(f"{self.double.url}/prompt", timeout=GUARD_S,
                                 json={"prompt": graph, "client_id": self.client_id})
        assert response.status_code == 200, response.text
        return response.json()["prompt_id"]

    def _receive(self) -> dict:
        while isinstance(raw := self.socket.recv(), bytes):
            self.frames.append(raw)
        message = json.loads(raw)
        self.messages.append(message)
        return message

    def _await(self, matches: Callable[[dict], bool]) -> dict:
        # Messages of overlapping jobs interleave: one read while waiting for another job's
        # message must still count when that job is asked about.
        for message in self.messages:
            if matches(message):
                return message
        while not matches(message := self._receive()):
            pass
        return message

    def until(self, message_type: str, prompt_id: str) -> dict:
        return self._await(lambda m: m["type"] == message_type
                           and m["data"].get("prompt_id") == prompt_id)

    def finish(self, prompt_id: str) -> dict:
        return self._await(lambda m: m["type"] in TERMINAL
                           and m["data"].get("prompt_id") == prompt_id)

    def finish_all(self, prompt_ids: list[str]) -> dict[str, str]:
        """prompt id -> its terminal message type; overlapping jobs end in any order."""
        return {prompt_id: self.finish(prompt_id)["type"] for prompt_id in prompt_ids}

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def client(comfyui_double: ComfyUIDouble):
    connection = Client(comfyui_double)
    yield connection
    connection.close()


def history(double: ComfyUIDouble, prompt_id: str) -> dict:
    return requests.get(f"{double.url}/history/{prompt_id}", timeout=GUARD_S).json()[prompt_id]


def output_image(double: ComfyUIDouble, prompt_id: str, node_id: str) -> Image.Image:
    entry = history(double, prompt_id)["outputs"][node_id]["images"][0]
    response = requests.get(f"{double.url}/view", timeout=GUARD_S, params={
        "filename": entry["filename"], "subfolder": entry["subfolder"], "type": entry["type"]})
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def test_fail_next_fails_only_the_next_job(comfyui_double: ComfyUIDouble, client: Client) -> None:
    comfyui_double.fail_next("CUDA out of memory")
    failed = client.queue(small_graph())
    error = client.finish(failed)
    assert error["type"] == "execution_error"
    assert error["data"]["exception_message"] == "CUDA out of memory"
    assert {"node_id", "node_type", "exception_type", "traceback"} <= set(error["data"])
    assert history(comfyui_double, failed)["status"]["status_str"] == "error"

    fine = client.queue(small_graph())
    assert client.finish(fine)["type"] == "execution_success"
    assert history(comfyui_double, fine)["status"]["status_str"] == "success"


def test_hang_blocks_the_queue_until_interrupt(comfyui_double: ComfyUIDouble,
                                               client: Client) -> None:
    comfyui_double.hang_next()
    stuck = client.queue(small_graph())
    client.until("executing", stuck)
    waiting = client.queue(small_graph())
    queue = requests.get(f"{comfyui_double.url}/queue", timeout=GUARD_S).json()
    assert [entry[1] for entry in queue["queue_running"]] == [stuck]
    assert [entry[1] for entry in queue["queue_pending"]] == [waiting]

    assert requests.post(f"{comfyui_double.url}/interrupt", timeout=GUARD_S).status_code == 200
    assert client.finish(stuck)["type"] == "execution_interrupted"
    assert client.finish(waiting)["type"] == "execution_success"
    assert history(comfyui_double, stuck)["status"]["status_str"] == "error"
    assert [job.status for job in comfyui_double.jobs] == ["interrupted", "success"]


def test_interrupt_names_the_running_prompt(comfyui_double: ComfyUIDouble,
                                            client: Client) -> None:
    comfyui_double.hang_next()
    stuck = client.queue(small_graph())
    client.until("executing", stuck)
    requests.post(f"{comfyui_double.url}/interrupt", json={"prompt_id": "another"},
                  timeout=GUARD_S)
    assert comfyui_double.jobs[0].status == "running"  # someone else's id: not interrupted
    requests.post(f"{comfyui_double.url}/interrupt", json={"prompt_id": stuck}, timeout=GUARD_S)
    assert client.finish(stuck)["type"] == "execution_interrupted"


def test_dropped_socket_job_still_lands_in_history(comfyui_double: ComfyUIDouble,
                                                   client: Client) -> None:
    comfyui_double.drop_socket_next()
    comfyui_double.step_delay = 0.01  # so the job is still running when the socket goes
    prompt_id = client.queue(small_graph())
    received = []
    while raw := client.socket.recv():  # the server's close frame reads as ""
        received.append(json.loads(raw)["type"])
    assert not client.socket.connected
    assert "executing" in received and not TERMINAL & set(received)
    # A new socket sees the job end; history has it then.
    again = Client(comfyui_double)
    try:
        response = requests.get(f"{comfyui_double.url}/history/{prompt_id}", timeout=GUARD_S)
        while not response.json():
            again.socket.recv()  # a status message at each queue change: no busy loop
            response = requests.get(f"{comfyui_double.url}/history/{prompt_id}",
                                    timeout=GUARD_S)
    finally:
        again.close()
    assert response.json()[prompt_id]["status"]["status_str"] == "success"


def test_jobs_run_one_at_a_time_in_queue_order(comfyui_double: ComfyUIDouble,
                                               client: Client) -> None:
    comfyui_double.step_delay = 0.005
    first, second = client.queue(small_graph()), client.queue(small_graph())
    client.finish(second)
    starts_and_ends = [(m["type"], m["data"]["prompt_id"]) for m in client.messages
                       if m["type"] in {"execution_start"} | TERMINAL]
    assert starts_and_ends == [("execution_start", first), ("execution_success", first),
                               ("execution_start", second), ("execution_success", second)]


def test_messages_go_to_the_client_that_queued(comfyui_double: ComfyUIDouble,
                                               client: Client) -> None:
    other = Client(comfyui_double)
    try:
        mine = client.queue(small_graph())
        theirs = other.queue(small_graph())
        other.finish(theirs)
        assert not [m for m in other.messages if m["data"].get("prompt_id") == mine]
        assert client.finish(mine)["type"] == "execution_success"
    finally:
        other.close()


def test_output_size_and_pixels_follow_the_graph(comfyui_double: ComfyUIDouble,
                                                 client: Client) -> None:
    images = {}
    for key, graph in {"seed1": flux_graph(1), "seed1-again": flux_graph(1),
                       "seed2": flux_graph(2), "other-text": flux_graph(1, "a red fox")}.items():
        prompt_id = client.queue(graph)
        assert client.finish(prompt_id)["type"] == "execution_success"
        images[key] = output_image(comfyui_double, prompt_id, "10")
    assert images["seed1"].size == (1024, 1024)
    pixels = {key: image.tobytes() for key, image in images.items()}
    assert pixels["seed1"] == pixels["seed1-again"]
    assert pixels["seed1"] != pixels["seed2"]
    assert pixels["seed1"] != pixels["other-text"]


def find_crop(image: np.ndarray, crop: np.ndarray) -> tuple[int, int] | None:
    """(left, top) where `crop` sits in `image` pixel for pixel, else None."""
    height, width = crop.shape[:2]
    for top in range(image.shape[0] - height + 1):
        for left in range(image.shape[1] - width + 1):
            if np.array_equal(image[top:top + height, left:left + width], crop):
                return left, top
    return None


def test_identity_graph_output_contains_the_reference(comfyui_double: ComfyUIDouble,
                                                      client: Client) -> None:
    # A reference that fits the frame at scale 1, so it is pasted pixel for pixel (PNG).
    reference = np.random.default_rng(7).integers(0, 256, (40, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(reference).save(buffer, format="PNG")
    uploaded = requests.post(f"{comfyui_double.url}/upload/image", timeout=GUARD_S,
                             files={"image": ("face.png", buffer.getvalue())}).json()
    outputs = {}
    for seed in (1, 2):
        graph = json.loads((GRAPHS / "instantid.json").read_text())
        graph["7"]["inputs"]["image"] = uploaded["name"]
        graph["9"]["inputs"].update(width=64, height=56)
        graph["10"]["inputs"].update(seed=seed, steps=1)
        prompt_id = client.queue(graph)
        assert client.finish(prompt_id)["type"] == "execution_success"
        outputs[seed] = np.asarray(output_image(comfyui_double, prompt_id, "12").convert("RGB"))
    assert outputs[1].shape == (56, 64, 3)
    assert find_crop(outputs[1], reference) is not None
    assert find_crop(outputs[2], reference) is not None
    assert not np.array_equal(outputs[1], outputs[2])
    # A graph without an identity node keeps the flat colours: no reference in it.
    prompt_id = client.queue(flux_graph(1, size=64))
    client.finish(prompt_id)
    plain = np.asarray(output_image(comfyui_double, prompt_id, "10").convert("RGB"))
    assert find_crop(plain, reference) is None


def test_sampler_reports_progress_per_step(comfyui_double: ComfyUIDouble,
                                           client: Client) -> None:
    prompt_id = client.queue(flux_graph(5, size=64))
    client.finish(prompt_id)
    progress = [(m["data"]["value"], m["data"]["max"], m["data"]["node"])
                for m in client.messages if m["type"] == "progress"]
    assert progress == [(1, 3, "8"), (2, 3, "8"), (3, 3, "8")]


def test_video_saver_writes_an_animated_webp(comfyui_double: ComfyUIDouble,
                                             client: Client) -> None:
    graph = json.loads((GRAPHS / "wan2.json").read_text())
    graph["7"]["inputs"].update(width=64, height=48, length=5)
    prompt_id = client.queue(graph)
    assert client.finish(prompt_id)["type"] == "execution_success"
    output = history(comfyui_double, prompt_id)["outputs"]["10"]
    assert output["animated"] == [True]
    video = output_image(comfyui_double, prompt_id, "10")
    assert (video.format, video.size, video.n_frames) == ("WEBP", (64, 48), 5)


def test_validation_uses_the_installed_files(comfyui_double: ComfyUIDouble) -> None:
    graph = flux_graph(1, size=64)
    url = f"{comfyui_double.url}/prompt"
    assert requests.post(url, json={"prompt": graph}, timeout=GUARD_S).status_code == 200

    comfyui_double.set_installed({"vae": ["other.safetensors"]})
    response = requests.post(url, json={"prompt": graph}, timeout=GUARD_S)
    assert response.status_code == 400
    errors = response.json()["node_errors"]
    assert errors["3"]["errors"][0]["details"] == \
        "vae_name: 'ae.safetensors' not in ['pixel_space', 'other.safetensors']"
    assert errors["3"]["dependent_outputs"] == ["10"]
    assert {"1", "2", "3"} <= set(errors)
    files = requests.get(f"{comfyui_double.url}/models/vae", timeout=GUARD_S).json()
    assert files == ["other.safetensors"]


def test_models_folders_list_model_extensions_only_as_upstream(comfyui_double: ComfyUIDouble
                                                              ) -> None:
    url = comfyui_double.url
    antelope = comfyui_double.models_dir / "insightface" / "models" / "antelopev2"
    assert (antelope / "1k3d68.onnx").is_file()  # installed, as an empty placeholder
    # upstream never lists .onnx: it is not one of folder_paths.supported_pt_extensions
    assert requests.get(f"{url}/models/insightface", timeout=GUARD_S).json() == []
    assert "models/antelopev2/1k3d68.onnx" in comfyui_double.installed["insightface"]
    # text_encoders reads the legacy models/clip too; "clip" itself is no folder upstream
    (comfyui_double.models_dir / "clip").mkdir()
    (comfyui_double.models_dir / "clip" / "legacy.safetensors").touch()
    listed = requests.get(f"{url}/models/text_encoders", timeout=GUARD_S).json()
    assert {"legacy.safetensors", "EVA02_CLIP_L_336_psz14_s6B.pt", "clip_l.safetensors"} <= set(listed)
    assert requests.get(f"{url}/models/clip", timeout=GUARD_S).status_code == 404
    assert requests.get(f"{url}/models/facexlib", timeout=GUARD_S).json() == [
        "detection_Resnet50_Final.pth", "parsing_bisenet.pth"]


def test_partly_valid_graph_runs_its_valid_outputs(comfyui_double: ComfyUIDouble,
                                                   client: Client) -> None:
    graph = small_graph()
    graph["3"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
    response = requests.post(f"{comfyui_double.url}/prompt", timeout=GUARD_S,
                             json={"prompt": graph, "client_id": client.client_id})
    assert response.status_code == 200
    assert response.json()["node_errors"]["3"]["errors"][0]["type"] == "required_input_missing"
    prompt_id = response.json()["prompt_id"]
    client.finish(prompt_id)
    assert list(history(comfyui_double, prompt_id)["outputs"]) == ["2"]


def test_upload_keeps_both_files_without_overwrite(comfyui_double: ComfyUIDouble) -> None:
    names = []
    for colour in ("red", "blue"):
        buffer = io.BytesIO()
        Image.new("RGB", (4, 4), colour).save(buffer, format="PNG")
        response = requests.post(f"{comfyui_double.url}/upload/image", timeout=GUARD_S,
                                 files={"image": ("face.png", buffer.getvalue())},
                                 data={"subfolder": "refs"})
        names.append(response.json())
    assert names == [{"name": "face.png", "subfolder": "refs", "type": "input"},
                     {"name": "face (1).png", "subfolder": "refs", "type": "input"}]
    info = requests.get(f"{comfyui_double.url}/object_info/LoadImage", timeout=GUARD_S).json()
    assert info["LoadImage"]["input"]["required"]["image"][0] == \
        ["refs/face (1).png", "refs/face.png"]


def test_view_refuses_paths_outside_its_folders(comfyui_double: ComfyUIDouble) -> None:
    response = requests.get(f"{comfyui_double.url}/view", timeout=GUARD_S,
                            params={"filename": "../../etc/passwd", "type": "input"})
    assert response.status_code == 404


def test_reset_forgets_jobs_files_and_faults(comfyui_double: ComfyUIDouble,
                                             client: Client) -> None:
    comfyui_double.set_installed({})
    prompt_id = client.queue(small_graph())
    client.finish(prompt_id)
    comfyui_double.fail_next("never seen")
    comfyui_double.reset()
    assert comfyui_double.jobs == []
    assert requests.get(f"{comfyui_double.url}/history", timeout=GUARD_S).json() == {}
    assert not any(comfyui_double.output_dir.iterdir())
    again = client.queue(flux_graph(1, size=64))  # models installed again
    assert client.finish(again)["type"] == "execution_success"


def test_queue_delete_takes_a_pending_job_off(comfyui_double: ComfyUIDouble,
                                              client: Client) -> None:
    comfyui_double.hang_next()
    stuck = client.queue(small_graph())
    client.until("executing", stuck)
    doomed, kept = client.queue(small_graph()), client.queue(small_graph())
    response = requests.post(f"{comfyui_double.url}/queue", json={"delete": [doomed]},
                             timeout=GUARD_S)
    assert response.status_code == 200
    queue = requests.get(f"{comfyui_double.url}/queue", timeout=GUARD_S).json()
    assert [entry[1] for entry in queue["queue_pending"]] == [kept]
    requests.post(f"{comfyui_double.url}/interrupt", timeout=GUARD_S)
    assert client.finish(kept)["type"] == "execution_success"
    assert doomed not in requests.get(f"{comfyui_double.url}/history", timeout=GUARD_S).json()


def starts_and_ends(client: Client) -> list[tuple[str, str]]:
    return [(m["type"], m["data"]["prompt_id"]) for m in client.messages
            if m["type"] in {"execution_start"} | TERMINAL]


def queue_ids(double: ComfyUIDouble) -> tuple[list[str], list[str]]:
    queue = requests.get(f"{double.url}/queue", timeout=GUARD_S).json()
    return ([entry[1] for entry in queue["queue_running"]],
            [entry[1] for entry in queue["queue_pending"]])


def settled_queue_ids(double: ComfyUIDouble,
                      expected: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """/queue once it shows `expected`, or as it stands at the guard. As in ComfyUI, a job
    leaves queue_running just after its last socket message, not before it."""
    deadline = time.monotonic() + GUARD_S
    while (ids := queue_ids(double)) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return ids


def test_with_workers_queued_jobs_overlap(comfyui_double: ComfyUIDouble, client: Client) -> None:
    # A hung job holds the only worker while three jobs queue up behind it, so raising
    # `workers` starts all three together however slowly the POSTs arrive.
    comfyui_double.step_delay = 0.02
    comfyui_double.hang_next()
    blocker = client.queue(small_graph())
    client.until("executing", blocker)
    jobs = [client.queue(small_graph()) for _ in range(3)]
    assert queue_ids(comfyui_double) == ([blocker], jobs)

    comfyui_double.workers = 4

    assert client.finish_all(jobs) == dict.fromkeys(jobs, "execution_success")
    order = starts_and_ends(client)
    first_success = next(i for i, (kind, _) in enumerate(order) if kind == "execution_success")
    assert {p for kind, p in order[:first_success] if kind == "execution_start"} == \
        {blocker, *jobs}
    assert [job.status for job in comfyui_double.jobs] == \
        ["running", "success", "success", "success"]
    assert comfyui_double.running is not None and comfyui_double.running.prompt_id == blocker
    requests.post(f"{comfyui_double.url}/interrupt", json={"prompt_id": blocker},
                  timeout=GUARD_S)
    assert client.finish(blocker)["type"] == "execution_interrupted"


def test_one_worker_runs_jobs_one_after_another(comfyui_double: ComfyUIDouble,
                                                client: Client) -> None:
    comfyui_double.step_delay = 0.02
    comfyui_double.hang_next()
    blocker = client.queue(small_graph())
    client.until("executing", blocker)
    jobs = [client.queue(small_graph()) for _ in range(3)]
    requests.post(f"{comfyui_double.url}/interrupt", timeout=GUARD_S)
    client.finish(jobs[-1])
    assert starts_and_ends(client) == [
        ("execution_start", blocker), ("execution_interrupted", blocker),
        *[pair for p in jobs for pair in (("execution_start", p), ("execution_success", p))]]


def test_workers_kwarg_interrupt_without_id_stops_every_running_job(tmp_path: Path) -> None:
    double = ComfyUIDouble(tmp_path / "comfyui", workers=3).start()
    client = Client(double)
    try:
        assert double.workers == 3
        hung = []
        for _ in range(3):
            double.hang_next()
            hung.append(client.queue(small_graph()))
        for prompt_id in hung:
            client.until("executing", prompt_id)
        waiting = client.queue(small_graph())  # every worker is held: it waits
        assert queue_ids(double) == (hung, [waiting])

        assert requests.post(f"{double.url}/interrupt", timeout=GUARD_S).status_code == 200
        assert client.finish_all(hung) == dict.fromkeys(hung, "execution_interrupted")
        assert client.finish(waiting)["type"] == "execution_success"
        assert settled_queue_ids(double, ([], [])) == ([], [])
    finally:
        client.close()
        double.stop()


def test_faults_stay_with_their_job_when_jobs_overlap(tmp_path: Path) -> None:
    double = ComfyUIDouble(tmp_path / "comfyui", workers=2).start()
    client = Client(double)
    try:
        double.hang_next()
        hung = client.queue(small_graph())
        double.fail_next("only me")
        failed, fine = client.queue(small_graph()), client.queue(small_graph())
        # The hung job holds one worker; the other runs the rest.
        assert client.finish_all([failed, fine]) == {failed: "execution_error",
                                                     fine: "execution_success"}
        errors = [m for m in client.messages if m["type"] == "execution_error"]
        assert [m["data"]["exception_message"] for m in errors] == ["only me"]
        assert settled_queue_ids(double, ([hung], [])) == ([hung], [])
        requests.post(f"{double.url}/interrupt", json={"prompt_id": hung}, timeout=GUARD_S)
        assert client.finish(hung)["type"] == "execution_interrupted"
    finally:
        client.close()
        double.stop()


def test_workers_setting_is_checked_and_reset_restores_one(
        comfyui_double: ComfyUIDouble) -> None:
    with pytest.raises(ValueError):
        comfyui_double.workers = 0
    comfyui_double.workers = 5
    comfyui_double.reset()
    assert comfyui_double.workers == 1


def test_extra_model_dir_files_are_listed_live(comfyui_double: ComfyUIDouble,
                                               tmp_path: Path) -> None:
    loras = tmp_path / "volume-loras"
    loras.mkdir()
    comfyui_double.add_model_dir("loras", loras)
    url = comfyui_double.url

    def lora_choices() -> list[str]:
        info = requests.get(f"{url}/object_info/LoraLoaderModelOnly", timeout=GUARD_S).json()
        return info["LoraLoaderModelOnly"]["input"]["required"]["lora_name"][0]

    assert "character-ana.safetensors" not in lora_choices()
    (loras / "character-ana.safetensors").write_bytes(b"weights")
    (loras / ".upload-1.part").write_bytes(b"half")  # not a model file: not listed
    assert "character-ana.safetensors" in lora_choices()
    assert ".upload-1.part" not in lora_choices()
    listed = requests.get(f"{url}/models/loras", timeout=GUARD_S).json()
    assert "character-ana.safetensors" in listed
    comfyui_double.reset()  # configuration, like extra_model_paths.yaml: kept
    assert "character-ana.safetensors" in lora_choices()
    with pytest.raises(ValueError):
        comfyui_double.add_model_dir("no-such-folder", loras)


def preview_frames(frames: list[bytes]) -> list[tuple[int, bytes, bytes]]:
    """(event type, the 4 bytes after it, the rest) of each binary frame."""
    return [(struct.unpack(">I", f[:4])[0], f[4:8], f[8:]) for f in frames]


def test_sampler_steps_send_upstreams_older_preview_frames(comfyui_double: ComfyUIDouble,
                                                           client: Client) -> None:
    # a client that sent no feature flags: PREVIEW_IMAGE (1), then image type 1 (JPEG)
    prompt_id = client.queue(flux_graph(5, size=64))
    client.finish(prompt_id)
    frames = preview_frames(client.frames)
    assert len(frames) == 3  # one a step
    for event, image_type, image in frames:
        assert (event, struct.unpack(">I", image_type)[0]) == (1, 1)
        assert Image.open(io.BytesIO(image)).format == "JPEG"


def test_previews_carry_their_prompt_for_a_client_that_asks(comfyui_double: ComfyUIDouble,
                                                             client: Client) -> None:
    client.socket.send(json.dumps({"type": "feature_flags",
                                   "data": {"supports_preview_metadata": True}}))
    client._await(lambda m: m["type"] == "feature_flags")  # upstream answers with its own
    prompt_id = client.queue(flux_graph(5, size=64))
    client.finish(prompt_id)
    frames = preview_frames(client.frames)
    assert len(frames) == 3
    for event, length, rest in frames:
        assert event == 4  # PREVIEW_IMAGE_WITH_METADATA: a length, JSON, the image
        size = struct.unpack(">I", length)[0]
        metadata = json.loads(rest[:size])
        assert metadata["prompt_id"] == prompt_id and metadata["node_id"] == "8"
        assert metadata["image_type"] == "image/jpeg"
        assert Image.open(io.BytesIO(rest[size:])).format == "JPEG"
    # the progress state before each frame says its step, as upstream sends it
    steps = [m["data"]["nodes"]["8"]["value"] for m in client.messages
             if m["type"] == "progress_state" and m["data"]["nodes"].get("8", {}).get("state")
             == "running" and m["data"]["nodes"]["8"]["value"] > 0]
    assert steps == [1, 2, 3]


def test_interrupted_prompt_history_is_upstreams(comfyui_double: ComfyUIDouble,
                                                  client: Client) -> None:
    """Outputs saved before the interrupt stay in the history, the status is "error" with
    an execution_interrupted message, and `executing` None ends the prompt."""
    release = comfyui_double.hold_next("ImageInvert")
    graph = {"1": small_graph()["1"],
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "first"}},
             "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                         "filename_prefix": "second"}}}
    prompt_id = client.queue(graph)
    client._await(lambda m: m["type"] == "executing" and m["data"]["node"] == "3")
    requests.post(f"{comfyui_double.url}/interrupt", json={"prompt_id": prompt_id},
                  timeout=GUARD_S)
    release.set()  # the held node finishes; the interrupt stops the next one
    ended = client.finish(prompt_id)
    assert ended["type"] == "execution_interrupted" and ended["data"]["node_id"] == "4"
    client._await(lambda m: m["type"] == "executing" and m["data"]["node"] is None)
    entry = history(comfyui_double, prompt_id)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start", "execution_cached", "execution_interrupted"]
    assert list(entry["outputs"]) == ["2"]


def test_a_held_node_finishes_although_interrupted(comfyui_double: ComfyUIDouble,
                                                   client: Client) -> None:
    release = comfyui_double.hold_next("SaveImage")
    prompt_id = client.queue(small_graph())
    client._await(lambda m: m["type"] == "executing" and m["data"]["node"] == "2")
    requests.post(f"{comfyui_double.url}/interrupt", json={"prompt_id": prompt_id},
                  timeout=GUARD_S)
    assert comfyui_double.jobs[0].status == "running"
    release.set()
    assert client.finish(prompt_id)["type"] == "execution_success"
    assert history(comfyui_double, prompt_id)["outputs"]["2"]["images"]


@pytest.mark.parametrize("prefix", ["../escape", "a/../../escape", "/tmp/escape"])
def test_save_outside_the_output_folder_is_refused(comfyui_double: ComfyUIDouble,
                                                   client: Client, prefix: str) -> None:
    graph = small_graph()
    graph["2"]["inputs"]["filename_prefix"] = prefix
    prompt_id = client.queue(graph)
    error = client.finish(prompt_id)
    assert error["type"] == "execution_error" and error["data"]["node_id"] == "2"
    assert "Saving image outside the output folder is not allowed" in \
        error["data"]["exception_message"]
    assert not list(comfyui_double.base_dir.rglob("escape*"))


def test_save_in_a_subfolder_of_the_output_folder_is_fine(comfyui_double: ComfyUIDouble,
                                                          client: Client) -> None:
    graph = small_graph()
    graph["2"]["inputs"]["filename_prefix"] = "ryla/sub/../shot"
    prompt_id = client.queue(graph)
    assert client.finish(prompt_id)["type"] == "execution_success"
    [saved] = history(comfyui_double, prompt_id)["outputs"]["2"]["images"]
    assert (saved["subfolder"], saved["filename"]) == ("ryla", "shot_00001_.png")
