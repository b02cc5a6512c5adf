"""Issue #7 "done when": the real corpus through the milter with the shipped policy.

Every phish-fr message and every ham message goes through a real server over a loopback
socket, played by the Postfix-like client (16 connections at a time): each gets a final
reply; every CPF lure is bannered, quarantined or rejected; ham passes with no body change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from milter.codec import Accept, Discard, Quarantine, ReplaceBodyChunk, ReplyCode
from tests.support.milter_client import MessageOutcome, MilterClient

CPF_FLAGS = ("CPF_fr", "compte_formation", "moncompteformation")


def _cpf_lures(corpus: Path) -> set[str]:
    rows = (corpus / "phish-fr" / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]
    cols = [row.split("\t") for row in rows]
    return {c[0] for c in cols if any(flag in c[1] for flag in CPF_FLAGS)}


async def _run_all(port: int, paths: list[Path]) -> dict[Path, MessageOutcome]:
    pending = list(paths)
    results: dict[Path, MessageOutcome] = {}

    async def lane() -> None:
        client = await MilterClient.open(port=port)
        await client.negotiate()
        await client.connect("mail.example.org", "192.0.2.10")
        await client.helo("mail.example.org")
        while pending:
            path = pending.pop()
            results[path] = await client.message(
                path.read_bytes(), mail_from="", rcpts=("u@example.net",)
            )
        await client.quit()

    await asyncio.gather(*(lane() for _ in range(16)))
    return results


async def test_corpus_through_the_milter_with_the_shipped_policy(
    corpus: Path, start_milter: Callable[..., Any]
) -> None:
    lures = _cpf_lures(corpus)
    assert len(lures) >= 5
    phish = sorted(p for p in (corpus / "phish-fr").iterdir() if p.suffix == ".eml")
    ham = sorted(p for p in (corpus / "ham").rglob("*") if p.is_file())
    assert lures <= {p.name for p in phish}
    assert len(ham) > 2000
    async with start_milter() as milter:
        results = await _run_all(milter.port, phish + ham)
    assert len(results) == len(phish) + len(ham)
    for path in phish:
        outcome = results[path]
        assert outcome.final.FINAL, path.name
        if path.name in lures:
            acted = (
                outcome.final in (Discard(),)
                or isinstance(outcome.final, ReplyCode)
                or any(isinstance(r, Quarantine | ReplaceBodyChunk) for r in outcome.replies)
            )
            assert acted, f"CPF lure {path.name} went through untouched"
    changed = [
        p.name for p in ham if any(isinstance(r, ReplaceBodyChunk) for r in results[p].replies)
    ]
    not_accepted = [p.name for p in ham if results[p].final != Accept()]
    assert changed == []
    assert not_accepted == []
