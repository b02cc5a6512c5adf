"""deploy/postfix snippets for the SMTP filter: checked by the real postconf, and they fit
Tocsin's own defaults (ports, deadlines)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from milter.frontends.settings import SmtpSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "postfix"
AFTER_MAIN = DEPLOY / "smtp-filter-after-queue.main.cf.snippet"
AFTER_MASTER = DEPLOY / "smtp-filter-after-queue.master.cf.snippet"
BEFORE_MASTER = DEPLOY / "smtp-filter-before-queue.master.cf.snippet"
RELEASE_MASTER = DEPLOY / "master.cf.snippet"
POSTCONF = shutil.which("postconf") or (
    "/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None
)


def _options(path: Path) -> dict[str, str]:
    words = [w for ln in path.read_text().splitlines() if ln[:1].isspace() for w in ln.split()]
    assert all(w == "-o" for w in words[0::2])
    return dict(o.partition("=")[::2] for o in words[1::2])


def test_the_snippets_point_at_tocsins_defaults() -> None:
    defaults = SmtpSettings()
    host, port = defaults.listen.rsplit(":", 1)
    assert f"content_filter = tocsin:[{host}]:{port}\n" in AFTER_MAIN.read_text()
    assert _options(BEFORE_MASTER)["smtpd_proxy_filter"] == defaults.listen
    assert f"\n{defaults.next_hop} inet " in RELEASE_MASTER.read_text()  # the next hop exists
    # Postfix must wait longer than Tocsin's deadline, or the sender gets Postfix's 451
    proxy_timeout = int(_options(BEFORE_MASTER)["smtpd_proxy_timeout"].rstrip("s"))
    assert proxy_timeout > defaults.deadline_seconds
    done_timeout = int(_options(AFTER_MASTER)["smtp_data_done_timeout"].rstrip("s"))
    assert done_timeout > defaults.deadline_seconds
    assert _options(AFTER_MASTER)["smtp_send_xforward_command"] == "yes"


@pytest.mark.skipif(POSTCONF is None, reason="Postfix's postconf is not installed here")
def test_postconf_knows_every_parameter_of_both_wirings(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text(AFTER_MAIN.read_text())
    masters = (RELEASE_MASTER, AFTER_MASTER, BEFORE_MASTER)
    (tmp_path / "master.cf").write_text("".join(p.read_text() for p in masters))
    assert POSTCONF is not None
    for flag in ("-n", "-M", "-P"):
        result = subprocess.run(
            [POSTCONF, "-c", str(tmp_path), flag], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", result.stderr  # "unused parameter" warnings land here
    services = subprocess.run(
        [POSTCONF, "-c", str(tmp_path), "-M"], capture_output=True, text=True, check=False
    ).stdout
    assert "tocsin     unix" in services or "tocsin unix" in " ".join(services.split())
    assert "smtp inet" in " ".join(services.split())


def _maxproc(path: Path, service: str) -> int:
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields[:1] == [service] and not line[:1].isspace():
            return int(fields[6])
    raise AssertionError(f"no {service} service in {path.name}")


def test_the_next_hop_has_a_process_for_every_session_the_filter_may_hold() -> None:
    """Each message in the filter holds a session with the 10026 smtpd, each worker keeps
    up to next_hop_sessions more open between messages, and a quarantine release needs
    one: short of processes there, a new session waits for a free one (and may time out)."""
    defaults = SmtpSettings()
    concurrency = max(_maxproc(AFTER_MASTER, "tocsin"), _maxproc(BEFORE_MASTER, "smtp"))
    needed = concurrency + defaults.workers * defaults.next_hop_sessions + 1
    assert _maxproc(RELEASE_MASTER, defaults.next_hop) >= needed
