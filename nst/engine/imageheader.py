"""Image dimensions read from file headers, so oversized images are refused before any decoding.

OpenCV's own limit (OPENCV_IO_MAX_IMAGE_PIXELS) is fixed when cv2 is first imported, which a host may
have done before nst; this check does not depend on import order.  Covers PNG, JPEG, GIF, BMP and WebP;
other formats return None and rely on OpenCV's limit.
"""

from __future__ import annotations

import struct


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF, BMP or WebP file; None when unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:4] == b"GIF8" and len(data) >= 10:
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except struct.error:
        return None
    return None


def plain_8bit(data: bytes) -> bool:
    """Whether the file decodes in one pass to 8-bit colour with no alpha (JPEG, 8-bit RGB or grey PNG, BMP up
    to 24 bits, lossy WebP): such images take less memory to decode than 16-bit or transparent ones."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26:
        return data[24] <= 8 and data[25] in (0, 2)
    if data[:2] == b"BM" and len(data) >= 30:
        return struct.unpack("<H", data[28:30])[0] <= 24
    return data[:2] == b"\xff\xd8" or (data[:4] == b"RIFF" and data[12:16] == b"VP8 ")


def jpeg_reduction(data: bytes, longest: int | None) -> int:
    """1, 2, 4 or 8: how much smaller a JPEG may be decoded (in the codec, by its DCT scaling) while its
    longest side stays at least `longest`; 1 for other formats, unknown sizes or no `longest`."""
    dims = dimensions(data) if data[:2] == b"\xff\xd8" and longest else None
    if not dims or not longest:
        return 1
    factor = 1
    while factor < 8 and max(dims) // (factor * 2) >= longest:
        factor *= 2
    return factor


def reduced(dims: tuple[int, int], factor: int) -> tuple[int, int]:
    """(width, height) of an image decoded `factor` times smaller (the codec rounds up)."""
    return -(-dims[0] // factor), -(-dims[1] // factor)
