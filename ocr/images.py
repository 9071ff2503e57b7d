"""Decoding of untrusted image uploads.

Every byte here comes from a stranger's phone (or from someone pretending to be
one), so decoding is defensive: a whitelist of formats, size and pixel caps checked
before any pixel is decoded, truncated files refused, and re-encoding to a fresh
JPEG so that no metadata (GPS position, device serials, comments) survives.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, ImageOps

# HEIF is what iPhones take (HEIC: HEVC-coded HEIF), decoded by pillow-heif's
# libheif. Only the primary image is opened: no thumbnails, depth maps or auxiliary
# images, which would be more untrusted decoding for nothing. Ten-bit photos are
# converted to 8 bits when opened (pillow-heif's default).
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")

# Signatures of image formats we recognise but refuse, so the uploader is told
# "wrong format" rather than "not an image".
_KNOWN_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"P1", "PNM"),
    (b"P2", "PNM"),
    (b"P3", "PNM"),
    (b"P4", "PNM"),
    (b"P5", "PNM"),
    (b"P6", "PNM"),
    (b"%PDF", "PDF"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")

JPEG_QUALITY = 90


class ImageRejected(ValueError):
    """An upload that is not an acceptable photo; `reason` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class CleanPhoto:
    jpeg: bytes
    width: int
    height: int
    sha256: str


def _sniff_other_format(data: bytes) -> str | None:
    for magic, name in _KNOWN_OTHER_FORMATS:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp" and data[8:12] in _AVIF_BRANDS:
        return "AVIF"
    return None


def _looks_like_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open (but do not decode) an upload, refusing anything outside the whitelist.

    The pixel cap is checked from the header alone, before a single pixel is
    decoded: that is what defeats decompression bombs.
    """
    if not data:
        raise ImageRejected("not_an_image", "The upload is empty.")
    try:
        with warnings.catch_warnings():
            # PIL only warns below twice its own limit; treat the warning as fatal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", "The image has too many pixels.") from exc
    except Exception as exc:  # PIL raises many types on hostile headers
        other = _sniff_other_format(data)
        if other is not None:
            raise ImageRejected(
                "unsupported_format",
                f"{other} images are not accepted; send a JPEG, PNG, WEBP or HEIC photo.",
            ) from exc
        if data.startswith((b"\xff\xd8", b"\x89PNG", b"RIFF")) or _looks_like_heif(data):
            raise ImageRejected(
                "truncated_image", "The image file is damaged or incomplete."
            ) from exc
        raise ImageRejected("not_an_image", "The upload is not an image.") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected("not_an_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image has {width}x{height} pixels, more than the {max_pixels} allowed.",
        )
    return img


def _load_fully(img: Image.Image) -> None:
    # A truncated file must fail here rather than decode as a grey stripe.
    assert not ImageFile.LOAD_TRUNCATED_IMAGES, "truncated images must never be accepted"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", "The image has too many pixels.") from exc
    except Exception as exc:
        raise ImageRejected("truncated_image", "The image file is damaged or incomplete.") from exc


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a corrupt EXIF block just means "as stored"."""
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:
        return img
    return out if out is not None else img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas would otherwise turn black: put the picture on white paper.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def sanitize_photo(
    data: bytes,
    *,
    max_bytes: int = 15_000_000,
    max_pixels: int = 40_000_000,
    min_side: int = 200,
) -> CleanPhoto:
    """Validate an upload and re-encode it as a metadata-free, upright JPEG.

    Deterministic: the same input bytes always give the same output bytes.
    """
    if len(data) > max_bytes:
        raise ImageRejected(
            "too_large", f"The file is {len(data)} bytes, more than the {max_bytes} allowed."
        )
    img = _open_checked(data, max_pixels)
    if min(img.size) < min_side:
        raise ImageRejected(
            "too_small",
            f"The image is {img.size[0]}x{img.size[1]} pixels; "
            f"both sides must be at least {min_side}.",
        )
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # No phone takes these, and converting them costs several times the memory.
        raise ImageRejected(
            "unsupported_format", "16-bit and floating-point images are not accepted."
        )
    _load_fully(img)
    rgb = _to_rgb(_upright(img))
    # A brand-new image carries no `info`, so nothing (comment, XMP, ICC, EXIF)
    # can leak into the re-encoded file through PIL's metadata pass-through.
    fresh = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    buf = io.BytesIO()
    fresh.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    jpeg = buf.getvalue()
    return CleanPhoto(
        jpeg=jpeg,
        width=fresh.size[0],
        height=fresh.size[1],
        sha256=hashlib.sha256(jpeg).hexdigest(),
    )


def decode_gray(
    data: bytes, *, max_pixels: int = 40_000_000, max_side: int | None = None
) -> np.ndarray:
    """Decode an upload to an upright uint8 grayscale array.

    With `max_side`, a JPEG is decoded at a reduced DCT scale when that still
    leaves at least `max_side` pixels on the long side: far cheaper than
    decoding a 4000-px photo in full only to shrink it.
    """
    img = _open_checked(data, max_pixels)
    if max_side is not None and img.format == "JPEG":
        width, height = img.size
        # Also asks libjpeg for grayscale output, which skips the colour conversion.
        factor = max(1.0, max(width, height) / max_side)
        img.draft("L", (int(width / factor) + 1, int(height / factor) + 1))
    _load_fully(img)
    img = _upright(img)
    if img.mode != "L":
        img = _to_rgb(img).convert("L")
    return np.asarray(img, dtype=np.uint8).copy()
