"""Small things several test areas build: a free loopback port, a well-formed
safetensors file, a model-free ComfyUI graph."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; also used as a closed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def safetensors_bytes(tensors: int = 2) -> bytes:
    """A small, well-formed safetensors file with `tensors` 2x2 F16 tensors."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for i in range(tensors):
        header[f"lora_unet_{i}.weight"] = {"dtype": "F16", "shape": [2, 2],
                                          "data_offsets": [offset, offset + 8]}
        offset += 8
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


BLUR_CHAIN_SAVE = "99"  # the SaveImage of blur_chain


def blur_chain(blurs: int, size: int, prefix: str, color: int = 0x336699) -> dict:
    """EmptyImage -> ImageBlur x `blurs` -> SaveImage: a graph a ComfyUI runs without any
    model, node by node (ids "1", "2", ..., then BLUR_CHAIN_SAVE)."""
    graph: dict = {"1": {"class_type": "EmptyImage", "inputs": {
        "width": size, "height": size, "batch_size": 1, "color": color}}}
    previous = "1"
    for index in range(blurs):
        node_id = str(index + 2)
        graph[node_id] = {"class_type": "ImageBlur",
                          "inputs": {"image": [previous, 0], "blur_radius": 5, "sigma": 1.0}}
        previous = node_id
    graph[BLUR_CHAIN_SAVE] = {"class_type": "SaveImage",
                              "inputs": {"images": [previous, 0], "filename_prefix": prefix}}
    return graph
