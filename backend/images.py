"""Safe decoding of images that users send: size limits, formats, EXIF orientation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import InvalidImage, PayloadTooLarge
from backend.memory import release_to_os

# MPO: a phone camera's JPEG with more pictures after the first (depth, preview); the
# first picture is the photo, and it is what Pillow decodes.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
DATA_URL_RE = re.compile(r"^data:([\w/+.-]*)(;[\w=.-]+)*;base64,", re.IGNORECASE)
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# A reference face is looked at by InsightFace at 640 px and aligned at 512 (InstantID,
# PuLID): larger references only cost memory, so they are scaled to fit this.
REFERENCE_MAX_SIDE = 2048


def decode_base64_image(value: str, field: str, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """Bytes of a data URL or bare base64 string; InvalidImage when it is neither."""
    text = value.strip()
    match = DATA_URL_RE.match(text)
    if match:
        text = text[match.end():]
    elif text.startswith("data:"):
        raise InvalidImage(f"{field} is a data URL without ';base64,'; send base64 image data",
                           field=field)
    text = re.sub(r"\s+", "", text)
    # base64 is 4/3 of the bytes: refuse before decoding something too large
    if len(text) * 3 // 4 > max_bytes:
        raise PayloadTooLarge(f"{field} is over the {max_bytes // (1024 * 1024)} MiB image limit",
                              field=field)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(f"{field} is not valid base64 or a data URL ({exc})", field=field) from exc


def to_png(data: bytes, field: str, max_pixels: int, max_side: int | None = None) -> bytes:
    """Decode a JPEG/PNG/WebP safely, apply its EXIF orientation, return it as RGB PNG,
    scaled down to fit `max_side` x `max_side` when given.

    A JPEG is decoded at reduced size when it can be (Pillow's draft mode: the JPEG
    decoder itself scales by 1/2, 1/4 or 1/8), so a 6320x6320 photo never becomes a
    120 MB bitmap when 2048 pixels are all that is needed."""
    try:
        return _to_png(data, field, max_pixels, max_side)
    finally:
        release_to_os()  # the decoded bitmaps are freed: hand their pages back


def _to_png(data: bytes, field: str, max_pixels: int, max_side: int | None) -> bytes:
    try:
        with warnings.catch_warnings():
            # Pillow warns (then errors) past its bomb limit; our own limit is checked
            # from the header before any pixel is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise InvalidImage(
                        f"{field} is {img.format or 'an unknown format'}; send JPEG, PNG or WebP",
                        field=field)
                width, height = img.size
                if width * height > max_pixels:
                    raise PayloadTooLarge(
                        f"{field} is {width}x{height} pixels; the limit is {max_pixels} pixels",
                        field=field)
                if max_side and img.format in ("JPEG", "MPO"):
                    img.draft("RGB", (max_side, max_side))  # decode at >= max_side, not more
                img.load()
                oriented = ImageOps.exif_transpose(img)
                rgb = oriented.convert("RGB")
                del oriented
                if max_side:
                    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS,
                                  reducing_gap=3.0)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PayloadTooLarge(f"{field} is too many pixels to decode safely ({exc})",
                              field=field) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(f"{field} is not an image Pillow can read; send JPEG, PNG or WebP",
                           field=field) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{field} is a damaged or truncated image ({exc})", field=field) from exc
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()


def content_name(png: bytes, prefix: str = "ryla") -> str:
    """A file name from the content, so that equal images share one ComfyUI upload."""
    return f"{prefix}-{hashlib.sha256(png).hexdigest()[:24]}.png"


def convert_format(data: bytes, fmt: str) -> bytes:
    """ComfyUI's SaveImage writes PNG; re-encode when the caller asked for JPEG."""
    if fmt != "jpeg":
        return data
    with Image.open(io.BytesIO(data)) as img:
        if img.format == "JPEG":
            return data
        out = io.BytesIO()
        img.convert("RGB").save(out, format="JPEG", quality=95)
        return out.getvalue()
