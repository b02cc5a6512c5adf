"""``tocsin review`` and ``tocsin review passwd`` as an admin runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from milter.review.passwords import verify_password
from tests.review.conftest import ROOT


def tocsin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "milter", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_passwd_writes_a_scrypt_hash_to_the_users_file(tmp_path: Path) -> None:
    users = tmp_path / "etc" / "review-users"
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"review:\n  users_file: {users}\n")
    done = tocsin("review", "passwd", "--config", str(config), "alice", stdin="s3cret\n")
    assert done.returncode == 0, done.stderr
    again = tocsin("review", "passwd", "--config", str(config), "bob", stdin="other\n")
    assert again.returncode == 0, again.stderr
    lines = dict(
        line.split(":", 1) for line in users.read_text().splitlines() if not line.startswith("#")
    )
    assert set(lines) == {"alice", "bob"}
    assert verify_password("s3cret", lines["alice"])
    assert users.stat().st_mode & 0o777 == 0o600


def test_passwd_refuses_a_bad_name_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"review:\n  users_file: {tmp_path / 'u'}\n")
    done = tocsin("review", "passwd", "--config", str(config), "a:b", stdin="x\n")
    assert done.returncode == 2
    assert "not a user name" in done.stderr
    assert "Traceback" not in done.stderr


def test_review_refuses_a_public_address_without_https(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(
        f"quarantine:\n  directory: {tmp_path / 'q'}\n"
        f"review:\n  listen: 0.0.0.0:8895\n  users_file: {tmp_path / 'u'}\n"
    )
    done = tocsin("review", "--config", str(config))
    assert done.returncode == 2
    assert "without HTTPS" in done.stderr
    assert "Traceback" not in done.stderr


def test_review_without_users_says_how_to_add_one(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"review:\n  users_file: {tmp_path / 'absent'}\n")
    done = tocsin("review", "--config", str(config))
    assert done.returncode == 2
    assert "tocsin review passwd NAME" in done.stderr


def test_review_with_a_broken_policy_says_so_and_starts_nothing(tmp_path: Path) -> None:
    from milter.review.passwords import hash_password
    from tests.review.conftest import free_port

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "local.yaml").write_text("actions:\n  link_rewrite: redirect\n")  # no key
    users = tmp_path / "users"
    users.write_text(f"alice:{hash_password('pw')}\n")
    config = tmp_path / "tocsin.yaml"
    config.write_text(
        f"policy_dir: {policies}\nquarantine:\n  directory: {tmp_path / 'q'}\n"
        f"review:\n  listen: 127.0.0.1:{free_port()}\n  users_file: {users}\n"
    )
    (tmp_path / "q").mkdir()
    done = tocsin("review", "--config", str(config))
    assert done.returncode == 2
    assert "invalid policy" in done.stderr
    assert "redirect needs redirect_url and redirect_secret_file" in done.stderr
    assert "Traceback" not in done.stderr
