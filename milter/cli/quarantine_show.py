"""Safe inspection of a held message for ``tocsin quarantine show``.

Everything that comes from the message (or from the envelope, which a sender also
controls) is untrusted: HTML is never rendered, only converted to text; links are
shown defanged; control and format characters (ANSI escapes, bidi overrides, zero-width
characters) are printed as visible escapes such as ``\\x1b`` or ``\\u202e``, so nothing
in a message can drive the terminal.
"""

from __future__ import annotations

from typing import Any

from milter.quarantine.record import QuarantineRecord, record_as_dict
from milter.review.inspect import clean, defanged_text, inspect_message

__all__ = ["clean", "inspect_message", "render", "show_json"]


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
    return clean(defanged_text(str(value), frozenset()))


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
