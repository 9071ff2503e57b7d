"""Removing a photo's metadata without decoding it: the container's metadata
segments are dropped and the coded image is kept byte for byte.

JPEG: only what a decoder needs is kept (SOF, DHT, DQT, DRI, DAC, DNL, SOS and the
entropy-coded scans); every APPn segment (JFIF, EXIF with its GPS position and
thumbnail, XMP, ICC profiles, MPF, maker notes), every comment and anything after
EOI is dropped. PNG: only the critical chunks (IHDR, PLTE, IDAT, IEND) and tRNS
are kept; text, EXIF, times, ICC profiles, animation and private chunks are
dropped, and so is anything after IEND.

The EXIF orientation is read before it is dropped (``Stripped.orientation``): the
caller keeps it and applies it when the pixels are decoded.

A file these functions cannot strip safely (a JPEG with an Adobe APP14 segment,
whose colour transform would be lost; CMYK; a height left to a DNL segment) is
``NotStrippable``: it is re-encoded instead (``ocr.images``). A broken segment
structure is ``Malformed``. Neither looks at a single pixel: a truncated scan is
only found when the photo is decoded (in the worker). Pure.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

JPEG_SOI = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not frames).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Frames Pillow (libjpeg) decodes: baseline, extended sequential, progressive.
_DECODABLE_SOF = frozenset({0xC0, 0xC1, 0xC2})
# Segments a decoder needs, kept as they are: DHT, DAC, DQT, DNL, DRI.
_KEEP = frozenset({0xC4, 0xCC, 0xDB, 0xDC, 0xDD})
_APP0, _APP1, _APP14, _APP15 = 0xE0, 0xE1, 0xEE, 0xEF
_COM, _SOS, _EOI, _SOI = 0xFE, 0xDA, 0xD9, 0xD8
# The end of an entropy-coded segment: a marker other than a stuffed zero, a
# restart marker (part of the scan) or a fill byte.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

_PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"})

EXIF_ORIENTATION = 0x0112


class Malformed(ValueError):
    """The container's structure is broken (a segment runs past the end, a chunk's
    checksum is wrong, the header is missing): the upload is refused."""


class NotStrippable(Exception):
    """A valid file that cannot be stripped losslessly here: re-encode it instead."""


@dataclass(frozen=True)
class Stripped:
    data: bytes  # the file without its metadata
    format: str  # "JPEG" or "PNG"
    width: int
    height: int
    components: int  # colour channels as coded (JPEG components; PNG: 1 to 4)
    orientation: int | None  # EXIF orientation 2..8 to apply when decoding; None: upright


def exif_orientation(tiff: bytes) -> int | None:
    """The Orientation tag (2..8) of a TIFF-structured EXIF block (without the
    ``Exif\\0\\0`` preamble); None when it is absent, 1 or unreadable: a corrupt
    block means "as stored", as when Pillow transposes. Pure."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (magic, ifd) = struct.unpack_from(order + "HI", tiff, 2)
        if magic != 42:
            return None
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, ifd + 2 + 12 * i)
            if tag == EXIF_ORIENTATION:
                if kind != 3 or n != 1:
                    return None
                (value,) = struct.unpack_from(order + "H", tiff, ifd + 2 + 12 * i + 8)
                return value if 2 <= value <= 8 else None
    except struct.error:
        return None
    return None


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise Malformed("a JPEG segment is cut short")
    length = (data[pos + 2] << 8) | data[pos + 3]
    if length < 2 or pos + 2 + length > len(data):
        raise Malformed("a JPEG segment runs past the end of the file")
    return length


def strip_jpeg(data: bytes) -> Stripped:
    """``data`` (a JPEG file) without its metadata. Raises Malformed or NotStrippable."""
    if not data.startswith(JPEG_SOI):
        raise Malformed("not a JPEG file")
    out = bytearray(JPEG_SOI)
    pos = 2
    orientation: int | None = None
    seen_exif = False
    frame: tuple[int, int, int] | None = None  # width, height, components
    scans = 0
    truncated = False
    end = len(data)
    while True:
        if pos >= end:
            if scans:
                # No EOI after the scans: a truncated file; whether its pixels decode
                # is the decoder's to say (the worker's), the metadata is gone. No
                # EOI is added: it would make the decoder fill the rest with grey.
                truncated = True
                break
            raise Malformed("the JPEG file ends before its image data")
        if data[pos] != 0xFF:
            raise Malformed("bytes outside any JPEG segment")
        while pos + 1 < end and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 1 >= end:
            raise Malformed("the JPEG file ends inside a marker")
        marker = data[pos + 1]
        if marker == _EOI:
            if not scans:
                raise Malformed("the JPEG file has no image data")
            break  # anything after EOI is dropped
        if marker == 0x01:  # TEM: no length, no meaning
            pos += 2
            continue
        if marker == _SOI or 0xD0 <= marker <= 0xD7 or marker == 0x00:
            raise Malformed(f"unexpected JPEG marker FF{marker:02X}")
        length = _segment_length(data, pos)
        body = data[pos + 4 : pos + 2 + length]
        segment = data[pos : pos + 2 + length]
        pos += 2 + length
        if _APP0 <= marker <= _APP15:
            if marker == _APP1 and body.startswith(b"Exif\x00\x00") and not seen_exif:
                seen_exif = True  # the first EXIF block is the one decoders use
                orientation = exif_orientation(body[6:])
            elif marker == _APP14 and body.startswith(b"Adobe"):
                raise NotStrippable("an Adobe APP14 segment carries the colour transform")
            continue
        if marker == _COM:
            continue
        if marker in _SOF:
            if frame is not None:
                raise Malformed("more than one JPEG frame header")
            if marker not in _DECODABLE_SOF:
                raise NotStrippable(f"JPEG frame type FF{marker:02X}")
            if len(body) < 6:
                raise Malformed("a JPEG frame header is cut short")
            height, width, components = struct.unpack_from(">HHB", body, 1)
            if height == 0:
                raise NotStrippable("the JPEG height is given after the first scan")
            if components not in (1, 3):
                raise NotStrippable(f"a JPEG of {components} colour components")
            if len(body) < 6 + 3 * components:
                raise Malformed("a JPEG frame header is cut short")
            frame = (width, height, components)
            out += segment
            continue
        if marker == _SOS:
            if frame is None:
                raise Malformed("JPEG image data before its frame header")
            out += segment
            found = _SCAN_END.search(data, pos)
            scan_end = found.start() if found is not None else end
            out += data[pos:scan_end]
            pos = scan_end
            scans += 1
            continue
        if marker in _KEEP:
            out += segment
            continue
        # JPG, JPGn, DHP, EXP and reserved markers: nothing a phone writes.
        raise NotStrippable(f"JPEG marker FF{marker:02X}")
    assert frame is not None
    if not truncated:
        out += b"\xff\xd9"
    width, height, components = frame
    return Stripped(bytes(out), "JPEG", width, height, components, orientation)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def strip_png(data: bytes) -> Stripped:
    """``data`` (a PNG file) without its ancillary chunks but tRNS. Raises Malformed or
    NotStrippable."""
    if not data.startswith(PNG_SIGNATURE):
        raise Malformed("not a PNG file")
    out = bytearray(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    end = len(data)
    header: tuple[int, int, int] | None = None
    orientation: int | None = None
    idat = False
    while pos < end:
        if pos + 12 > end:
            if idat:
                break  # cut short in the image data: the decoder (worker) will say
            raise Malformed("a PNG chunk is cut short")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if not kind.isalpha() or not kind.isascii():
            raise Malformed("a PNG chunk has an invalid type")
        chunk_end = pos + 12 + length
        if chunk_end > end:
            # Even an IDAT: what its length claims may hold later chunks' bytes (text,
            # eXIf), which must not be kept without being looked at.
            raise Malformed("a PNG chunk runs past the end of the file")
        chunk = data[pos:chunk_end]
        body = data[pos + 8 : pos + 8 + length]
        pos = chunk_end
        if header is None and kind != b"IHDR":
            raise Malformed("a PNG file must start with its IHDR chunk")
        if kind == b"eXIf":
            if orientation is None:
                orientation = exif_orientation(body)
            continue
        if kind not in _PNG_KEEP:
            if kind[0:1].isupper():  # a critical chunk we do not know: cannot drop it
                raise Malformed(f"unknown critical PNG chunk {kind.decode()}")
            continue
        (crc,) = struct.unpack_from(">I", chunk, 8 + length)
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            raise Malformed(f"the PNG chunk {kind.decode()} is damaged (checksum)")
        if kind == b"IHDR":
            if header is not None or length != 13:
                raise Malformed("a PNG file must have one 13-byte IHDR chunk")
            width, height, depth, colour = struct.unpack_from(">IIBB", body)
            if colour not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[colour]:
                raise Malformed("the PNG header has an invalid colour type or depth")
            if colour == 0 and depth == 16:
                raise NotStrippable("16-bit greyscale")  # refused by the re-encoder
            header = (width, height, _PNG_CHANNELS[colour])
        elif kind == b"IDAT":
            idat = True
        out += chunk
        if kind == b"IEND":
            break  # anything after IEND is dropped
    if header is None or not idat:
        raise Malformed("the PNG file has no image data")
    width, height, channels = header
    return Stripped(bytes(out), "PNG", width, height, channels, orientation)
