"""Checking and decoding untrusted image uploads.

Every byte here comes from a stranger's phone (or from someone pretending to be
one), so it is handled defensively: a whitelist of formats, size and pixel caps
checked from the header before any pixel is decoded, truncated files refused when
decoded, and no metadata (GPS position, device serials, comments) kept.

On upload (``prepare_photo``) a JPEG or PNG is not decoded at all: its metadata
segments are dropped (``ocr.strip``) and its EXIF orientation is returned, to be
applied when the worker decodes it (``decode_gray(orientation=...)``). Other
formats (WEBP, HEIC) and the rare JPEGs that cannot be stripped losslessly are
re-encoded to a fresh, upright JPEG (``sanitize_photo``).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, ImageOps

from ocr import strip

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


# EXIF orientation -> the transposition that makes the picture upright (as
# ImageOps.exif_transpose does).
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What ImageRejected reasons mean "these bytes do not decode to a picture" (as
# opposed to "a picture we cannot read"): a stored photo that fails so in the
# worker is rejected, as the upload would have been had it been decoded then.
UNDECODABLE = frozenset(
    {"not_an_image", "truncated_image", "too_many_pixels", "unsupported_format"}
)


@dataclass(frozen=True)
class PreparedPhoto:
    """An upload made fit to store: no metadata byte left in ``data``."""

    data: bytes
    sha256: str
    format: str  # "JPEG" or "PNG" (stripped) or "JPEG" (re-encoded)
    width: int
    height: int
    orientation: int | None  # EXIF orientation (2..8) to apply when decoding; None: upright
    reencoded: bool


def _check_header(stripped: strip.Stripped, max_pixels: int, min_side: int) -> None:
    width, height = stripped.width, stripped.height
    if width <= 0 or height <= 0:
        raise ImageRejected("not_an_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image has {width}x{height} pixels, more than the {max_pixels} allowed.",
        )
    if min(width, height) < min_side:
        raise ImageRejected(
            "too_small",
            f"The image is {width}x{height} pixels; both sides must be at least {min_side}.",
        )


def strip_photo(
    data: bytes,
    *,
    max_bytes: int = 15_000_000,
    max_pixels: int = 40_000_000,
    min_side: int = 200,
) -> PreparedPhoto | None:
    """``prepare_photo``'s cheap part: a JPEG or PNG validated from its header and
    stripped of its metadata without decoding a pixel (``ocr.strip``); None for a
    photo that must be decoded and re-encoded instead (other formats, JPEGs that
    cannot be stripped losslessly). Refusals as ``prepare_photo``'s. Deterministic.
    """
    if len(data) > max_bytes:
        raise ImageRejected(
            "too_large", f"The file is {len(data)} bytes, more than the {max_bytes} allowed."
        )
    try:
        if data.startswith(strip.JPEG_SOI):
            stripped = strip.strip_jpeg(data)
        elif data.startswith(strip.PNG_SIGNATURE):
            stripped = strip.strip_png(data)
        else:
            return None
    except strip.Malformed as exc:
        raise ImageRejected("malformed_image", f"The image file is damaged: {exc}.") from exc
    except strip.NotStrippable:
        return None
    _check_header(stripped, max_pixels, min_side)
    return PreparedPhoto(
        stripped.data,
        hashlib.sha256(stripped.data).hexdigest(),
        stripped.format,
        stripped.width,
        stripped.height,
        stripped.orientation,
        reencoded=False,
    )


def prepare_photo(
    data: bytes,
    *,
    max_bytes: int = 15_000_000,
    max_pixels: int = 40_000_000,
    min_side: int = 200,
    decoding: AbstractContextManager[object] | None = None,
) -> PreparedPhoto:
    """Validate an upload from its header and remove its metadata, without decoding a
    pixel for JPEG and PNG (``strip_photo``); other formats, and JPEGs that cannot be
    stripped losslessly, are re-encoded (``sanitize_photo``, which decodes, holding
    ``decoding``: the caller's bound on how many decode at once). A broken container is
    ``ImageRejected("malformed_image")``; pixels that do not decode are found later,
    by whoever decodes the stored photo. Deterministic.
    """
    stripped = strip_photo(data, max_bytes=max_bytes, max_pixels=max_pixels, min_side=min_side)
    if stripped is not None:
        return stripped
    with decoding if decoding is not None else nullcontext():
        clean = sanitize_photo(data, max_bytes=max_bytes, max_pixels=max_pixels, min_side=min_side)
    return PreparedPhoto(
        clean.jpeg, clean.sha256, "JPEG", clean.width, clean.height, None, reencoded=True
    )


def decode_gray(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    max_side: int | None = None,
    orientation: int | None = None,
) -> np.ndarray:
    """Decode an upload to an upright uint8 grayscale array.

    With `max_side`, a JPEG is decoded at a reduced DCT scale when that still
    leaves at least `max_side` pixels on the long side: far cheaper than
    decoding a 4000-px photo in full only to shrink it. `orientation` is the EXIF
    orientation read before the file was stripped (``prepare_photo``); without it,
    the file's own EXIF orientation, if any, is applied.
    """
    # "L": also asks libjpeg for grayscale output, which skips the colour conversion.
    img = _decoded_upright(data, max_pixels, max_side, orientation, "L")
    if img.mode != "L":
        img = _to_rgb(img).convert("L")
    return np.asarray(img, dtype=np.uint8).copy()


def decode_rgb(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    max_side: int | None = None,
    orientation: int | None = None,
) -> np.ndarray | None:
    """As ``decode_gray``, in colour: an upright uint8 RGB array, or None for a photo
    that is not plain RGB (grey, or with transparency)."""
    img = _decoded_upright(data, max_pixels, max_side, orientation, "RGB")
    if img.mode != "RGB":
        return None
    return np.asarray(img, dtype=np.uint8).copy()


def _decoded_upright(
    data: bytes, max_pixels: int, max_side: int | None, orientation: int | None, mode: str
) -> Image.Image:
    """The checked upload decoded (a JPEG at the reduced DCT scale that still leaves
    ``max_side`` pixels, in ``mode`` where libjpeg can), turned upright."""
    img = _open_checked(data, max_pixels)
    if max_side is not None and img.format == "JPEG":
        width, height = img.size
        factor = max(1.0, max(width, height) / max_side)
        img.draft(mode, (int(width / factor) + 1, int(height / factor) + 1))
    _load_fully(img)
    if orientation is None:
        return _upright(img)
    if orientation in _ORIENT:
        return img.transpose(_ORIENT[orientation])
    return img


def upright_photo(data: bytes, orientation: int | None, *, max_pixels: int = 40_000_000) -> bytes:
    """A stored photo as a person should see it: ``data`` itself when it is upright
    (``orientation`` None), else decoded, turned by its EXIF ``orientation`` (kept in
    the submission's row since the file was stripped) and re-encoded as a JPEG. For
    showing a photo (the review pages), never for storing one."""
    if orientation not in _ORIENT:
        return data
    img = _open_checked(data, max_pixels)
    _load_fully(img)
    fresh = _to_rgb(img.transpose(_ORIENT[orientation]))
    buf = io.BytesIO()
    fresh.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
