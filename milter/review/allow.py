""" "Release and allow this sender": append an allowlist entry to a policy file.

The entry is as narrow as the message it comes from: the From domain **and** the
envelope sender's domain must both match, and only the finding codes that held this
message are dropped (``AllowEntry.codes``), so a later lure with other tricks from the
same domain is still caught. The file (``review.allowlist_file`` in the settings) must be
the only file of the policy directory with an ``allowlist:`` list (lists replace when
policy files merge); the milter applies it after ``systemctl reload tocsin`` (SIGHUP).
The file is rewritten atomically (write, fsync, rename); comments in it are not kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import yaml

from milter.quarantine.record import QuarantineRecord
from milter.review.atomic import write_atomic

HEADER = (
    '# Allowlist entries added by `tocsin review` ("release and allow sender").\n'
    "# Entrées ajoutées par la page de revue (« libérer et autoriser l'expéditeur »).\n"
    "# Edit by hand if you like: comments are not kept. docs/review.md\n"
)


def _domain(address: str) -> str | None:
    _, _, domain = address.rpartition("@")
    return domain.lower().rstrip(".") or None if "@" in address else None


def allow_entry(record: QuarantineRecord, actor: str, now: datetime) -> dict[str, Any]:
    """The allowlist entry for ``record``'s sender (ValueError when it has no domain)."""
    from_domain = _domain(parseaddr(record.header_from)[1])
    mail_from_domain = _domain(record.envelope.mail_from or "")
    if not from_domain:
        raise ValueError("the message has no From address domain to allow")
    entry: dict[str, Any] = {
        "reason": f"released and allowed by {actor} on {now:%Y-%m-%d} (quarantine {record.id})",
        "from_domain": from_domain,
    }
    if mail_from_domain:
        entry["mail_from_domain"] = mail_from_domain
    codes = sorted(
        {
            str(f["code"])
            for f in record.verdict.get("findings") or []
            if isinstance(f, dict) and f.get("code")
        }
    )
    if codes:
        entry["codes"] = codes
    return entry


def allow_sender(path: Path, record: QuarantineRecord, actor: str) -> str:
    """Append the entry for ``record`` to ``path``; return the allowed From domain."""
    entry = allow_entry(record, actor, datetime.now(UTC))
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict) or not isinstance(loaded.get("allowlist", []), list):
            raise ValueError(f"{path} is not a policy file with an allowlist list")
        data = loaded
    entries = list(data.get("allowlist") or [])
    if not any(_same(e, entry) for e in entries):
        entries.append(entry)
    data["allowlist"] = entries
    text = HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    write_atomic(path, text, 0o644)
    return str(entry["from_domain"])


def _same(a: object, b: dict[str, Any]) -> bool:
    keys = ("from_domain", "mail_from_domain", "codes")
    return isinstance(a, dict) and all(a.get(k) == b.get(k) for k in keys)
