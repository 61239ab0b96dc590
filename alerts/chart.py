"""The digest's one chart: daily spend as a small bar sparkline, written as a PNG in pure Python.

Why a PNG embedded by Content-ID: email clients (Gmail, Outlook) drop inline SVG and ``data:``
images, but show ``cid:`` images attached in a ``multipart/related`` part. Why pure Python: the
chart is 14 rectangles and a dashed line, so a 60-line PNG encoder (zlib + CRC, both in the
standard library) beats a plotting dependency and a headless browser, and gives the same bytes
on every machine (tests can decode it back). Limits: bars and horizontal lines only, no text;
labels live in the HTML around the image.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

__all__ = ["decode_png_size", "png", "spend_sparkline"]

Color = tuple[int, int, int]

BAR = (76, 120, 168)  # blue: within the daily budget pace
OVER = (228, 87, 86)  # red: above the daily budget pace
PACE = (120, 120, 120)  # dashed line: budget / days in month
BACKGROUND = (255, 255, 255)
BASELINE = (200, 200, 200)


def png(width: int, height: int, pixels: bytearray) -> bytes:
    """Encode ``pixels`` (RGB, row-major, ``width * height * 3`` bytes) as a PNG."""
    if len(pixels) != width * height * 3:
        raise ValueError(f"expected {width * height * 3} bytes of RGB, got {len(pixels)}")
    stride = width * 3
    raw = b"".join(b"\x00" + bytes(pixels[y * stride : (y + 1) * stride]) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def decode_png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (for tests and sanity checks)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def spend_sparkline(values: Sequence[float], *, pace: float | None = None, width: int = 560, height: int = 112) -> bytes:
    """Bars for ``values`` (oldest first), red above ``pace`` (the daily budget), with ``pace`` dashed.

    Drawn at twice the size it is shown at (280 x 56 CSS pixels) so it stays sharp on HiDPI screens.
    """
    pixels = bytearray(BACKGROUND * (width * height))

    def rect(x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, x0), min(width, x1)
        y0, y1 = max(0, y0), min(height, y1)
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * width + x0) * 3
            pixels[start : start + len(row)] = row

    n = len(values)
    top_pad, bottom = 6, height - 2
    peak = max([*values, pace or 0.0, 0.0])
    if n and peak > 0:
        slot = width / n
        gap = max(2, int(slot * 0.22))
        for i, v in enumerate(values):
            h = round((bottom - top_pad) * max(v, 0.0) / peak)
            if v > 0 and h < 2:
                h = 2  # a tiny day stays visible
            x0 = round(i * slot + gap / 2)
            x1 = round((i + 1) * slot - gap / 2)
            rect(x0, bottom - h, x1, bottom, OVER if pace is not None and v > pace else BAR)
        if pace is not None and pace > 0:
            y = bottom - round((bottom - top_pad) * pace / peak)
            for x in range(0, width, 12):
                rect(x, y - 1, x + 7, y + 1, PACE)
    rect(0, bottom, width, height, BASELINE)
    return png(width, height, pixels)
