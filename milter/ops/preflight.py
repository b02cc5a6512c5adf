"""Checks ``tocsin serve`` makes before it binds, with what to do when one fails."""

from __future__ import annotations

import os
import pwd
from pathlib import Path


class PreflightError(OSError):
    """The daemon cannot do its job; the message says what to run to fix it."""


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _explain(directory: Path, problem: str) -> str:
    name = _user().split(" ")[0]
    return (
        f"quarantine directory {directory}: {problem} for user {_user()}. "
        f"As root, create it for that user: install -d -o {name} -m 0700 {directory} "
        "(the systemd unit does this with StateDirectory=), or choose another one with "
        "--quarantine-dir DIR / quarantine.directory in the settings. "
        f"Le répertoire de quarantaine {directory} n'est pas utilisable par cet utilisateur : "
        "créez-le avec la commande ci-dessus ou choisissez-en un autre."
    )


def prepare_quarantine_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700) when missing; raise PreflightError when this user
    cannot create it or write into it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except PermissionError:
        raise PreflightError(_explain(directory, "cannot be created")) from None
    except FileExistsError:
        raise PreflightError(f"quarantine directory {directory}: not a directory") from None
    except OSError as exc:
        raise PreflightError(f"quarantine directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PreflightError(_explain(directory, "is not writable"))
