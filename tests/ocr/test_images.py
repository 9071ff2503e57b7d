"""Hostile-upload decoding: metadata stripping, orientation and every rejection."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ocr.images import ImageRejected, decode_gray, sanitize_photo

GPS_SECRET = "GPS-SECRET-MARKER"
MAKER_SECRET = b"MAKERNOTE-SECRET"
XMP_SECRET = b"XMP-SECRET-MARKER"
COMMENT_SECRET = b"COMMENT-SECRET-MARKER"


def _segments(jpeg: bytes) -> list[int]:
    """Marker bytes of the JPEG's header segments, up to the start of scan."""
    assert jpeg[:2] == b"\xff\xd8"
    pos, markers = 2, []
    while pos < len(jpeg):
        assert jpeg[pos] == 0xFF
        marker = jpeg[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
    return markers


def _portrait_with_red_top(width: int = 300, height: int = 400) -> Image.Image:
    img = Image.new("RGB", (width, height), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, width, height // 5))  # red band along the top
    return img


def _phone_jpeg_with_metadata() -> bytes:
    """A JPEG as a phone writes it: rotated pixels + Orientation 6, GPS, maker note,
    XMP and a comment."""
    upright = _portrait_with_red_top()
    # Orientation 6 means "rotate 90° clockwise to view": store it turned back.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 1.5), 3: "E", 4: (27.0, 33.0, 2.0), 27: GPS_SECRET}
    exif[0x8769] = {0x927C: MAKER_SECRET}
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>'
        + XMP_SECRET
        + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, exif=exif.tobytes(), xmp=xmp, comment=COMMENT_SECRET)
    data = buf.getvalue()
    for secret in (GPS_SECRET.encode(), MAKER_SECRET, XMP_SECRET, COMMENT_SECRET):
        assert secret in data  # the fixture really carries what must be stripped
    return data


def test_metadata_is_stripped_and_orientation_applied() -> None:
    clean = sanitize_photo(_phone_jpeg_with_metadata())
    for secret in (GPS_SECRET.encode(), MAKER_SECRET, XMP_SECRET, COMMENT_SECRET, b"Exif"):
        assert secret not in clean.jpeg
    # Only the JFIF header, tables, frame and scan: no APP1..APP15, no comment.
    assert all(not (0xE1 <= m <= 0xEF) and m != 0xFE for m in _segments(clean.jpeg))
    out = Image.open(io.BytesIO(clean.jpeg))
    assert not out.getexif()
    assert out.info.get("comment") is None and out.info.get("xmp") is None
    assert (clean.width, clean.height) == out.size == (300, 400)
    pixels = np.asarray(out.convert("RGB"), dtype=np.int32)
    top, bottom = pixels[:40].mean(axis=(0, 1)), pixels[-40:].mean(axis=(0, 1))
    assert top[0] > 200 and top[1] < 60  # the red band is on top again
    assert bottom.min() > 200


def test_sanitize_is_deterministic_and_hashes_output() -> None:
    import hashlib

    data = _phone_jpeg_with_metadata()
    first, second = sanitize_photo(data), sanitize_photo(data)
    assert first == second
    assert first.sha256 == hashlib.sha256(first.jpeg).hexdigest()


def test_png_with_transparency_lands_on_white() -> None:
    img = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = Image.open(io.BytesIO(sanitize_photo(buf.getvalue()).jpeg))
    assert out.format == "JPEG"
    assert np.asarray(out).min() > 240


def _encoded(fmt: str, size: tuple[int, int] = (400, 300)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(buf, fmt)
    return buf.getvalue()


def _reason(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        sanitize_photo(data, **limits)
    assert str(caught.value)  # a human-readable message too
    return caught.value.reason


def test_not_an_image() -> None:
    assert _reason(b"this is plainly a text file, not a photo" * 10) == "not_an_image"
    assert _reason(b"") == "not_an_image"


def test_truncated_jpeg() -> None:
    data = _encoded("JPEG", (800, 600))
    assert _reason(data[: len(data) // 2]) == "truncated_image"


def test_oversize_file() -> None:
    assert _reason(_encoded("JPEG"), max_bytes=1000) == "too_large"


def test_too_many_pixels_is_checked_before_decoding() -> None:
    assert _reason(_encoded("PNG", (400, 300)), max_pixels=100_000) == "too_many_pixels"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def test_decompression_bomb() -> None:
    # A 30000x30000 bilevel PNG header over a few bytes of data: decoding it in
    # full would need ~1 GB. It must be refused from the header alone.
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 30_000 // 8) * 16)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
    assert _reason(bomb) == "too_many_pixels"
    assert _reason(bomb, max_pixels=2_000_000_000) == "too_many_pixels"  # PIL's own guard
    with pytest.raises(ImageRejected):
        decode_gray(bomb)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_disallowed_formats(fmt: str) -> None:
    assert _reason(_encoded(fmt)) == "unsupported_format"


def test_too_small() -> None:
    assert _reason(_encoded("PNG", (150, 600))) == "too_small"


def test_decode_gray_applies_orientation() -> None:
    gray = decode_gray(_phone_jpeg_with_metadata())
    assert gray.dtype == np.uint8 and gray.shape == (400, 300)
    assert gray[:40].mean() < gray[-40:].mean() - 100  # red is darker than white in gray


def test_decode_gray_reduced_scale() -> None:
    data = _encoded("JPEG", (3300, 2500))
    gray = decode_gray(data, max_side=1600)
    assert max(gray.shape) >= 1600 and max(gray.shape) < 3300
