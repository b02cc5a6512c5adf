"""How ``tocsin scan`` prints a result: human lines or one JSON object."""

from __future__ import annotations

from typing import Any

from milter.engine import ScanResult


def scan_json(file: str, result: ScanResult, *, offline: bool = False) -> dict[str, Any]:
    """The JSON object of ``tocsin scan --json`` (contract in docs/cli.md).

    ``auth_evaluated`` is false when the scan ran offline (no DNS): SPF, DKIM, DMARC and
    ARC were then not checked and the live milter may decide differently.
    """
    verdict = result.verdict
    return {
        "file": file,
        "auth_evaluated": not offline,
        "verdict": str(verdict.disposition),
        "would": str(verdict.would) if verdict.would is not None else None,
        "brand": verdict.brand,
        "score": verdict.score,
        "reasons": [r.as_dict() for r in verdict.reasons],
        "findings": [f.as_dict() for f in verdict.findings],
        "auth": {
            method: [a.as_dict() for a in verdict.auth if a.method == method]
            for method in ("spf", "dkim", "dmarc", "arc")
        },
        "edits": result.plan.as_dict(),
        "elapsed_ms": round(result.elapsed_ms, 3),
    }


def print_scan_human(file: str, result: ScanResult, *, offline: bool = False) -> None:
    """A readable block per message."""
    verdict = result.verdict
    brand = f" brand={verdict.brand}" if verdict.brand else ""
    would = f" (monitor: would {verdict.would.upper()})" if verdict.would is not None else ""
    print(f"{file}: {verdict.disposition.upper()}{would} score={verdict.score:g}{brand}")
    for reason in verdict.reasons:
        print(f"  reason [{reason.rule}] {reason.text}")
    for finding in verdict.findings:
        print(f"  {finding.severity!s:8} {finding.code}: {finding.text}")
    if offline:
        print("  auth not evaluated (offline; --dns to evaluate SPF, DKIM, DMARC, ARC)")
    for auth in verdict.auth:
        print(f"  auth {auth.method}={auth.result} {auth.reason}")
    for edit in result.plan.header_edits:
        print(f"  edit {edit.op} {edit.name}[{edit.index}]: {edit.value}")
    if result.plan.new_body is not None:
        print("  edit body replaced")
    if result.plan.smtp_reply is not None:
        print(f"  reply {result.plan.smtp_reply}")
    if result.plan.quarantine:
        print("  quarantine")
