"""backend/model_download.py against a fake Hugging Face hub (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.model_download import STAGING_DIRNAME, download_missing, select, target_path
from workflows.manifest import ModelFile


def entry(name: str, size: int, *, folder: str = "vae", gated: bool = False,
          pipelines: tuple[str, ...] = ("flux-dev",), local_name: str | None = None) -> ModelFile:
    return ModelFile("org/repo", f"sub/{name}", folder, size, gated, pipelines, local_name or name)


class FakeHub:
    """Writes `sizes[filename]` bytes where hf_hub_download would, and records calls."""

    def __init__(self, sizes: dict[str, int], fail: dict[str, Exception] | None = None) -> None:
        self.sizes, self.fail, self.calls = sizes, fail or {}, []

    def __call__(self, *, repo_id: str, filename: str, local_dir: str, token: str | None) -> str:
        self.calls.append({"repo_id": repo_id, "filename": filename, "token": token})
        if filename in self.fail:
            raise self.fail[filename]
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"x" * self.sizes[filename])
        return str(out)


def put(models: Path, e: ModelFile, size: int) -> Path:
    p = target_path(models, e)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"y" * size)
    return p


def test_downloads_only_missing_files_and_reports(tmp_path: Path) -> None:
    have, missing = entry("a.safetensors", 10), entry("b.safetensors", 20, folder="insightface",
                                                       local_name="models/antelopev2/b.onnx")
    put(tmp_path, have, 10)
    hub = FakeHub({"sub/b.safetensors": 20})
    report = download_missing([have, missing], tmp_path, hub_download=hub, log=lambda _: None)
    assert [c["filename"] for c in hub.calls] == ["sub/b.safetensors"]
    assert (tmp_path / "insightface/models/antelopev2/b.onnx").stat().st_size == 20
    assert [f.path for f in report.present] == ["vae/a.safetensors"]
    assert [f.path for f in report.downloaded] == ["insightface/models/antelopev2/b.onnx"]
    assert report.ok and report.bytes_downloaded == 20
    assert not (tmp_path / STAGING_DIRNAME).exists()
    # a second run (a restart) downloads nothing
    again = download_missing([have, missing], tmp_path, hub_download=hub, log=lambda _: None)
    assert len(hub.calls) == 1 and len(again.present) == 2 and not again.downloaded


def test_refuses_a_download_of_the_wrong_size(tmp_path: Path) -> None:
    e = entry("c.safetensors", 30)
    report = download_missing([e], tmp_path, hub_download=FakeHub({"sub/c.safetensors": 29}),
                              log=lambda _: None)
    assert not report.ok
    assert report.failed[0].path == "vae/c.safetensors"
    assert "29" in report.failed[0].reason and "30" in report.failed[0].reason
    assert not target_path(tmp_path, e).exists()
    assert not (tmp_path / STAGING_DIRNAME).exists()  # nothing half-installed left behind
    assert "FAILED" in report.summary()


def test_present_file_of_wrong_size_is_downloaded_again(tmp_path: Path) -> None:
    e = entry("d.safetensors", 40)
    put(tmp_path, e, 7)  # an interrupted earlier copy
    hub = FakeHub({"sub/d.safetensors": 40})
    report = download_missing([e], tmp_path, hub_download=hub, log=lambda _: None)
    assert len(hub.calls) == 1 and report.ok
    assert target_path(tmp_path, e).stat().st_size == 40


def test_gated_files_need_a_token_which_is_passed_to_the_hub(tmp_path: Path) -> None:
    e = entry("g.safetensors", 5, gated=True)
    hub = FakeHub({"sub/g.safetensors": 5})
    no_token = download_missing([e], tmp_path, hub_download=hub, token=None, log=lambda _: None)
    assert hub.calls == [] and "HF_TOKEN" in no_token.failed[0].reason
    with_token = download_missing([e], tmp_path, hub_download=hub, token="hf_secret", log=lambda _: None)
    assert with_token.ok and hub.calls[0]["token"] == "hf_secret"


def test_a_hub_error_fails_that_file_and_the_rest_continue(tmp_path: Path) -> None:
    bad, good = entry("e.safetensors", 3), entry("f.safetensors", 4)
    hub = FakeHub({"sub/f.safetensors": 4}, fail={"sub/e.safetensors": OSError("connection reset")})
    report = download_missing([bad, good], tmp_path, hub_download=hub, log=lambda _: None)
    assert [f.path for f in report.failed] == ["vae/e.safetensors"]
    assert "connection reset" in report.failed[0].reason
    assert [f.path for f in report.downloaded] == ["vae/f.safetensors"]
    assert report.as_dict()["failed"] == {"vae/e.safetensors": report.failed[0].reason}


def test_select_by_pipeline() -> None:
    a = entry("a", 1, pipelines=("flux-dev", "pulid"))
    b = entry("b", 1, pipelines=("wan2",))
    assert select([a, b], ["pulid"]) == [a]
    assert select([a, b], []) == [a, b]
    with pytest.raises(ValueError, match="nope"):
        select([a, b], ["nope"])
