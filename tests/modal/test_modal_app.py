"""backend/modal_app.py checked offline: what the app declares, without a Modal account."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import modal
import pytest
import yaml

import backend.modal_app as m
from backend.deploy import image as pins
from backend.deploy.comfyui import comfyui_command
from backend.deploy.web import deployment_settings
from backend.settings import Settings
from backend.deploy.layout import ContainerLayout
from tests.modal.modal_introspect import (
    function_options,
    image_commands,
    local_python_sources,
    method_flags,
    method_params,
    raw_function,
    raw_method,
    secret_names,
    uses_image,
    volume_names,
    webhook_config,
)

ROOT = Path(__file__).resolve().parents[2]


def layout_settings(env: dict[str, str]) -> Settings:
    """The web tier's settings from `env`, with the Modal containers' paths."""
    return deployment_settings(env, m.LAYOUT)


def _import_in_subprocess(env_extra: dict[str, str], code: str, tmp_path: Path) -> str:
    # No token anywhere: no MODAL_* variables, a HOME without ~/.modal.toml.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "RYLA_MODAL_"))}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "none.toml"), **env_extra)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_imports_without_a_modal_token(tmp_path: Path) -> None:
    code = ("import backend.modal_app as m, modal.config as c; "
            "print(m.app.name, c.config.get('token_id') is None)")
    assert _import_in_subprocess({}, code, tmp_path) == "ryla-comfyui True"


def test_app_name() -> None:
    assert m.app.name == "ryla-comfyui"


def test_both_tiers_mount_models_at_comfyui_models_dir_and_loras_where_the_backend_reads() -> None:
    mounts = volume_names(function_options(m.ComfyUIWorker))
    assert mounts == {f"{str(m.LAYOUT.comfyui_dir)}/models": "ryla-models", "/loras": "ryla-loras"}
    # the web tier validates against, and uploads LoRAs to, the very same Volumes
    # ... and keeps its job records and outputs on a third
    assert volume_names(function_options(m.web)) == {**mounts, m.DATA_DIR: "ryla-data"}
    settings = layout_settings({"RYLA_API_TOKEN": "t0k"})
    assert mounts[str(settings.models_dir)] == "ryla-models"
    assert mounts[str(settings.lora_dir)] == "ryla-loras"
    # ComfyUI itself is told that the LoRA Volume is a "loras" folder
    extra = yaml.safe_load(m.EXTRA_MODEL_PATHS_YAML)
    assert [v["loras"] for v in extra.values()] == [str(settings.lora_dir)]
    cmd = comfyui_command(m.LAYOUT)
    assert cmd[cmd.index("--extra-model-paths-config") + 1] == str(m.LAYOUT.extra_model_paths)
    assert cmd[cmd.index("--port") + 1] == str(m.LAYOUT.comfyui_port)
    assert cmd[cmd.index("--listen") + 1] == "127.0.0.1"  # only this container talks to it
    assert m.LAYOUT.comfyui_url == f"http://127.0.0.1:{m.LAYOUT.comfyui_port}"
    written = [c for c in image_commands(m.image) if str(m.LAYOUT.extra_model_paths) in c]
    assert len(written) == 1
    printed = re.search(r"printf '(.*)' >", written[0]).group(1).replace("\\n", "\n")
    assert yaml.safe_load(printed) == extra
    assert f"RUN rm -rf {m.MODELS_DIR}" in image_commands(m.image)  # empty mount point


def test_gpu_class_takes_one_input_per_container_so_a_burst_fans_out() -> None:
    opts = function_options(m.ComfyUIWorker)
    assert opts["gpu"] == "H100"
    # one prompt per container: a 5-request burst is 5 inputs on 5 containers, up to
    # max_containers, never a queue inside one container
    assert opts["max_concurrent_inputs"] == m.GPU_INPUTS_PER_CONTAINER == 1
    assert opts["target_concurrent_inputs_int"] in (None, 0, 1)
    assert opts["max_containers"] == m.OPTIONS.max_containers >= 5
    assert opts["scaledown_window"] == 300 and opts["min_containers"] == 0
    assert opts["enable_memory_snapshot"] is True
    assert opts["experimental_options"] == {"enable_gpu_snapshot": "True"}
    assert opts["timeout"] > 600  # longer than the backend's generation deadline
    assert secret_names(opts) == []  # only the web tier checks tokens
    flags = method_flags(m.ComfyUIWorker)
    assert flags["start_comfyui"].name == "ENTER_PRE_SNAPSHOT"
    assert flags["after_restore"].name == "ENTER_POST_SNAPSHOT"
    assert flags["stop_comfyui"].name == "EXIT"
    assert flags["run_graph"].name == "CALLABLE_INTERFACE"
    assert flags["check"].name == "CALLABLE_INTERFACE"


def test_no_gpu_function_serves_a_web_endpoint_and_the_web_tier_has_no_gpu() -> None:
    modal_objects = {name: obj for name, obj in vars(m).items()
                     if isinstance(obj, (modal.Function, modal.Cls))}
    assert set(modal_objects) == {"download_models", "ComfyUIWorker", "web", "prune_data"}
    for name in method_flags(m.ComfyUIWorker):
        assert method_params(m.ComfyUIWorker, name).webhook_config is None, name
    assert webhook_config(m.download_models) is None
    web = function_options(m.web)
    assert web["gpu"] is None and web["enable_memory_snapshot"] is False
    assert web["webhook_config"].requested_suffix == "ryla-comfyui"
    from modal_proto import api_pb2

    assert web["webhook_config"].type == api_pb2.WEBHOOK_TYPE_ASGI_APP
    assert secret_names(web) == ["ryla-api-token"]
    assert web["max_concurrent_inputs"] == m.WEB_MAX_INPUTS > 1  # requests mostly wait
    assert web["timeout"] > 600  # a long generation outlives Modal's 150 s HTTP cut
    assert uses_image(web, m.cpu_image)
    lines = " ".join(image_commands(m.cpu_image))
    assert "torch" not in lines and "ComfyUI" not in lines  # a small image, fast to start
    assert local_python_sources(m.cpu_image) >= {"backend", "workflows"}


def test_gpu_and_snapshot_are_configurable_at_deploy_time(tmp_path: Path) -> None:
    code = (
        "import json, backend.modal_app as m\n"
        "from tests.modal.modal_introspect import function_options, method_flags\n"
        "o = function_options(m.ComfyUIWorker)\n"
        "flags = [f.name for f in method_flags(m.ComfyUIWorker).values()]\n"
        "print(json.dumps([o['gpu'], o['enable_memory_snapshot'], o['experimental_options'],"
        " o['min_containers'], o['max_containers'], o['scaledown_window'], flags]))"
    )
    out = _import_in_subprocess({"RYLA_MODAL_GPU": "A100-80GB", "RYLA_MODAL_GPU_SNAPSHOT": "0",
                                 "RYLA_MODAL_MIN_CONTAINERS": "1", "RYLA_MODAL_MAX_CONTAINERS": "8",
                                 "RYLA_MODAL_SCALEDOWN_S": "60"}, code, tmp_path)
    gpu, snapshot, experimental, min_containers, max_containers, scaledown, flags = json.loads(out)
    assert (gpu, snapshot, experimental, min_containers) == ("A100-80GB", False, {}, 1)
    assert (max_containers, scaledown) == (8, 60)
    assert "ENTER_PRE_SNAPSHOT" not in flags and flags.count("ENTER_POST_SNAPSHOT") == 2


def test_deploy_time_settings_reach_the_containers(tmp_path: Path) -> None:
    # At deploy time: the deploying shell sets them ...
    deploying = {"RYLA_MODAL_WARM_UP": "flux-dev,flux-dev-fast", "RYLA_DEADLINE_S": "120",
                 "RYLA_RETENTION_DAYS": "7", "RYLA_MODAL_MAX_CONTAINERS": "3",
                 "RYLA_API_TOKEN": "never-in-a-definition", "RYLA_MODELS_DIR": "/elsewhere"}
    code = (
        "import json, backend.modal_app as m\n"
        "from tests.modal.modal_introspect import function_options, secret_env\n"
        "print(json.dumps({name: secret_env(function_options(getattr(m, name)))\n"
        "                  for name in ('ComfyUIWorker', 'web', 'prune_data')}))"
    )
    given = json.loads(_import_in_subprocess(deploying, code, tmp_path))
    passed_on = {"RYLA_MODAL_WARM_UP": "flux-dev,flux-dev-fast", "RYLA_DEADLINE_S": "120",
                 "RYLA_RETENTION_DAYS": "7", "RYLA_MODAL_MAX_CONTAINERS": "3"}
    # ... each function's definition carries them (the secret and the paths stay out) ...
    assert given == {"ComfyUIWorker": passed_on, "web": passed_on, "prune_data": passed_on}
    # ... and a container, whose environment holds only what the definition gives it,
    # reads the same values when it imports the module again.
    container = ("import json, os, backend.modal_app as m\n"
                 "from backend.settings import Settings\n"
                 "s = Settings.from_env()\n"
                 "print(json.dumps([list(m.OPTIONS.warm_up), s.deadline_s, s.retention_days]))")
    warm_ups, deadline_s, retention_days = json.loads(
        _import_in_subprocess(given["ComfyUIWorker"], container, tmp_path))
    assert (warm_ups, deadline_s, retention_days) == (["flux-dev", "flux-dev-fast"], 120.0, 7.0)


def test_the_exit_hook_runs_after_a_start_that_failed_before_the_heartbeat() -> None:
    class ComfyUIThatNeverAnswers:
        stopped = False

        def wait_ready(self, timeout_s: float) -> None:
            raise TimeoutError("ComfyUI did not answer")

        def stop(self) -> None:
            self.stopped = True

    container = m.ComfyUIWorker._get_user_cls().__new__(m.ComfyUIWorker._get_user_cls())
    container.comfyui, container.started_in = ComfyUIThatNeverAnswers(), "elsewhere"
    with pytest.raises(TimeoutError):
        raw_method(m.ComfyUIWorker, "after_restore")(container)
    raw_method(m.ComfyUIWorker, "stop_comfyui")(container)  # no AttributeError: no heartbeat yet
    assert container.comfyui.stopped
    bare = m.ComfyUIWorker._get_user_cls().__new__(m.ComfyUIWorker._get_user_cls())
    raw_method(m.ComfyUIWorker, "stop_comfyui")(bare)  # start_comfyui failed at once


def test_the_data_volume_is_pruned_daily_on_the_cpu_image() -> None:
    opts = function_options(m.prune_data)
    assert volume_names(opts) == {m.DATA_DIR: "ryla-data"}
    assert opts["gpu"] is None and uses_image(opts, m.cpu_image)
    assert "days: 1" in str(opts["schedule"].proto_message)


def test_the_first_deploy_check_asks_the_deployed_gpu_class_and_fails_loudly(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[tuple[str, str]] = []

    class DeployedWorker:
        class check:  # noqa: N801 - the method handle's shape: .remote()
            @staticmethod
            def remote() -> dict:
                return {"ok": False, "text": "FAIL CUDA works: torch.cuda.is_available() is False"}

    def from_name(app_name: str, name: str) -> type[DeployedWorker]:
        asked.append((app_name, name))
        return DeployedWorker

    monkeypatch.setattr(modal.Cls, "from_name", from_name)
    with pytest.raises(SystemExit) as exited:
        m.check.info.raw_f()
    assert exited.value.code == 1 and asked == [("ryla-comfyui", "ComfyUIWorker")]
    assert "FAIL CUDA works" in capsys.readouterr().out
    assert method_params(m.ComfyUIWorker, "check").webhook_config is None


def test_image_pins_comfyui_and_both_node_packs_at_full_commits() -> None:
    lines = image_commands(m.image)
    for repo, commit, dest in (
        (pins.COMFYUI_REPO, pins.COMFYUI_COMMIT, str(m.LAYOUT.comfyui_dir)),
        (pins.INSTANTID_REPO, pins.INSTANTID_COMMIT, f"{str(m.LAYOUT.comfyui_dir)}/custom_nodes/ComfyUI_InstantID"),
        (pins.PULID_REPO, pins.PULID_COMMIT, f"{str(m.LAYOUT.comfyui_dir)}/custom_nodes/ComfyUI_PuLID_Flux_ll"),
    ):
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert f"RUN git -C {dest} remote add origin {repo}" in lines
        assert f"RUN git -C {dest} fetch -q --depth 1 origin {commit}" in lines
        assert f'RUN test "$(git -C {dest} rev-parse HEAD)" = "{commit}"' in lines
    assert pins.INSTANTID_COMMIT.startswith("1ef34ef57358")
    assert pins.PULID_COMMIT.startswith("ba90657fe6ff")
    assert pins.COMFYUI_VERSION == "v0.12.1" and pins.COMFYUI_COMMIT.startswith("3be017516643")
    assert local_python_sources(m.image) >= {"backend", "workflows"}


def test_image_installs_every_package_list_in_one_resolve() -> None:
    lines = image_commands(m.image)
    resolves = [line for line in lines if "pip install" in line and "torch==" in line]
    assert len(resolves) == 1  # one pip resolve: versions that fit every list at once
    # modal quotes specifiers with < or > and sorts the packages
    installed = set(shlex.split(resolves[0].split(" install ", 1)[1]))
    assert installed == set(pins.IMAGE_PACKAGES)
    for spec in (*pins.TORCH_PACKAGES, *pins.COMFYUI_PACKAGES, *pins.CUSTOM_NODE_PACKAGES,
                 *pins.BACKEND_PACKAGES, *pins.HUB_PACKAGES):
        assert spec in installed
    assert "insightface==2.1" in installed  # the pure-Python wheel: nothing compiled
    assert not [line for line in lines if "cython" in line.lower()]
    # the GPU onnxruntime replaces the CPU one insightface pulls in, after the resolve
    swap = lines.index("RUN pip uninstall -y onnxruntime")
    assert lines[swap + 1] == f"RUN pip install --no-deps --force-reinstall {pins.ONNXRUNTIME_GPU}"
    assert lines.index(resolves[0]) < swap
    assert set(pins.GPU_PACKAGES) == {*pins.TORCH_PACKAGES, pins.ONNXRUNTIME_GPU}


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_comfyui_packages_are_comfyuis_requirements_at_the_pinned_commit() -> None:
    text = (ROOT / "backend" / pins.COMFYUI_REQUIREMENTS).read_text()
    assert f"# source-commit: {pins.COMFYUI_COMMIT}" in text.splitlines()
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", p) for p in pins.COMFYUI_PACKAGES)
    upstream = _upstream_requirements()
    if upstream is None:
        pytest.skip(f"ComfyUI's requirements.txt at {pins.COMFYUI_COMMIT[:12]} is not here: needs "
                    "COMFYUI_GIT (a git directory holding that commit) or the tree that "
                    "tools/upstream-comfyui.sh sets up")
    wanted = {_requirement_name(line) for line in upstream.splitlines()
              if line.strip() and not line.lstrip().startswith("#")}
    torch_stack = {_requirement_name(p) for p in pins.TORCH_PACKAGES}
    assert {_requirement_name(p) for p in pins.COMFYUI_PACKAGES} == wanted - torch_stack
    assert torch_stack <= wanted


def _upstream_requirements() -> str | None:
    """ComfyUI's requirements.txt at the pinned commit: from the git directory COMFYUI_GIT
    (as upstream-comfyui.sh names it), else from the tree that script extracted."""
    git_dir = os.environ.get("COMFYUI_GIT", "")
    if git_dir and Path(git_dir).is_dir():
        out = subprocess.run(["git", "--git-dir", git_dir, "show",
                              f"{pins.COMFYUI_COMMIT}:requirements.txt"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout
    tree = Path(os.environ.get("UPSTREAM_COMFYUI_DIR", "/tmp/upcomfy")) / "ComfyUI"
    version = tree / "comfyui_version.py"
    if version.is_file() and '"0.12.1"' in version.read_text():
        return (tree / "requirements.txt").read_text()
    return None


def test_backend_packages_match_pyproject() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {re.split(r"[<>=!\[ ]", d)[0].lower(): d for d in deps}
    for spec in pins.BACKEND_PACKAGES:
        assert by_name[re.split(r"[<>=!\[ ]", spec)[0].lower()] == spec


def test_download_function_has_the_models_volume_and_hf_secret_and_no_gpu() -> None:
    opts = function_options(m.download_models)
    assert volume_names(opts) == {m.MODELS_DIR: "ryla-models"}
    assert secret_names(opts) == ["huggingface-secret"]
    assert opts["gpu"] is None
    assert uses_image(opts, m.cpu_image)


def test_fill_models_volume_uses_the_manifest_and_hf_token(tmp_path: Path) -> None:
    from workflows.manifest import MODEL_MANIFEST, files_for

    calls: list[tuple[str, str | None]] = []

    def fake_hub(*, repo_id: str, filename: str, local_dir: str, token: str | None) -> str:
        calls.append((filename, token))
        raise OSError("offline")  # nothing is written; only what was asked is checked

    report = m.fill_models_volume(tmp_path, {"HF_TOKEN": "hf_x"}, "flux-schnell", hub_download=fake_hub)
    wanted = {f.filename for f in files_for("flux-schnell")}
    assert {c[0] for c in calls} == wanted and {c[1] for c in calls} == {"hf_x"}
    assert not report.ok and len(report.failed) == len(wanted)
    assert all(f.folder != "loras" for f in MODEL_MANIFEST if f.filename in wanted)


def test_download_of_z_image_fetches_its_two_files_without_a_token(tmp_path: Path) -> None:
    from workflows.manifest import find

    # The Flux VAE is already on the Volume (a Flux download put it there, right size):
    # Z-Image uses that very file, so only its DiT and its text encoder are fetched.
    ae = find("vae", "ae.safetensors")
    assert ae is not None
    (tmp_path / "vae").mkdir()
    with open(tmp_path / "vae" / "ae.safetensors", "wb") as f:
        f.truncate(ae.size_bytes)  # sparse: the size is what the downloader checks
    calls: list[tuple[str, str, str | None]] = []

    def fake_hub(*, repo_id: str, filename: str, local_dir: str, token: str | None) -> str:
        calls.append((repo_id, filename, token))
        raise OSError("offline")

    report = m.fill_models_volume(tmp_path, {}, "z-image", hub_download=fake_hub)
    assert sorted(calls) == [
        ("Comfy-Org/z_image_turbo", "split_files/diffusion_models/z_image_turbo_bf16.safetensors", None),
        ("Comfy-Org/z_image_turbo", "split_files/text_encoders/qwen_3_4b.safetensors", None),
    ]
    assert len(report.failed) == 2 and not report.ok


def test_settings_refuse_to_serve_without_a_token() -> None:
    with pytest.raises(RuntimeError, match="ryla-api-token"):
        layout_settings({})
    with pytest.raises(RuntimeError):
        layout_settings({"RYLA_API_TOKEN": "  "})
    s = layout_settings({"RYLA_API_TOKEN": "abc", "RYLA_DEADLINE_S": "120",
                               "RYLA_MODELS_DIR": "/elsewhere"})
    assert s.api_token == "abc" and s.deadline_s == 120.0
    assert str(s.models_dir) == m.MODELS_DIR  # the mount path wins over the env
    assert "abc" not in repr(s)


def test_the_web_function_serves_the_backends_app_with_the_modal_runner(
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("backend.api")
    from backend.modal_dispatch import ModalGraphRunner

    made: list[tuple[object, object, object]] = []
    real_create_app = api.create_app

    def recording_create_app(settings, runner=None):  # type: ignore[no-untyped-def]
        made.append((settings, runner, real_create_app(settings, runner)))
        return made[-1][2]

    monkeypatch.setattr(api, "create_app", recording_create_app)
    monkeypatch.setenv("RYLA_API_TOKEN", "tok")
    served = raw_function(m.web)()
    [(settings, runner, app)] = made
    assert served is app and settings.api_token == "tok"
    assert isinstance(runner, ModalGraphRunner)
    assert isinstance(runner.gpu, m.ModalGpuFunction)
    assert runner.cold_start_s == m.COLD_START_S
    assert runner.validator.models_dir == Path(m.MODELS_DIR)
    reference = {getattr(r, "path", None) for r in real_create_app(settings).routes}
    assert {getattr(r, "path", None) for r in served.routes} == reference


def test_served_app_requires_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("backend.api")
    from fastapi.testclient import TestClient

    monkeypatch.setattr(m, "_reload_models", lambda: None)  # no Volume offline
    settings = layout_settings({"RYLA_API_TOKEN": "s3cret"})
    client = TestClient(m.build_asgi_app(settings, m.web_runner(settings)))
    assert client.get("/models").status_code == 401
    assert client.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_deployment_functions_need_no_modal_package(tmp_path: Path) -> None:
    # A rehearsal starts ComfyUI and builds the app with these on a machine without modal,
    # as benchmarks/rehearsal/stack.py calls them.
    code = (
        "import sys, json; sys.modules['modal'] = None\n"
        "from pathlib import Path\n"
        "from backend.deploy.comfyui import comfyui_command\n"
        "from backend.deploy.layout import ContainerLayout, write_extra_model_paths\n"
        f"base = Path({str(tmp_path)!r})\n"
        "layout = ContainerLayout(comfyui_dir=base / 'cu' / 'ComfyUI',\n"
        "                         models_dir=base / 'cu' / 'ComfyUI' / 'models',\n"
        "                         lora_dir=base / 'loras', data_dir=base / 'data')\n"
        "write_extra_model_paths(layout)\n"
        "print(json.dumps([comfyui_command(layout), str(layout.models_dir), layout.comfyui_url]))"
    )
    command, models_dir, url = json.loads(_import_in_subprocess({}, code, tmp_path))
    comfyui_dir = tmp_path / "cu" / "ComfyUI"
    assert command[0] == sys.executable and command[1] == f"{comfyui_dir}/main.py"
    assert command[command.index("--port") + 1] == "8188"
    yaml_path = Path(command[command.index("--extra-model-paths-config") + 1])
    assert yaml_path == tmp_path / "cu" / "extra_model_paths.yaml"  # written beside ComfyUI
    written = yaml.safe_load(yaml_path.read_text())
    assert [v["loras"] for v in written.values()] == [str(tmp_path / "loras")]
    assert models_dir == str(comfyui_dir / "models") and url == "http://127.0.0.1:8188"
    with pytest.raises(ValueError, match="models directory"):
        ContainerLayout(comfyui_dir=comfyui_dir, models_dir=tmp_path / "elsewhere")
    # the Modal containers' layout: the paths the image and the Volumes use
    assert (m.MODELS_DIR, str(m.LAYOUT.extra_model_paths)) == (
        f"{str(m.LAYOUT.comfyui_dir)}/models", "/root/comfy/extra_model_paths.yaml")


def test_comfyui_caches_every_node_of_every_pipeline_so_models_stay_loaded() -> None:
    # Residency (issue 12): with ComfyUI's default cache a loader's model is dropped as
    # soon as another graph runs; the LRU cache must hold every node of every shipped
    # graph at once, so switching pipelines never reads a model from the Volume again.
    import json

    from workflows.registry import PIPELINES

    nodes = sum(len(json.loads(p.graph_path.read_text())) for p in PIPELINES.values())
    cmd = comfyui_command(ContainerLayout())
    assert int(cmd[cmd.index("--cache-lru") + 1]) >= nodes
    assert "--disable-api-nodes" in cmd  # paid web-service nodes: never used, slow to import


def test_image_fixes_the_pulid_pack_after_checkout_and_before_it_runs() -> None:
    lines = image_commands(m.image)
    checkout = next(i for i, c in enumerate(lines) if "ComfyUI_PuLID_Flux_ll" in c and "checkout" in c)
    patch = next(i for i, c in enumerate(lines) if f"python {m.NODEPACK_PATCHES} {str(m.LAYOUT.comfyui_dir)}/custom_nodes" in c)
    assert checkout < patch


def test_records_and_outputs_are_on_the_data_volume() -> None:
    mounts = volume_names(function_options(m.web))
    settings = layout_settings({"RYLA_API_TOKEN": "t0k"})
    assert mounts[str(settings.data_dir)] == "ryla-data"


def test_data_volume_is_committed_after_each_generation(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    pytest.importorskip("backend.api")
    from fastapi.testclient import TestClient

    from backend.comfyui_client import ComfyUIClient
    from backend.graph_runner import ComfyUIRunner
    from tests.builders import free_port

    commits: list[str] = []
    monkeypatch.setattr(m, "_commit_data", lambda: commits.append("data"))
    monkeypatch.setattr(m, "_reload_loras", lambda: None)  # no Volume offline
    settings = layout_settings({"RYLA_API_TOKEN": "t"}).model_copy(
        update={"data_dir": tmp_path / "d", "lora_dir": tmp_path / "loras"})
    # no GPU tier here: a runner whose ComfyUI is down makes every generation a 503
    down = ComfyUIRunner(ComfyUIClient(f"http://127.0.0.1:{free_port()}",
                                       models_dir=tmp_path, lora_dir=tmp_path / "loras"))
    with TestClient(m.build_asgi_app(settings, down)) as client:
        auth = {"Authorization": "Bearer t"}
        client.get("/loras", headers=auth)
        assert commits == []  # nothing was written
        r = client.post("/flux-dev", json={"prompt": "x"}, headers=auth)
        assert r.status_code == 503
        assert commits == ["data"]  # the failed job's record is kept too
        assert list((tmp_path / "d" / "jobs").glob("*.json"))


def test_fast_mode_can_compile_in_the_image_and_keeps_its_cache_on_the_models_volume() -> None:
    lines = image_commands(m.image)
    apt = next(line for line in lines if "apt-get install" in line)
    assert " gcc" in apt  # Triton builds its launchers with the C compiler
    assert f"RUN python -m compileall -q {str(m.LAYOUT.comfyui_dir)}" in lines
    assert any(f"TORCHINDUCTOR_CACHE_DIR={str(m.LAYOUT.compile_cache_dir)}" in line.replace('"', "").replace("'", "")
               for line in lines)
    mounts = volume_names(function_options(m.ComfyUIWorker))
    assert str(m.LAYOUT.compile_cache_dir).startswith(m.MODELS_DIR + "/") and mounts[m.MODELS_DIR] == "ryla-models"


def test_warm_ups_are_known_names() -> None:
    from backend.warmup import WARM_UP_REQUESTS

    assert m.OPTIONS.warm_up == ("flux-dev",)
    assert set(m.OPTIONS.warm_up) <= set(WARM_UP_REQUESTS)


def test_a_containers_first_compiled_job_commits_the_compile_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    from types import SimpleNamespace

    from workflows.render import render_workflow
    from workflows.request_models import FluxDevRequest

    commits: list[int] = []
    monkeypatch.setattr(m, "_commit_compile_cache", lambda: commits.append(1) or True)

    class Worker:
        async def run(self, job: dict) -> dict:
            return {"ran": job["graph"] is not None}

    container = SimpleNamespace(worker=Worker(), compile_cache_saved=False,
                                heartbeat=SimpleNamespace(set_busy=lambda busy: None))
    run_graph = raw_method(m.ComfyUIWorker, "run_graph")
    standard = render_workflow("flux-dev", FluxDevRequest(prompt="x"), seed=1)
    fast = render_workflow("flux-dev", FluxDevRequest(prompt="x", mode="fast"), seed=1)
    asyncio.run(run_graph(container, {"graph": standard}))
    assert commits == []
    for _ in range(2):
        assert asyncio.run(run_graph(container, {"graph": fast})) == {"ran": True}
    assert commits == [1] and container.compile_cache_saved


def test_working_hours_declare_a_scheduled_cpu_function_only_when_set(tmp_path: Path) -> None:
    code = (
        "import json, backend.modal_app as m\n"
        "from tests.modal.modal_introspect import function_options, secret_env\n"
        "f = getattr(m, 'keep_warm_in_hours', None)\n"
        "o = function_options(f) if f else None\n"
        "print(json.dumps(None if o is None else [o['gpu'], str(o['schedule'].proto_message),"
        " secret_env(o).get('RYLA_WARM_HOURS')]))"
    )
    assert json.loads(_import_in_subprocess({}, code, tmp_path)) is None
    spec = "Mon-Fri 09:00-18:00 Europe/Berlin"
    gpu, schedule, passed_on = json.loads(_import_in_subprocess({"RYLA_WARM_HOURS": spec}, code, tmp_path))
    assert gpu is None and "seconds: 300" in schedule
    assert passed_on == spec  # the container reads the same hours


def test_a_bad_working_hours_spec_fails_the_deploy(tmp_path: Path) -> None:
    from backend.deploy.options import DeployOptions

    with pytest.raises(ValueError, match="22:00-06:00|midnight|two windows"):
        DeployOptions.from_env({"RYLA_WARM_HOURS": "Mon 22:00-06:00 UTC"})


def test_warm_spawns_a_method_that_only_starts_a_container() -> None:
    flags = method_flags(m.ComfyUIWorker)
    assert "warm" in flags
    container = m.ComfyUIWorker._get_user_cls().__new__(m.ComfyUIWorker._get_user_cls())
    assert raw_method(m.ComfyUIWorker, "warm")(container) is None
