"""GET /models, GET /health, the JSON shapes the client relies on."""

from __future__ import annotations

import httpx

from workflows.manifest import MODEL_MANIFEST


def test_models_reports_present_and_missing(backend_server):
    backend_server.double.set_installed({})  # the models directory both of them read
    first = MODEL_MANIFEST[0]
    path = backend_server.settings.models_dir / first.folder / first.local_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)
    report = httpx.get(f"{backend_server.url}/models").json()
    assert len(report) == len(MODEL_MANIFEST)
    by_name = {(m["folder"], m["local_name"]): m for m in report}
    hit = by_name[(first.folder, first.local_name)]
    assert hit["status"] == "present" and hit["installed_bytes"] == 10
    assert hit["size_bytes"] == first.size_bytes and hit["repo_id"] == first.repo_id
    others = [m for key, m in by_name.items() if key != (first.folder, first.local_name)]
    assert others and all(m["status"] == "missing" for m in others)


def test_models_reports_z_image_files_and_the_shared_vae(backend_server):
    backend_server.double.set_installed({})
    vae = backend_server.settings.models_dir / "vae" / "ae.safetensors"
    vae.parent.mkdir(parents=True, exist_ok=True)
    vae.write_bytes(b"x" * 3)
    report = httpx.get(f"{backend_server.url}/models").json()
    z_image = {m["local_name"]: m for m in report if "z-image" in m["pipelines"]}
    assert set(z_image) == {"z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"}
    dit = z_image["z_image_turbo_bf16.safetensors"]
    assert (dit["folder"], dit["repo_id"], dit["size_bytes"], dit["gated"], dit["status"]) == (
        "diffusion_models", "Comfy-Org/z_image_turbo", 12_309_866_400, False, "missing")
    assert z_image["qwen_3_4b.safetensors"]["folder"] == "text_encoders"
    assert z_image["ae.safetensors"]["status"] == "present"
    assert "flux-schnell" in z_image["ae.safetensors"]["pipelines"]


def test_health_reports_comfyui(backend_server):
    body = httpx.get(f"{backend_server.url}/health").json()
    assert body["status"] == "ok"
    assert body["comfyui"]["reachable"] is True
    assert body["comfyui"]["queue_remaining"] == 0
    assert body["comfyui"]["version"] == "0.12.1"


def test_head_health_answers_200_for_uptime_checkers(backend_server_factory):
    server = backend_server_factory(api_token="secret")  # /health stays open with a token
    r = httpx.head(f"{server.url}/health")
    assert r.status_code == 200 and r.content == b""
