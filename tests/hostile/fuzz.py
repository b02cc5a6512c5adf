"""The fuzz property shared by the CI test and scripts/fuzz_pipeline.py: MIME → checks →
plan → apply never raises and always ends in a verdict, on mutated real messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import strategies as st

from milter.actions.apply import apply_plan
from milter.engine import scan
from milter.model.envelope import Envelope
from milter.model.verdict import Disposition
from milter.policy.model import Policy
from tests.hostile import shapes

ROBUSTNESS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "robustness"
_MAX_SEED_BYTES = 300_000

#: Bytes that mean something to a MIME, header or HTML parser: what mutations insert.
TOKENS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--b1--\r\n",
    b'Content-Type: multipart/mixed; boundary="b1"\r\n',
    b"Content-Type: text/html; charset=utf-8\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"=?utf-8?b?",
    b"=?x-unknown?q?",
    b"?=",
    b"=\r\n",
    b"=FF",
    b"\xff\xfe",
    b"\xc3",
    b"\x00",
    b"<a href=",
    b'<a href="https://ameli-remboursement.fr/x">',
    b"<!--",
    b"--!>",
    b"<![if mso]>",
    b"<![endif]>",
    b"<svg><a xlink:href=",
    b"&#x",
    b"https://",
    b"From: ",
    b"Authentication-Results: ",
    b"DKIM-Signature: v=1; a=rsa-sha256; d=ameli.fr; s=x; b=; bh=;\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b'"',
]


def seeds() -> list[bytes]:
    """The shared robustness corpus (when present) and the #17 shapes, kept small."""
    found = []
    if ROBUSTNESS.is_dir():
        for path in sorted(ROBUSTNESS.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                found.append(path.read_bytes()[:_MAX_SEED_BYTES])
    found += [shapes.lure_html(), shapes.invalid_utf8(), shapes.marked_sections()]
    found += [shapes.nested(25), shapes.header_flood(50)]
    return found


@st.composite
def mutated(draw: st.DrawFn, seed_messages: list[bytes]) -> bytes:
    """A seed message with a few tokens inserted, bytes deleted or a slice repeated."""
    data = bytearray(draw(st.sampled_from(seed_messages)))
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "repeat", "bytes"]))
        if kind == "insert":
            data[where:where] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 64))]
        elif kind == "repeat":
            chunk = bytes(data[where : where + draw(st.integers(1, 32))])
            data[where:where] = chunk * draw(st.integers(1, 200))
        else:
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def check_one(raw: bytes, policy: Policy) -> Disposition:
    """The property: a verdict, a plan that applies, and the delivered bytes scan too."""
    result = asyncio.run(scan(raw, Envelope(), policy))
    assert isinstance(result.verdict.disposition, Disposition)
    delivered = apply_plan(raw, result.plan)
    assert isinstance(delivered, bytes)
    if result.plan.new_body is not None:
        again = asyncio.run(scan(delivered, Envelope(), policy))
        assert isinstance(again.verdict.disposition, Disposition)
    return result.verdict.disposition
