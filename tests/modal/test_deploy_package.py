"""backend/deploy/'s Modal-free pieces: retention on the data Volume and the first-deploy
check (its ComfyUI parts against the ComfyUI test double, and the real upstream when
RYLA_REAL_COMFYUI_URL names one)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import backend.modal_app as m
from backend.deploy.check import CheckReport, comfyui_facts, run_check, torch_facts
from backend.deploy.layout import ContainerLayout
from backend.deploy.retention import DAY_S, prune
from backend.deploy.web import lora_routes
from tests.comfyui_double import ComfyUIDouble
from tests.modal.modal_introspect import raw_function
from workflows.manifest import files_for

NOW = 1_800_000_000.0


def _file(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_days * DAY_S, NOW - age_days * DAY_S))
    return path


def test_prune_deletes_records_and_outputs_past_the_retention_and_reports_them(tmp_path: Path) -> None:
    old = [_file(tmp_path / "jobs" / "a.json", 10, 31), _file(tmp_path / "outputs" / "a-0.png", 100, 40),
           _file(tmp_path / "outputs" / "sheet" / "b-0.png", 1000, 45)]
    new = [_file(tmp_path / "jobs" / "c.json", 20, 29), _file(tmp_path / "outputs" / "c-0.png", 200, 1)]
    other = _file(tmp_path / "elsewhere" / "keep.txt", 5, 400)  # not records or outputs
    report = prune(tmp_path, retention_days=30, now=NOW)
    assert (report.removed_files, report.removed_bytes) == (3, 1110)
    assert (report.kept_files, report.kept_bytes) == (2, 220)
    assert not any(p.exists() for p in old) and all(p.exists() for p in [*new, other])
    assert not (tmp_path / "outputs" / "sheet").exists()  # emptied folders go too
    assert (tmp_path / "jobs").is_dir() and (tmp_path / "outputs").is_dir()  # the roots stay
    assert "removed 3 file(s)" in report.summary()


def test_prune_of_an_empty_data_dir_removes_nothing(tmp_path: Path) -> None:
    report = prune(tmp_path, retention_days=30, now=NOW)
    assert (report.removed_files, report.kept_files) == (0, 0)


def test_the_scheduled_prune_reads_the_retention_and_commits_the_volume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    volume = type("V", (), {"reload": lambda self: calls.append("reload"),
                            "commit": lambda self: calls.append("commit")})()
    layout = ContainerLayout(comfyui_dir=tmp_path / "ComfyUI", data_dir=tmp_path / "data")
    monkeypatch.setattr(m, "data_volume", volume)
    monkeypatch.setattr(m, "LAYOUT", layout)
    monkeypatch.setenv("RYLA_RETENTION_DAYS", "10")
    now = time.time()
    stale = _file(layout.data_dir / "outputs" / "old.png", 7, (NOW - now) / DAY_S + 11)
    fresh = _file(layout.data_dir / "jobs" / "new.json", 3, (NOW - now) / DAY_S + 9)
    report = raw_function(m.prune_data)()
    assert report == {"removed_files": 1, "removed_bytes": 7, "kept_files": 1, "kept_bytes": 3}
    assert not stale.exists() and fresh.exists() and calls == ["reload", "commit"]
    assert "removed 1 file(s)" in capsys.readouterr().out


def test_the_lora_volume_is_reloaded_for_the_routes_whose_pipeline_loads_a_lora() -> None:
    assert lora_routes() == {"/flux-lora"}


# -- the first-deploy check ----------------------------------------------------------------

H100 = {"version": "2.11.0+cu130", "cuda": "13.0", "works": True, "device": "NVIDIA H100 80GB HBM3"}


def _facts(report: CheckReport) -> dict[str, tuple[str, bool]]:
    return {f.name: (f.value, f.ok) for f in report.facts}


def test_torch_facts_say_when_the_driver_is_too_old_for_torchs_cuda() -> None:
    report = CheckReport()
    torch_facts(report, H100, driver="575.57.08")
    facts = _facts(report)
    assert facts["NVIDIA driver"][1] is False and "needs 580" in facts["NVIDIA driver"][0]
    assert "older CUDA" in next(f.advice for f in report.facts if f.name == "NVIDIA driver")
    report = CheckReport()
    torch_facts(report, H100, driver="580.95.05")
    assert report.ok and _facts(report)["CUDA works"] == ("NVIDIA H100 80GB HBM3", True)
    report = CheckReport()
    torch_facts(report, {"version": "2.11.0", "cuda": "13.0", "works": False,
                         "error": "torch.cuda.is_available() is False"}, driver=None)
    assert not report.ok and _facts(report)["CUDA works"][1] is False


def test_the_check_reports_comfyui_files_loras_a_generation_and_the_snapshot(
        comfyui_double: ComfyUIDouble, tmp_path: Path) -> None:
    models, loras = tmp_path / "models", tmp_path / "loras"
    for entry in files_for("flux-schnell"):  # only Schnell was downloaded
        _file(models / entry.folder / entry.local_name, 1, 0)
    for name in ("character-a.safetensors", "character-b.safetensors"):
        _file(loras / name, 1, 0)
    report = run_check(comfyui_double.url, models, loras, torch=H100, driver="580.95.05",
                       restored_from_snapshot=True, startup={"ComfyUI start": 14.2})
    facts = _facts(report)
    assert facts["ComfyUI"][0].startswith(("0.", "v0."))
    assert facts["node packs"] == ("ComfyUI_InstantID, ComfyUI_PuLID_Flux_ll, websocket_image_save", True)
    assert facts["pipelines ready"] == ("flux-schnell", True)
    assert "flux-dev" in facts["pipelines missing files"][0]
    assert facts["LoRAs"] == ("2", True)
    assert facts["generation"][0].startswith("flux-schnell") and facts["generation"][1]
    assert len(comfyui_double.jobs) == 1
    assert facts["restored from a snapshot"] == ("yes", True) and facts["ComfyUI start"] == ("14.2 s", True)
    assert report.ok and report.text().endswith("all checks passed")


def test_the_check_fails_loudly_without_any_ready_pipeline(comfyui_double: ComfyUIDouble,
                                                           tmp_path: Path) -> None:
    report = run_check(comfyui_double.url, tmp_path, tmp_path, torch=H100, driver="580.95.05",
                       restored_from_snapshot=None)
    facts = _facts(report)
    assert facts["pipelines ready"] == ("none", False) and facts["generation"][1] is False
    assert "download_models" in report.text() and comfyui_double.jobs == []
    assert facts["restored from a snapshot"][0] == "snapshots off"


@pytest.mark.skipif(not os.environ.get("RYLA_REAL_COMFYUI_URL"),
                    reason="needs a real upstream ComfyUI: set RYLA_REAL_COMFYUI_URL")
def test_comfyui_facts_of_the_real_upstream() -> None:
    report = CheckReport()
    comfyui_facts(report, os.environ["RYLA_REAL_COMFYUI_URL"].rstrip("/"))
    facts = _facts(report)
    assert facts["ComfyUI"][0] == "0.12.1"
    assert facts["node packs"][1] is True


def test_deploy_options_refuse_a_misspelt_warm_up_and_read_an_empty_one_as_none() -> None:
    from backend.deploy.options import DeployOptions, container_env

    with pytest.raises(ValueError, match="RYLA_MODAL_WARM_UP: .*unknown warm-up 'flux-turbo'"):
        DeployOptions.from_env({"RYLA_MODAL_WARM_UP": "flux-dev,flux-turbo"})
    assert DeployOptions.from_env({"RYLA_MODAL_WARM_UP": ""}).warm_up == ()
    assert DeployOptions.from_env({}).warm_up == ("flux-dev",)
    with pytest.raises(ValueError, match="RYLA_MODAL_MAX_CONTAINERS"):
        DeployOptions.from_env({"RYLA_MODAL_MAX_CONTAINERS": "many"})
    shell = {"RYLA_MODAL_GPU": "L40S", "RYLA_MAX_LORA_BYTES": "1000", "RYLA_API_TOKEN": "secret",
             "RYLA_DATA_DIR": "/tmp/x", "HOME": "/root"}
    assert container_env(shell) == {"RYLA_MODAL_GPU": "L40S", "RYLA_MAX_LORA_BYTES": "1000"}
