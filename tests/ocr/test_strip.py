"""Stripping metadata without re-encoding (ocr/strip.py, ocr.images.prepare_photo):
real JPEG and PNG files carrying EXIF with GPS, XMP, ICC profiles, comments,
Photoshop blocks and trailing data, built with Pillow and byte surgery."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from ocr import strip
from ocr.images import ImageRejected, decode_gray, prepare_photo

# The test files carry a fake MPF segment, which Pillow warns about when it opens them.
pytestmark = pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file")

# Bytes that only the metadata carries: none may survive.
SECRETS = (
    b"SECRET-MAKER",
    b"SECRET-MODEL",
    b"SECRET-SERIAL",
    b"SECRET-XMP",
    b"SECRET-ICC",
    b"SECRET-COMMENT",
    b"SECRET-PHOTOSHOP",
    b"SECRET-TRAILER",
    b"SECRET-MPF",
    b"SECRET-TEXT",
    b"SECRET-ZTXT",
    b"SECRET-ITXT",
    b"Exif",
    b"http://ns.adobe.com/xap/1.0/",
)


JPEG_SECRETS = (
    b"SECRET-MAKER",
    b"SECRET-SERIAL",
    b"SECRET-XMP",
    b"SECRET-ICC",
    b"SECRET-COMMENT",
    b"SECRET-PHOTOSHOP",
    b"SECRET-TRAILER",
    b"SECRET-MPF",
    b"Exif\x00\x00",
)


def _picture(size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)


def _exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SECRET-MAKER"
    exif[0x0110] = "SECRET-MODEL"
    exif[0x0112] = orientation
    exif[0xA431] = "SECRET-SERIAL"
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 1.5), 3: "E", 4: (27.0, 33.0, 2.5)}  # GPS
    return exif.tobytes()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _icc() -> bytes:
    # A fake ICC profile whose description names a secret (Pillow keeps it as given).
    return b"\x00\x00\x02\x0cSECRET-ICC" + bytes(500)


def _jpeg_with_everything(progressive: bool = False, orientation: int = 6) -> bytes:
    buffer = io.BytesIO()
    _picture().save(
        buffer,
        "JPEG",
        quality=90,
        exif=_exif(orientation),
        icc_profile=_icc(),
        comment=b"SECRET-COMMENT",
        progressive=progressive,
    )
    data = buffer.getvalue()
    extra = (
        _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRET-XMP</x:xmpmeta>")
        + _segment(0xED, b"Photoshop 3.0\x008BIM SECRET-PHOTOSHOP")
        + _segment(0xE2, b"MPF\x00SECRET-MPF")
        + _segment(0xFE, b"SECRET-COMMENT again")
    )
    # After SOI (phones put APPn there), and a second image (a thumbnail, as an MPF
    # file carries) plus junk after EOI.
    return data[:2] + extra + data[2:] + b"SECRET-TRAILER" + data


def _markers(jpeg: bytes) -> list[int]:
    """The markers of a JPEG's segments, in order (the scans' data skipped)."""
    found, pos = [], 2
    while pos < len(jpeg):
        marker = jpeg[pos + 1]
        found.append(marker)
        if marker == 0xD9:
            break
        length = struct.unpack_from(">H", jpeg, pos + 2)[0]
        pos += 2 + length
        if marker == 0xDA:
            while not (jpeg[pos] == 0xFF and jpeg[pos + 1] not in (0, *range(0xD0, 0xD8))):
                pos += 1
    return found


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_loses_every_metadata_byte_and_keeps_every_pixel(progressive: bool) -> None:
    original = _jpeg_with_everything(progressive)
    for secret in JPEG_SECRETS:  # the upload carries them all
        assert secret in original, secret
    out = strip.strip_jpeg(original)
    for secret in SECRETS:
        assert secret not in out.data, secret
    assert set(_markers(out.data)) <= {0xD8, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD, 0xDA, 0xD9}
    assert out.data.endswith(b"\xff\xd9") and out.data.count(b"\xff\xd8") == 1
    assert np.array_equal(_pixels(out.data), _pixels(original))
    stored = Image.open(io.BytesIO(out.data))
    assert not stored.getexif() and not stored.info.get("icc_profile")
    assert (out.width, out.height, out.orientation) == (640, 480, 6)


def test_the_orientation_is_read_before_stripping_and_applied_when_decoding() -> None:
    for orientation in (1, 3, 6, 8):
        original = _jpeg_with_everything(orientation=orientation)
        prepared = prepare_photo(original)
        assert prepared.orientation == (None if orientation == 1 else orientation)
        upright = decode_gray(original)  # Pillow applies the file's own EXIF
        assert np.array_equal(decode_gray(prepared.data, orientation=prepared.orientation), upright)


def test_restart_markers_stay_in_the_scan() -> None:
    buffer = io.BytesIO()
    _picture().save(buffer, "JPEG", quality=85, restart_marker_blocks=4, comment=b"SECRET-COMMENT")
    out = strip.strip_jpeg(buffer.getvalue())
    assert 0xDD in _markers(out.data) and b"SECRET-COMMENT" not in out.data
    assert np.array_equal(_pixels(out.data), _pixels(buffer.getvalue()))


def test_prepare_photo_hashes_the_stored_bytes_without_decoding() -> None:
    original = _jpeg_with_everything()
    prepared = prepare_photo(original)
    assert not prepared.reencoded and prepared.format == "JPEG"
    import hashlib

    assert prepared.sha256 == hashlib.sha256(prepared.data).hexdigest()
    # Deterministic: the same upload is the same stored photo.
    assert prepare_photo(original) == prepared


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_everything(mode: str = "RGB") -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    info.add_text("Software", "SECRET-ZTXT", zip=True)
    info.add_itxt("Description", "SECRET-ITXT", lang="en")
    buffer = io.BytesIO()
    picture = _picture().convert(mode)
    picture.save(buffer, "PNG", pnginfo=info, exif=_exif(3), icc_profile=_icc())
    data = buffer.getvalue()
    time_chunk = _chunk(b"tIME", struct.pack(">HBBBBB", 2020, 8, 9, 12, 0, 0))
    private = _chunk(b"prVt", b"SECRET-TRAILER private chunk")
    at = data.index(b"IDAT") - 4
    return data[:at] + time_chunk + private + data[at:] + b"SECRET-TRAILER"


def _chunk_types(png: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(png):
        length, kind = struct.unpack_from(">I4s", png, pos)
        kinds.append(kind)
        pos += 12 + length
    return kinds


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_png_keeps_only_critical_chunks_and_every_pixel(mode: str) -> None:
    original = _png_with_everything(mode)
    assert b"eXIf" in original and b"iCCP" in original and b"tEXt" in original
    out = strip.strip_png(original)
    for secret in SECRETS:
        assert secret not in out.data, secret
    assert set(_chunk_types(out.data)) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"}
    assert out.data.endswith(_chunk(b"IEND", b""))
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(out.data)).convert("RGBA")),
        np.asarray(Image.open(io.BytesIO(original)).convert("RGBA")),
    )
    assert out.orientation == 3


def test_transparency_survives() -> None:
    picture = _picture().convert("P")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", transparency=0)
    out = strip.strip_png(buffer.getvalue())
    assert b"tRNS" in out.data
    assert "transparency" in Image.open(io.BytesIO(out.data)).info


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:2] + b"\xff\xe1\xff\xff" + d[2:],  # a segment longer than the file
        lambda d: d[:100],  # cut inside the header segments
        lambda d: d[:2] + b"junk" + d[2:],  # bytes outside any segment
        lambda d: b"\xff\xd8\xff\xd9",  # no image at all
        lambda d: d[:2] + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + d[2:],  # scan first
    ],
)
def test_a_broken_jpeg_structure_is_malformed(damage: object) -> None:
    data = _jpeg_with_everything()
    with pytest.raises(strip.Malformed):
        strip.strip_jpeg(damage(data))  # type: ignore[operator]
    with pytest.raises(ImageRejected) as refused:
        prepare_photo(damage(data))  # type: ignore[operator]
    assert refused.value.reason == "malformed_image"


def test_a_png_chunk_with_a_wrong_checksum_is_malformed() -> None:
    data = bytearray(_png_with_everything())
    at = data.index(b"IDAT") + 10
    data[at] ^= 0xFF
    with pytest.raises(strip.Malformed, match="checksum"):
        strip.strip_png(bytes(data))


def _chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return struct.pack(">I", size) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_an_idat_claiming_more_than_the_file_holds_keeps_nothing_after_it() -> None:
    # Its claimed length would swallow the text and eXIf chunks after it.
    data = _png_with_everything()
    first = data.index(b"IDAT") - 4  # up to the end of the first, whole IDAT
    (length,) = struct.unpack_from(">I", data, first)
    crafted = (
        data[: first + 12 + length]
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64), length=10**6)
        + _chunk(b"tEXt", b"GPS\x0053.9,27.5")
        + _chunk(b"IEND", b"")
    )
    with pytest.raises(strip.Malformed, match="past the end"):
        strip.strip_png(crafted)


def test_a_photo_cut_in_its_image_data_passes_and_fails_when_decoded() -> None:
    original = _jpeg_with_everything()
    first_image = original[: original.index(b"SECRET-TRAILER")]
    cut = first_image[: len(first_image) - 2000]
    prepared = prepare_photo(cut)  # nothing in the header says it is cut
    assert b"SECRET" not in prepared.data
    with pytest.raises(ImageRejected) as refused:
        decode_gray(prepared.data)
    assert refused.value.reason == "truncated_image"


def test_an_adobe_jpeg_is_re_encoded_instead() -> None:
    buffer = io.BytesIO()
    _picture().convert("CMYK").save(buffer, "JPEG", quality=90, comment=b"SECRET-COMMENT")
    data = buffer.getvalue()
    assert b"Adobe" in data
    with pytest.raises(strip.NotStrippable):
        strip.strip_jpeg(data)
    prepared = prepare_photo(data)
    assert prepared.reencoded and b"Adobe" not in prepared.data
    assert b"SECRET-COMMENT" not in prepared.data
    assert Image.open(io.BytesIO(prepared.data)).mode == "RGB"


def test_webp_is_re_encoded_without_metadata() -> None:
    buffer = io.BytesIO()
    _picture().save(buffer, "WEBP", exif=_exif(6), icc_profile=_icc())
    prepared = prepare_photo(buffer.getvalue())
    assert prepared.reencoded and prepared.orientation is None
    assert b"SECRET" not in prepared.data and b"Exif" not in prepared.data
    assert (prepared.width, prepared.height) == (480, 640)  # made upright


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [(60_000, 60_000, "too_many_pixels"), (150, 2000, "too_small"), (0, 0, "not_an_image")],
)
def test_sizes_are_checked_from_the_header(width: int, height: int, reason: str) -> None:
    data = _with_size(_jpeg_with_everything(), width, height)
    with pytest.raises((ImageRejected, strip.NotStrippable)) as refused:
        prepare_photo(data)
    if height:
        assert isinstance(refused.value, ImageRejected) and refused.value.reason == reason


def test_size_cap_comes_first() -> None:
    with pytest.raises(ImageRejected) as refused:
        prepare_photo(_jpeg_with_everything(), max_bytes=1000)
    assert refused.value.reason == "too_large"


def test_a_corrupt_exif_block_means_upright() -> None:
    assert strip.exif_orientation(b"II*\x00\xff\xff\xff\x7f") is None
    assert strip.exif_orientation(b"MM\x00*\x00\x00\x00\x08\x00\x05") is None
    assert strip.exif_orientation(b"nonsense") is None


def test_a_stripped_photo_is_shown_upright() -> None:
    from ocr.images import upright_photo

    original = _jpeg_with_everything(orientation=6)
    prepared = prepare_photo(original)
    assert upright_photo(prepared.data, None) == prepared.data
    shown = Image.open(io.BytesIO(upright_photo(prepared.data, prepared.orientation)))
    assert shown.size == (480, 640) and not shown.getexif()
