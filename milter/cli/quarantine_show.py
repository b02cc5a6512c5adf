"""Safe inspection of a held message for ``tocsin quarantine show``.

Everything that comes from the message (or from the envelope, which a sender also
controls) is untrusted: HTML is never rendered, only converted to text; links are
shown defanged; control and format characters (ANSI escapes, bidi overrides, zero-width
characters) are printed as visible escapes such as ``\\x1b`` or ``\\u202e``, so nothing
in a message can drive the terminal.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from milter.links import extract_links
from milter.mime.headers import decode_words
from milter.mime.parse import MimeView, parse_message
from milter.quarantine.record import QuarantineRecord, record_as_dict
from milter.text.url import defang_url

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
MAX_LINKS = 200
_INLINE_TYPES = frozenset({"text/plain", "text/html"})
_URL = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"'`]+")


def _escape(char: str) -> str:
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def clean(text: str, multiline: bool = False) -> str:
    """``text`` with every unsafe character replaced by a visible escape.

    Newlines (and tabs) are kept only when ``multiline``; single-line fields show them
    escaped too, so a header value cannot forge extra output lines.
    """
    out: list[str] = []
    for char in text:
        if (multiline and char in "\n\t") or (
            char.isprintable() and unicodedata.category(char) not in _UNSAFE_CATEGORIES
        ):
            out.append(char)
        elif unicodedata.category(char) == "Zs":
            out.append(" ")  # no-break and narrow spaces (French typography)
        else:
            out.append(_escape(char))
    return "".join(out)


def _defanged_text(text: str, hosts: frozenset[str]) -> str:
    """Every URL, and every bare mention of a linked host, defanged."""
    text = _URL.sub(lambda m: defang_url(m.group(0)), text)
    names = sorted((h for h in hosts if "." in h), key=len, reverse=True)
    if not names:
        return text
    bare = re.compile(
        r"(?<![\w.@/\[-])(?:" + "|".join(re.escape(h) for h in names) + r")(?![\w-]|\.[\w-])",
        re.I,
    )
    return bare.sub(lambda m: m.group(0).replace(".", "[.]"), text)


def _attachments(view: MimeView) -> list[dict[str, Any]]:
    return [
        {
            "path": part.path,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": part.size,
        }
        for part in view.parts
        if part.filename or part.content_type not in _INLINE_TYPES
    ]


def inspect_message(raw: bytes) -> dict[str, Any]:
    """Decoded, defanged, never-rendered view of a message (strings still untrusted)."""
    view = parse_message(raw)
    links = extract_links(view.texts, view.htmls, max_links=MAX_LINKS)
    hosts = links.hosts()
    return {
        "headers": [[name, decode_words(value)] for name, value in view.headers],
        "subject": view.subject,
        "attachments": _attachments(view),
        "links": [
            {
                "url": defang_url(link.target or link.url),
                "source": link.source,
                "anchor": _defanged_text(link.anchor, hosts),
                "flags": sorted(str(f) for f in link.flags),
            }
            for link in links
        ],
        "links_truncated": links.truncated,
        "texts": [_defanged_text(t, hosts) for t in view.texts],
        "html_texts": [_defanged_text(t, hosts) for t in view.html_texts],
        "defects": list(view.defects),
    }


def show_json(record: QuarantineRecord, raw: bytes) -> dict[str, Any]:
    """The ``show --json`` object: the record plus the inspected message."""
    return {"record": record_as_dict(record), "message": inspect_message(raw)}


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters; use --full]"


def _envelope_lines(record: QuarantineRecord) -> list[str]:
    env = record.envelope
    sender = "<>" if not env.mail_from else f"<{env.mail_from}>"
    lines = [
        f"envelope from: {clean(sender)}",
        "envelope to:   " + clean(", ".join(f"<{r}>" for r in env.rcpts)),
    ]
    client = " ".join(
        x for x in (env.client_name, f"[{env.client_ip}]" if env.client_ip else "") if x
    )
    if client or env.helo:
        lines.append(f"client:        {clean(client or '?')} helo={clean(env.helo or '?')}")
    if env.queue_id:
        lines.append(f"MTA queue id:  {clean(env.queue_id)}")
    return lines


def _safe(value: object) -> str:
    """One line of untrusted text: URLs defanged, unsafe characters escaped."""
    return clean(_defanged_text(str(value), frozenset()))


def _verdict_lines(verdict: dict[str, Any]) -> list[str]:
    lines = [
        f"verdict:       {clean(str(verdict.get('verdict', '?')))}"
        f"  brand={clean(str(verdict.get('brand')))}  score={clean(str(verdict.get('score')))}"
    ]
    for reason in verdict.get("reasons") or []:
        codes = ",".join(str(c) for c in reason.get("codes", []))
        lines.append(
            f"  reason  {clean(str(reason.get('rule')))}: {_safe(reason.get('text'))}"
            + (f" [{clean(codes)}]" if codes else "")
        )
    for finding in verdict.get("findings") or []:
        evidence = " ".join(f"{k}={v}" for k, v in dict(finding.get("evidence") or {}).items())
        lines.append(
            f"  finding [{clean(str(finding.get('severity')))}] {clean(str(finding.get('code')))}"
            f" ({clean(str(finding.get('check')))}): {_safe(finding.get('text'))}"
        )
        if evidence:
            lines.append(f"          {_safe(evidence)}")
    return lines


def _history_lines(record: QuarantineRecord) -> list[str]:
    lines = []
    for attempt in record.attempts:
        outcome = "accepted" if attempt.get("ok") else "FAILED"
        lines.append(
            f"  {clean(str(attempt.get('at')))} → {clean(str(attempt.get('relay')))}: "
            f"{outcome}: {clean(str(attempt.get('reply')))}"
        )
    return lines


def render(record: QuarantineRecord, raw: bytes, limit: int | None = 20_000) -> str:
    """The human ``show`` output: safe to print on any terminal."""
    info = inspect_message(raw)
    when = record.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"id:            {record.id}",
        f"status:        {record.status}"
        + (f" ({record.released_at:%Y-%m-%d %H:%M:%S} UTC)" if record.released_at else ""),
        f"received:      {when}",
        f"size:          {record.size} bytes  sha256={record.sha256}",
        *_envelope_lines(record),
        *_verdict_lines(record.verdict),
    ]
    history = _history_lines(record)
    if history:
        lines += ["release attempts:", *history]
    lines.append("headers:")
    lines += [f"  {clean(name)}: {clean(value)}" for name, value in info["headers"]]
    if info["attachments"]:
        lines.append("attachments and other parts:")
        for part in info["attachments"]:
            name = clean(part["filename"]) if part["filename"] else "(no name)"
            lines.append(
                f"  {part['path']} {clean(part['content_type'])} {name} {part['size']} bytes"
            )
    if info["links"]:
        more = " (truncated)" if info["links_truncated"] else ""
        lines.append(f"links (defanged){more}:")
        for link in info["links"]:
            anchor = f'  text: "{clean(link["anchor"])}"' if link["anchor"] else ""
            lines.append(f"  {clean(link['url'])}  [{link['source']}]{anchor}")
    if info["defects"]:
        lines.append("MIME defects: " + clean(", ".join(info["defects"])))
    for n, text in enumerate(info["texts"], 1):
        lines += [f"--- text/plain part {n} ---", clean(_truncate(text, limit), multiline=True)]
    for n, text in enumerate(info["html_texts"], 1):
        lines += [
            f"--- text/html part {n}, converted to text (not rendered) ---",
            clean(_truncate(text, limit), multiline=True),
        ]
    return "\n".join(lines)
