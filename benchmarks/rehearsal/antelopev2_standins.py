"""STAND-INS for insightface's antelopev2 ONNX models, for the GPU rehearsal only.

antelopev2 (scrfd_10g_bnkps, 1k3d68, 2d106det, genderage, glintr100) is published only
as trained ONNX files, which cannot be fetched on the rehearsal machine, and no library
class rebuilds them. These files have the SAME inputs and outputs (names, shapes, output
count and order), so insightface's model zoo recognises each as the real one and the
InstantID / PuLID nodes run their whole code path. What they compute is not a face
model: the detector always reports one face (a 256 px box with plausible 5-point
landmarks) in its 640x640 input, the landmark models return insightface's mean face
shape, and the recognition model returns a 512-d embedding that depends on the image's
mean colour. They are marked as stand-ins in each file's metadata
(`ryla_standin=true`) and must never reach a deployment.

Usage: python antelopev2_standins.py OUT_DIR   (needs numpy and onnx)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DET_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
FACE_HALF_PX = 128.0  # the reported face box is 256x256 px, centred in the input
# Five landmarks (eyes, nose, mouth corners) in px from the box centre.
FACE_KPS_PX = np.array([[-45, -30], [45, -30], [0, 10], [-35, 55], [35, 55]], np.float32)


def _model(name: str, input_shape: list[int], outputs: dict[str, np.ndarray],
           embedding_from_colour: bool = False) -> onnx.ModelProto:
    """A graph whose outputs are constants (plus 0 x the input's mean, so the input is
    used), or, for the recognition model, a linear map of the input's mean colour."""
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean"], keepdims=0, name="standin_mean"),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"], name="standin_zero"),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph_outputs = []
    for out_name, value in outputs.items():
        const = f"{out_name}_value"
        inits.append(numpy_helper.from_array(value.astype(np.float32), const))
        if embedding_from_colour:
            rng = np.random.default_rng(7)
            inits.append(numpy_helper.from_array(rng.normal(0, 1, (3, value.shape[1])).astype(np.float32), "colour_map"))
            nodes += [
                helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"], name="standin_pool"),
                helper.make_node("Flatten", ["pooled"], ["colour"], axis=1, name="standin_flatten"),
                helper.make_node("MatMul", ["colour", "colour_map"], ["mapped"], name="standin_map"),
                helper.make_node("Add", ["mapped", const], [out_name], name=f"standin_{out_name}"),
            ]
        else:
            nodes.append(helper.make_node("Add", [const, "nothing"], [out_name], name=f"standin_{out_name}"))
        graph_outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, input_shape)],
        graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    helper.set_model_props(model, {"ryla_standin": "true",
                                   "what": f"rehearsal stand-in for antelopev2 {name}; not a face model"})
    onnx.checker.check_model(model)
    return model


def detector() -> onnx.ModelProto:
    """SCRFD's 9 outputs: scores, box distances and landmarks for strides 8, 16, 32."""
    scores, boxes, kps = {}, {}, {}
    for stride in STRIDES:
        cells = DET_SIZE // stride
        n = cells * cells * ANCHORS_PER_CELL
        s = np.full((n, 1), 0.01, np.float32)
        b = np.full((n, 4), FACE_HALF_PX / stride, np.float32)
        k = np.tile((FACE_KPS_PX / stride).reshape(1, 10), (n, 1))
        if stride == 32:  # one confident face, on the anchor at the input's centre
            s[(cells // 2 * cells + cells // 2) * ANCHORS_PER_CELL] = 0.95
        scores[f"score_{stride}"], boxes[f"bbox_{stride}"], kps[f"kps_{stride}"] = s, b, k
    return _model("scrfd_10g_bnkps", [1, 3, DET_SIZE, DET_SIZE], {**scores, **boxes, **kps})


def landmark_3d68() -> onnx.ModelProto:
    from insightface.data import get_object  # insightface's own mean face shape

    mean = get_object("meanshape_68.pkl").astype(np.float32)  # (68, 3), about [-0.6, 0.6]
    pred = np.zeros((3309 // 3, 3), np.float32)
    pred[-68:] = mean * 0.8
    return _model("1k3d68", [1, 3, 192, 192], {"fc1": pred.reshape(1, 3309)})


def landmark_2d106() -> onnx.ModelProto:
    angles = np.linspace(0, 2 * np.pi, 106, endpoint=False)
    pts = np.stack([0.5 * np.cos(angles), 0.6 * np.sin(angles)], axis=1).astype(np.float32)
    return _model("2d106det", [1, 3, 192, 192], {"fc1": pts.reshape(1, 212)})


def genderage() -> onnx.ModelProto:
    return _model("genderage", [1, 3, 96, 96], {"fc1": np.array([[0.2, 0.8, 0.3]], np.float32)})


def recognition() -> onnx.ModelProto:
    bias = np.random.default_rng(0).normal(0, 1, (1, 512)).astype(np.float32)
    return _model("glintr100", [1, 3, 112, 112], {"683": bias}, embedding_from_colour=True)


FILES = {
    "scrfd_10g_bnkps.onnx": detector,
    "1k3d68.onnx": landmark_3d68,
    "2d106det.onnx": landmark_2d106,
    "genderage.onnx": genderage,
    "glintr100.onnx": recognition,
}


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in FILES.items():
        path = out_dir / name
        onnx.save(build(), str(path))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1])):
        print(p, p.stat().st_size, "bytes (stand-in)")
