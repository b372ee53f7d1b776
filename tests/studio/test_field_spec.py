"""Adding a field to a tab is one edit of its spec: the field appears in the tab, reaches
the request, is kept in history and is restored by "use these settings again"."""

from __future__ import annotations

from pathlib import Path

from gradio_client import Client
from PIL import Image

from tests.studio.conftest import running_studio
from ui.studio.fields import Field
from ui.studio.flux_tab import FIELDS as FLUX_FIELDS
from workflows.request_models import FluxDevRequest

# `format` is a field of every image request that the Flux tab does not offer.
FORMAT = Field("format", "radio", FluxDevRequest, label="Image format", row="model")


def test_a_field_added_to_a_spec_reaches_the_request_history_and_reuse(
        backend_server, tmp_path: Path) -> None:
    fields = (*FLUX_FIELDS, FORMAT)
    with running_studio(backend_server.url, tmp_path / "data", fields={"flux": fields}) as studio:
        app_info = Client(studio.url, verbose=False).view_api(print_info=False, return_format="dict")
        # In the tab: a component with its elem_id, choices and default from the model.
        config = _component(studio, "flux-format")
        assert config["props"]["choices"] == [["jpeg", "jpeg"], ["png", "png"]]
        assert config["props"]["value"] == "jpeg" and config["props"]["label"] == "Image format"
        parameters = [p["parameter_name"]
                      for p in app_info["named_endpoints"]["/generate_flux"]["parameters"]]
        assert parameters[-1] == "format"

        client = Client(studio.url, verbose=False)
        gallery, _, _ = client.predict(
            prompt="a red fox", negative_prompt="", size="512×512 draft", steps=4, guidance=3.5,
            seed="7", model="Dev", batch=1, format="png",
            api_name="/generate_flux")[:3]
        # Reached the request: the backend answered in the format the field asked for.
        with Image.open(gallery[0]["image"]) as img:
            assert img.format == "PNG"
        item = studio.history.items()[0]
        assert item.params["format"] == "png" and item.files[0].endswith(".png")

        restored = client.predict(item.id, api_name="/reuse_settings")
        flux_values = dict(zip([f.name for f in fields], restored[:len(fields)]))
        assert flux_values["format"] == "png"
        assert flux_values["prompt"] == "a red fox" and flux_values["seed"] == "7"


def _component(studio, elem_id: str) -> dict:
    import requests

    config = requests.get(f"{studio.url}config", timeout=30).json()
    return next(c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
