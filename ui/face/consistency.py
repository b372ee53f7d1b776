"""Face consistency, measured with dlib's face-recognition ResNet.

One module for the studio, `ryla score` and the tests: detect the face in a reference and in
each output of a character sheet, compare 128-d identity descriptors, and report per output
the distance, a similarity in percent (the documented mapping in `similarity_percent`) and
pass/fail against a threshold, plus a summary for the whole sheet.

The weights come from the `face_recognition_models` package, so nothing is downloaded at run
time. Calibration (what the threshold and the percentages mean): SIMILARITY_ANCHORS and
`similarity_percent` below, measured by tests/face/test_similarity_mapping.py.
"""

from __future__ import annotations

import io
import itertools
import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = Union[str, Path, bytes, bytearray, Image.Image]

DEFAULT_THRESHOLD = 0.6
"""dlib's usual same-person threshold on the Euclidean descriptor distance."""

DETECT_MAX_SIDE = 800
"""Images are scaled to at most this side before HOG detection: a 1024x1024 image detects in
~50 ms instead of ~80 ms, and faces down to ~10 % of the image side are still found."""

DESCRIBE_MAX_SIDE = 1024
"""The descriptor is computed on the image scaled to at most this side: dlib aligns the face to
a 150x150 chip, so more pixels add time, not accuracy."""

SIMILARITY_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.00, 100.0),  # identical descriptors
    (0.40, 88.0),  # middle of the measured same-person range 0.38-0.43 -> "85-90 %"
    (0.60, 75.0),  # dlib's threshold: below 75 % is "not the same person"
    (1.00, 0.0),  # different people measure 0.76-0.85 (45-28 %); beyond 1.0 is 0 %
)
"""(distance, percent) anchors of the piecewise-linear, strictly decreasing mapping."""

NO_FACE = "no face found"
UNREADABLE = "not a readable image (use PNG, JPEG or WebP)"


class FaceConsistencyError(Exception):
    """Base class of the errors this module raises."""


class FaceModelsMissing(FaceConsistencyError):
    """The dlib weights could not be loaded."""


class InvalidImage(FaceConsistencyError):
    """An input is not a readable image."""


class ReferenceFaceNotFound(FaceConsistencyError):
    """The reference has no face, so nothing can be compared with it."""


@dataclass(frozen=True)
class FaceDetection:
    """The face used from one image: descriptor and box (in the oriented image's pixels)."""

    faces: int
    descriptor: np.ndarray | None = field(default=None, repr=False, compare=False)
    box: tuple[int, int, int, int] | None = None  # left, top, right, bottom

    @property
    def found(self) -> bool:
        return self.descriptor is not None


@dataclass(frozen=True)
class FaceResult:
    """The score of one output against the reference."""

    path: str
    faces: int
    distance: float | None
    similarity: float | None
    passed: bool
    box: tuple[int, int, int, int] | None = None
    thumbnail: Image.Image | None = field(default=None, repr=False, compare=False)
    readable: bool = True  # False: the file is not an image; it has its row, not a score

    @property
    def note(self) -> str:
        """What a creator reads next to the score."""
        if not self.readable:
            return UNREADABLE
        if self.faces == 0:
            return NO_FACE
        if self.faces > 1:
            return f"{self.faces} faces: used the largest"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "distance": self.distance,
            "similarity": self.similarity,
            "pass": self.passed,
            "faces": self.faces,
            "readable": self.readable,
        }


@dataclass(frozen=True)
class SheetReport:
    """A reference, the scores of every output, and the summary of the sheet."""

    reference: str
    reference_faces: int
    threshold: float
    results: tuple[FaceResult, ...]
    pairwise_distances: tuple[tuple[int, int, float], ...]  # (i, j, distance) among outputs
    reference_box: tuple[int, int, int, int] | None = None
    reference_thumbnail: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def scored(self) -> tuple[FaceResult, ...]:
        return tuple(r for r in self.results if r.distance is not None)

    def summary(self) -> dict[str, Any]:
        scored = self.scored
        sims = [r.similarity for r in scored if r.similarity is not None]
        dists = [r.distance for r in scored if r.distance is not None]
        passed = sum(r.passed for r in self.results)
        pair_d = [d for _, _, d in self.pairwise_distances]
        count = len(self.results)
        return {
            "reference": self.reference,
            "reference_faces": self.reference_faces,
            "threshold": self.threshold,
            "count": count,
            "scored": len(scored),
            "no_face": sum(1 for r in self.results if r.readable and r.distance is None),
            "unreadable": sum(1 for r in self.results if not r.readable),
            "passed": passed,
            # No-face outputs count as not passing: the share is over every output.
            "pass_rate": _round(passed / count) if count else None,
            "mean_similarity": _round(float(np.mean(sims))) if sims else None,
            "min_similarity": _round(min(sims)) if sims else None,
            "mean_distance": _round(float(np.mean(dists))) if dists else None,
            "max_distance": _round(max(dists)) if dists else None,
            "pairwise": {
                "pairs": len(pair_d),
                "mean_distance": _round(float(np.mean(pair_d))) if pair_d else None,
                "max_distance": _round(max(pair_d)) if pair_d else None,
                "mean_similarity": (
                    _round(float(np.mean([similarity_percent(d) for d in pair_d])))
                    if pair_d
                    else None
                ),
                "min_similarity": _round(similarity_percent(max(pair_d))) if pair_d else None,
                "consistent": all(d <= self.threshold for d in pair_d) if pair_d else None,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "summary": self.summary()}


def _round(value: float) -> float:
    return round(value, 4)


def similarity_percent(distance: float) -> float:
    """Map a descriptor distance to a similarity in percent (piecewise-linear on the anchors).

    Strictly decreasing from 100 % at distance 0 to 0 % at distance 1.0, clamped beyond.
    """
    if math.isnan(distance) or distance < 0:
        raise ValueError(f"a descriptor distance is a number >= 0, got {distance!r}")
    xs = [d for d, _ in SIMILARITY_ANCHORS]
    ys = [p for _, p in SIMILARITY_ANCHORS]
    return round(float(np.interp(distance, xs, ys)), 2)


def load_image(image: ImageInput) -> Image.Image:
    """An RGB image, turned upright by its EXIF orientation, transparency composited on white."""
    try:
        if isinstance(image, Image.Image):
            img = image
        elif isinstance(image, (bytes, bytearray)):
            img = Image.open(io.BytesIO(bytes(image)))
        else:
            img = Image.open(Path(image))
        img.load()
    except FileNotFoundError as exc:
        raise InvalidImage(f"{image}: no such file; check the path") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidImage(
            f"{_label(image, 'the image')}: not a readable image ({exc}); use a PNG, JPEG or WebP file"
        ) from exc
    img = ImageOps.exif_transpose(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        # Generated PNGs often carry transparent black; on white they look as a viewer shows them.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _scaled(img: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    scale = min(1.0, max_side / max(img.size))
    if scale >= 1.0:
        return img, 1.0
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BILINEAR), scale


def _label(image: ImageInput, default: str) -> str:
    """The path a result is reported under: the file's path, else `default`."""
    if isinstance(image, (str, Path)):
        return str(image)
    filename = getattr(image, "filename", "") if isinstance(image, Image.Image) else ""
    return str(filename) if filename else default


class FaceScorer:
    """dlib's detector, landmark model and descriptor network, loaded once.

    Safe to share between threads: dlib's network keeps per-call state in its layers, so
    calls into dlib are serialised by a lock (image decoding and scaling run outside it).
    """

    def __init__(self) -> None:
        try:
            import dlib

            with warnings.catch_warnings():
                # face_recognition_models imports pkg_resources, which warns on import.
                warnings.simplefilter("ignore")
                import face_recognition_models as weights

            self._detector = dlib.get_frontal_face_detector()
            self._landmarks = dlib.shape_predictor(weights.pose_predictor_model_location())
            self._network = dlib.face_recognition_model_v1(
                weights.face_recognition_model_location()
            )
        except (ImportError, RuntimeError) as exc:
            raise FaceModelsMissing(
                f"could not load the dlib face models ({exc}); install them with "
                "`pip install dlib-bin face_recognition_models==0.3.0 setuptools<81`"
            ) from exc
        self._dlib = dlib
        self._lock = threading.Lock()

    def detect(self, image: ImageInput) -> FaceDetection:
        """The largest face of an image and how many faces it has."""
        return self._detect_loaded(load_image(image))

    def _detect_loaded(self, img: Image.Image) -> FaceDetection:
        work, work_scale = _scaled(img, DESCRIBE_MAX_SIDE)
        small, small_scale = _scaled(work, DETECT_MAX_SIDE)
        small_arr = np.asarray(small)
        work_arr = np.asarray(work)
        with self._lock:
            rects, scores, _ = self._detector.run(small_arr, 0, 0)
            if not rects:
                # One retry at twice the size finds faces down to ~5 % of the image side;
                # it costs time only on images that have no face at the first try.
                rects, scores, _ = self._detector.run(small_arr, 1, 0)
            if not rects:
                return FaceDetection(faces=0)
            # Largest box; on equal boxes the surer detection.
            rect, _ = max(zip(rects, scores), key=lambda rs: (rs[0].area(), rs[1]))
            k = 1.0 / small_scale
            box = self._dlib.rectangle(
                round(rect.left() * k),
                round(rect.top() * k),
                round(rect.right() * k),
                round(rect.bottom() * k),
            )
            shape = self._landmarks(work_arr, box)
            descriptor = np.array(self._network.compute_face_descriptor(work_arr, shape, 0))
        k = 1.0 / work_scale
        orig_box = (
            round(box.left() * k),
            round(box.top() * k),
            round(box.right() * k),
            round(box.bottom() * k),
        )
        return FaceDetection(faces=len(rects), descriptor=descriptor, box=orig_box)

    def score_sheet(
        self,
        reference: ImageInput,
        images: Sequence[ImageInput],
        threshold: float = DEFAULT_THRESHOLD,
        *,
        labels: Sequence[str] | None = None,
        thumbnail_side: int = 256,
    ) -> SheetReport:
        """Score every image against the reference; an image without a face is reported, not raised.

        Raises InvalidImage for an unreadable reference and ReferenceFaceNotFound when it has
        no face; an unreadable output gets its own result (`readable` False) and the others
        are still scored.
        """
        if not (threshold > 0):
            raise ValueError(f"threshold is a distance > 0 (dlib's usual is 0.6), got {threshold!r}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images; give one per image")
        ref_label = _label(reference, "reference")
        ref_img = load_image(reference)
        ref = self._reference_face(ref_img, ref_label)
        results: list[FaceResult] = []
        descriptors: list[np.ndarray | None] = []
        for i, image in enumerate(images):
            label = labels[i] if labels is not None else _label(image, f"image-{i + 1}")
            result, descriptor = self._score_output(image, label, ref, threshold, thumbnail_side)
            results.append(result)
            descriptors.append(descriptor)
        return SheetReport(
            reference=ref_label,
            reference_faces=ref.faces,
            threshold=threshold,
            results=tuple(results),
            pairwise_distances=_pairwise_distances(descriptors),
            reference_box=ref.box,
            reference_thumbnail=_thumbnail(ref_img, thumbnail_side),
        )

    def _reference_face(self, img: Image.Image, label: str) -> FaceDetection:
        ref = self._detect_loaded(img)
        if ref.descriptor is None:
            raise ReferenceFaceNotFound(
                f"{label}: no face found in the reference; use a photo where one face is "
                "clearly visible, upright and at least ~10 % of the image height"
            )
        return ref

    def _score_output(self, image: ImageInput, label: str, ref: FaceDetection, threshold: float,
                      thumbnail_side: int) -> tuple[FaceResult, np.ndarray | None]:
        """One output's result against the reference's face, and its descriptor; an
        unreadable file is a result of its own, so the rest of the sheet is still scored."""
        try:
            img = load_image(image)
        except InvalidImage:
            return FaceResult(label, 0, None, None, False, readable=False), None
        det = self._detect_loaded(img)
        thumb = _thumbnail(img, thumbnail_side)
        if det.descriptor is None:
            return FaceResult(label, 0, None, None, False, None, thumb), None
        distance = float(np.linalg.norm(det.descriptor - ref.descriptor))
        result = FaceResult(path=label, faces=det.faces, distance=_round(distance),
                            similarity=similarity_percent(distance), passed=distance <= threshold,
                            box=det.box, thumbnail=thumb)
        return result, det.descriptor


def _pairwise_distances(descriptors: Sequence[np.ndarray | None]) -> tuple[tuple[int, int, float], ...]:
    """(i, j, distance) between every two outputs that have a face: how alike the sheet is."""
    return tuple(
        (i, j, _round(float(np.linalg.norm(a - b))))
        for (i, a), (j, b) in itertools.combinations(enumerate(descriptors), 2)
        if a is not None and b is not None
    )


def _thumbnail(img: Image.Image, side: int) -> Image.Image:
    thumb = img.copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    thumb.info["source_size"] = img.size  # lets the contact sheet scale face boxes
    return thumb


_default_scorer: FaceScorer | None = None
_default_lock = threading.Lock()


def default_scorer() -> FaceScorer:
    """The process-wide scorer: the models load on first use, once."""
    global _default_scorer
    with _default_lock:
        if _default_scorer is None:
            _default_scorer = FaceScorer()
        return _default_scorer


def score_sheet(
    reference: ImageInput,
    images: Sequence[ImageInput],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    labels: Sequence[str] | None = None,
) -> SheetReport:
    """Score a character sheet with the shared scorer (see FaceScorer.score_sheet)."""
    return default_scorer().score_sheet(reference, images, threshold, labels=labels)
