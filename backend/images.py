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

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
DATA_URL_RE = re.compile(r"^data:([\w/+.-]*)(;[\w=.-]+)*;base64,", re.IGNORECASE)
MAX_IMAGE_BYTES = 20 * 1024 * 1024


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


def to_png(data: bytes, field: str, max_pixels: int) -> bytes:
    """Decode a JPEG/PNG/WebP safely, apply its EXIF orientation, return it as RGB PNG."""
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
                img.load()
                oriented = ImageOps.exif_transpose(img)
                rgb = oriented.convert("RGB")
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
