"""Facts about still-image files that FFmpeg (through PyAV) does not hand over.

**Mirroring.** FFmpeg turns a JPEG's EXIF orientation into a display matrix, and PyAV hands over only its rotation
(``frame.rotation``; reading the whole matrix through ``frame.side_data`` crashes PyAV 18, see
:func:`vcodec.io.source._rotation`). The mirroring half of orientations 2, 4, 5 and 7 is read here from the file
itself: the APP1 ``Exif`` segment's first image directory, tag 0x0112 (EXIF 2.32, section 4.6.4).

**Pages.** FFmpeg's TIFF reader decodes a file's first page (image directory) only; :func:`tiff_pages` counts
them (TIFF 6.0, section 2: each directory ends with the offset of the next, 0 after the last).

**Animation.** FFmpeg's WebP decoder reads still images only; :func:`animated_webp` tells an animated file (its
VP8X chunk's animation flag), so that the refusal can say why.
"""
from __future__ import annotations

import struct
from pathlib import Path

ORIENTATION_TAG = 0x0112
MIRRORED = {2: 180, 4: 0, 5: 270, 7: 90}   # mirrored orientation -> the counter-clockwise rotation FFmpeg reports
MAX_PAGES = 10_000                          # stop counting there (and on a directory chain that loops)
_SCAN_BYTES = 1 << 16                       # the Exif segment sits in the file's first 64 KiB (its maximum size)


def jpeg_orientation(path: str | Path) -> int | None:
    """The EXIF orientation (1..8) of the JPEG file at ``path``; None when it is not a JPEG, has no EXIF
    orientation, or its EXIF data is cut short or malformed."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SCAN_BYTES)
    except OSError:
        return None
    if head[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(head) and head[pos] == 0xFF:
        marker = head[pos + 1]
        if marker in (0xD9, 0xDA):          # end of image, start of scan: no more header segments
            return None
        size = struct.unpack(">H", head[pos + 2:pos + 4])[0]
        if marker == 0xE1 and head[pos + 4:pos + 10] == b"Exif\0\0":
            return _tiff_orientation(head[pos + 10:pos + 2 + size])
        pos += 2 + size
    return None


def _tiff_byte_order(head: bytes) -> str | None:
    """The struct byte order ``"<"`` or ``">"`` of a TIFF structure from its first 4 bytes; None if not TIFF."""
    return {b"II*\0": "<", b"MM\0*": ">"}.get(bytes(head[:4]))


def _tiff_orientation(tiff: bytes) -> int | None:
    """Orientation from a TIFF structure (the Exif payload): its byte order, then IFD0's tag 0x0112."""
    order = _tiff_byte_order(tiff)
    if order is None:
        return None
    try:
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack(order + "HHI", tiff[entry:entry + 8])
            if tag == ORIENTATION_TAG and kind == 3 and n == 1:            # one SHORT, held in the value field
                value = struct.unpack(order + "H", tiff[entry + 8:entry + 10])[0]
                return value if 1 <= value <= 8 else None
    except struct.error:
        return None
    return None


def tiff_pages(path: str | Path) -> int | None:
    """How many pages (image directories) the TIFF file at ``path`` holds, up to MAX_PAGES; None when it is not a
    TIFF or its directories are cut short or malformed."""
    try:
        with open(path, "rb") as f:
            order = _tiff_byte_order(f.read(4))
            if order is None:
                return None
            offset, seen = struct.unpack(order + "I", f.read(4))[0], set()
            while offset and len(seen) < MAX_PAGES and offset not in seen:
                seen.add(offset)
                f.seek(offset)
                (count,) = struct.unpack(order + "H", f.read(2))
                f.seek(offset + 2 + 12 * count)
                offset = struct.unpack(order + "I", f.read(4))[0]
            return len(seen) or None
    except (OSError, struct.error):
        return None


def animated_webp(path: str | Path) -> bool:
    """Whether ``path`` is an animated WebP file: RIFF/WEBP whose VP8X chunk sets the animation flag (0x02)."""
    try:
        with open(path, "rb") as f:
            head = f.read(21)
    except OSError:
        return False
    return len(head) == 21 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)
