"""The redirect secret: read from a file the admin controls, never from the policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from milter.policy.schema import Actions

URL = "https://warn.example/r"


def secret_file(folder: Path, data: bytes = b"", mode: int = 0o600) -> Path:
    path = folder / "redirect.key"
    path.write_bytes(data or os.urandom(32).hex().encode())
    path.chmod(mode)
    return path


def error_of(**kw: object) -> str:
    with pytest.raises(ValidationError) as info:
        Actions.model_validate(kw)
    return str(info.value)


def test_key_is_read_at_load_and_never_dumped(tmp_path: Path) -> None:
    path = secret_file(tmp_path, b"  " + b"s" * 40 + b"\n")
    actions = Actions.model_validate(
        {"link_rewrite": "redirect", "redirect_url": URL, "redirect_secret_file": str(path)}
    )
    assert actions.redirect_key == b"s" * 40
    assert b"s" * 40 not in repr(actions).encode()
    assert "s" * 40 not in str(actions.model_dump(mode="json"))
    assert Actions().redirect_key is None


def test_redirect_without_url_or_secret_is_refused(tmp_path: Path) -> None:
    assert "redirect needs redirect_url and redirect_secret_file" in error_of(
        link_rewrite="redirect"
    )
    path = secret_file(tmp_path)
    assert "redirect needs redirect_url" in error_of(
        link_rewrite="redirect", redirect_secret_file=str(path)
    )
    assert "redirect needs redirect_secret_file" in error_of(
        link_rewrite="redirect", redirect_url=URL
    )
    assert "redirect_url" in error_of(redirect_url="http://warn.example/r")  # https only


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: Path("redirect.key"), "must be an absolute path"),
        (lambda d: d / "missing.key", "No such file"),
        (lambda d: d, "is not a regular file"),
        (lambda d: secret_file(d, mode=0o644), "is open to every user"),
        (lambda d: secret_file(d, b"short"), "holds 5 bytes"),
    ],
)
def test_bad_secret_files_are_refused(tmp_path: Path, setup, message: str) -> None:
    path = setup(tmp_path)
    assert message in error_of(redirect_secret_file=str(path))


def test_a_secret_inside_a_git_work_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "policies").mkdir()
    path = secret_file(tmp_path / "policies")
    assert "inside the git work tree" in error_of(redirect_secret_file=str(path))
