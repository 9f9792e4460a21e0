"""Draws the portal's app icons (static/portal/icons/*.png) from the brand mark in base.html: a
white disc with the green star on the brand green. Pure Python (no imaging library in the venv);
run it again after changing the mark: `python scripts/pwa_icons.py`."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

GREEN, WHITE = (11, 93, 75), (255, 255, 255)
# The star of the brand mark, in its 32×32 viewBox (templates/base.html).
STAR = [(16, 7), (18.6, 12.6), (24.7, 13.3), (20.2, 17.5), (21.4, 23.5), (16, 20.5), (10.6, 23.5), (11.8, 17.5),
        (7.3, 13.3), (13.4, 12.6)]
OUT = Path(__file__).resolve().parents[1] / "static" / "portal" / "icons"


def _inside(x: float, y: float, polygon) -> bool:
    inside, j = False, len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _colour(x: float, y: float, disc: float) -> tuple[int, int, int]:
    """The colour at (x, y) in 0..32 coordinates; `disc` is the disc's radius (safe zone for maskable)."""
    scale = disc / 15
    mx, my = 16 + (x - 16) / scale, 16 + (y - 16) / scale  # back into the mark's own coordinates
    if (mx - 16) ** 2 + (my - 16) ** 2 > 15 ** 2:
        return GREEN
    return GREEN if _inside(mx, my, STAR) else WHITE


def draw(size: int, disc: float) -> bytes:
    samples = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
    rows = []
    for py in range(size):
        row = bytearray(b"\x00")
        for px in range(size):
            colours = [_colour((px + dx) * 32 / size, (py + dy) * 32 / size, disc) for dx, dy in samples]
            row += bytes(sum(c[k] for c in colours) // len(colours) for k in range(3))
        rows.append(bytes(row))
    return _png(size, b"".join(rows))


def _png(size: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, disc in (("icon-192", 192, 13), ("icon-512", 512, 13), ("icon-180", 180, 13),
                             ("icon-maskable-512", 512, 10)):
        (OUT / f"{name}.png").write_bytes(draw(size, disc))
    (OUT / "icon.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
        'fill="#0b5d4b"/><circle cx="16" cy="16" r="13" fill="#fff"/><path transform="translate(16 16) scale(.8667) '
        'translate(-16 -16)" d="M16 7l2.6 5.6 6.1.7-4.5 4.2 1.2 6-5.4-3-5.4 3 1.2-6-4.5-4.2 6.1-.7z" '
        'fill="#0b5d4b"/></svg>\n')
