"""Every corpus message through banner + link rewriting and back through the parser.

The issue's "done when": same MIME tree, attachments byte-identical, no crash, and a
second pass changes nothing. Link rewriting is forced on every host the message links
to (far more than a real verdict would name), so every link-bearing part is exercised.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from milter.actions.banner import HTML_START, PLAIN_START, render_banner
from milter.actions.compose import edit_body
from milter.actions.defang import LinkRewrite
from milter.actions.redirect import RedirectSigner
from milter.actions.targets import LinkTargets
from milter.mime.headers import split_message
from milter.policy.model import Policy

FOLDERS = ("phish-fr", "ham", "robustness")
_HOST = re.compile(r"(?i)(?:https?://|www\.)([a-z0-9.-]+\.[a-z]{2,})")
BASE = "https://warn.example/r"


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(
        p
        for folder in FOLDERS
        for p in (corpus / folder).rglob("*")
        if p.is_file() and p.suffix not in (".tsv", ".md")
    )


def tree(msg: Message) -> list[tuple[str, str | None]]:
    return [(p.get_content_type(), p.get_boundary()) for p in msg.walk()]


def leaves(msg: Message) -> list[tuple[str, bytes | None]]:
    """Decoded payloads of every non-text or attached part (what must not change)."""
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        attached = part.get_content_disposition() == "attachment" or part.get_filename()
        if attached or part.get_content_maintype() != "text":
            payload = part.get_payload(decode=True)
            out.append((part.get_content_type(), payload if isinstance(payload, bytes) else None))
    return out


def linked_hosts(msg: Message) -> set[str]:
    hosts: set[str] = set()
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                hosts |= {h.lower() for h in _HOST.findall(payload.decode("latin-1"))}
    return hosts


def texts(msg: Message) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("latin-1"))
    return "\n".join(chunks)


def round_trip(raw: bytes, banner, key: bytes, *, redirect: bool) -> str:
    """Returns a failure description, or "" when the message survived."""
    old = message_from_bytes(raw, policy=compat32)
    targets = LinkTargets.of(hosts=linked_hosts(old))
    how = RedirectSigner.for_message(BASE, key, ["r@example.fr"]) if redirect else None
    links = LinkRewrite(targets.keeping(BASE), how)
    body = edit_body(raw, banner=banner, links=links)
    if body is None:
        return ""
    new_raw = split_message(raw)[0] + body
    new = message_from_bytes(new_raw, policy=compat32)
    if tree(old) != tree(new):
        return "MIME tree changed"
    if leaves(old) != leaves(new):
        return "an attachment or non-text part changed"
    seen = texts(new)
    if seen.count(HTML_START) > 1 or seen.count(PLAIN_START) > 1:
        return "more than one banner"
    if edit_body(new_raw, banner=banner, links=links) is not None:
        return "a second pass changed the body again"
    return ""


@pytest.mark.parametrize("redirect", [False, True], ids=["defang", "redirect"])
def test_corpus_survives_banner_and_link_rewriting(
    corpus: Path, policy: Policy, redirect: bool
) -> None:
    doc = policy.document
    texts_ = [(doc.banners[lang], lang) for lang in doc.actions.banner_languages]
    banner = render_banner(texts_, "Assurance Maladie", ["link to evil[.]example"], {})
    files = corpus_files(corpus)
    if redirect:  # the redirect variant only needs the lures and the odd MIME
        files = [f for f in files if "/ham/" not in str(f)]
    assert len(files) > (150 if redirect else 2200)
    failures = []
    for path in files:
        problem = round_trip(path.read_bytes(), banner, b"k" * 32, redirect=redirect)
        if problem:
            failures.append(f"{path.relative_to(corpus)}: {problem}")
    assert failures == []
