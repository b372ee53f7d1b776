"""Fixtures for the workflow tests: object_info as a deployment with every manifest
file installed reports it, and the request-model edges every pipeline must survive."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.manifest import MODEL_MANIFEST
from workflows.object_info import load_object_info, with_installed_files
from tests.workflows.graph_files import TEMPLATE_LORA_FILE, TEMPLATE_REFERENCE_IMAGE

UPLOADED_IMAGE = "ryla_ref_0001.png"
USER_LORA = "alice_v2.safetensors"


def manifest_installed() -> dict[str, list[str]]:
    installed: dict[str, list[str]] = {}
    for entry in MODEL_MANIFEST:
        installed.setdefault(entry.folder, []).append(entry.local_name)
    return installed


@pytest.fixture(scope="session")
def installed_object_info() -> dict[str, Any]:
    """Every manifest file installed, plus the templates' LoRA and reference image and
    a user LoRA and upload, as a deployment with them would report."""
    installed = manifest_installed()
    installed["loras"] = [TEMPLATE_LORA_FILE, USER_LORA]
    return with_installed_files(load_object_info(), installed,
                                input_images=[TEMPLATE_REFERENCE_IMAGE, UPLOADED_IMAGE])
