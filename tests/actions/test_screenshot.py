"""The banner screenshot script renders a real PNG with the banner on top (headless Chromium)."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from html import unescape
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
BANNER_RED = (176, 0, 32)  # #b00020: the banner's border and title
BANNER_BACKGROUND = (255, 244, 229)  # #fff4e5


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def decode_png(data: bytes, max_rows: int) -> tuple[int, int, list[bytes], int]:
    """(width, height, first unfiltered rows, bytes per pixel) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(min(height, max_rows)):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            pred = (0, left, up, (left + up) // 2, _paeth(left, up, corner))[kind]
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, bpp


def pixels(row: bytes, bpp: int) -> set[tuple[int, int, int]]:
    return {tuple(row[i : i + 3]) for i in range(0, len(row), bpp)}  # type: ignore[misc]


@pytest.mark.system
def test_screenshot_shows_the_banner_on_top(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    out = tmp_path / "banner.png"
    html = tmp_path / "banner.html"
    script = ROOT / "scripts" / "screenshot_banner.py"
    command = [sys.executable, str(script), "--out", str(out), "--html-out", str(html)]
    subprocess.run(command, check=True, timeout=180, capture_output=True)
    data = out.read_bytes()
    assert len(data) > 20_000
    width, height, rows, bpp = decode_png(data, max_rows=60)
    assert (width, height) == (820, 900)
    top = set().union(*(pixels(r, bpp) for r in rows))
    assert BANNER_RED in top
    assert BANNER_BACKGROUND in top
    rendered = unescape(html.read_text(encoding="utf-8"))  # the banner writes accents as &#…;
    assert rendered.index("tocsin-banner:start") < rendered.index("Bonjour")
    assert "Attention : ce message pourrait être une usurpation" in rendered
    assert "ameli-remboursement.fr" not in rendered  # every mention defanged
