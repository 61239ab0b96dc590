"""The spend sparkline PNG: valid, the size asked, bars coloured against the budget pace."""

from __future__ import annotations

import struct
import zlib

from alerts.chart import BAR, OVER, PACE, decode_png_size, spend_sparkline


def pixels(data: bytes) -> tuple[int, int, bytes]:
    """Decode our own PNGs (8-bit RGB, filter 0 on every row) back to raw RGB."""
    w, h = decode_png_size(data)
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + chunk) & 0xFFFFFFFF
        if kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows = [raw[y * (w * 3 + 1) : (y + 1) * (w * 3 + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return w, h, b"".join(r[1:] for r in rows)


def at(img: tuple[int, int, bytes], x: int, y: int) -> tuple[int, int, int]:
    w, _, px = img
    i = (y * w + x) * 3
    return tuple(px[i : i + 3])


def test_bars_above_the_pace_are_red_and_the_pace_is_dashed():
    data = spend_sparkline([50.0, 100.0], pace=80.0, width=100, height=50)
    img = pixels(data)
    assert img[:2] == (100, 50)
    bottom = 48
    assert at(img, 25, bottom - 5) == BAR  # day 1: 50 < 80
    assert at(img, 75, bottom - 5) == OVER  # day 2: 100 > 80
    assert at(img, 25, 6) == (255, 255, 255)  # above the short bar
    pace_y = bottom - round((bottom - 6) * 80 / 100)
    assert at(img, 2, pace_y) == PACE and at(img, 10, pace_y) == (255, 255, 255)  # dashes


def test_no_spend_draws_only_the_baseline():
    w, h, px = pixels(spend_sparkline([0.0] * 14, pace=None, width=40, height=20))
    assert (w, h) == (40, 20)
    assert set(px[: 40 * 18 * 3]) == {255}
