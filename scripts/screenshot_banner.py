#!/usr/bin/env python3
"""Render a bannered HTML lure in headless Chromium and save a PNG screenshot.

The lure goes through the real engine (scan → plan → apply_plan) with the tag actions
forced (banner, defanged links, subject tag: example lures are otherwise quarantined),
then its HTML part is shown as a mail client would show it. Chromium runs offline: every
host name resolves to nothing, so remote images and fonts cannot load.

    .venv/bin/python scripts/screenshot_banner.py                    # → docs/img/banner-fr.png
    .venv/bin/python scripts/screenshot_banner.py --eml X.eml --out /tmp/x.png
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from dataclasses import replace
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from milter.actions.apply import apply_plan  # noqa: E402  (after the sys.path line)
from milter.engine import scan  # noqa: E402
from milter.engine.plan import plan  # noqa: E402
from milter.model.envelope import Envelope  # noqa: E402
from milter.model.verdict import Disposition  # noqa: E402
from milter.policy.loader import load_policy  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TAG_ACTIONS = frozenset({"banner", "defang_links", "subject_tag"})
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no remote content is fetched
)


async def bannered(raw: bytes) -> bytes:
    """The message as delivered with the tag actions applied."""
    policy = load_policy(None)
    result = await scan(raw, Envelope(), policy)
    verdict = replace(result.verdict, disposition=Disposition.TAG, actions=TAG_ACTIONS)
    return apply_plan(raw, plan(verdict, result.mime, policy))


def html_part(raw: bytes) -> str:
    """The first text/html part, decoded."""
    msg = message_from_bytes(raw, policy=compat32)
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                return payload.decode(charset, "replace")
    raise SystemExit("the message has no text/html part")


def render(html: str, out: Path, width: int, height: int, chromium: str) -> None:
    """Write ``html`` to a temporary file and screenshot it with headless Chromium."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tocsin-shot-") as tmp:
        page = Path(tmp) / "message.html"
        page.write_text(html, encoding="utf-8")
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--screenshot={out.resolve()}",
            f"--window-size={width},{height}",
            page.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0 or not out.is_file():
            raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the bannered message, render it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--eml", type=Path, default=ROOT / "docs" / "examples" / "ameli-lure.eml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "banner-fr.png")
    parser.add_argument("--width", type=int, default=820)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--html-out", type=Path, help="also save the rendered HTML here")
    args = parser.parse_args(argv)
    html = html_part(asyncio.run(bannered(args.eml.read_bytes())))
    if args.html_out:
        args.html_out.write_text(html, encoding="utf-8")
    render(html, args.out, args.width, args.height, args.chromium)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
