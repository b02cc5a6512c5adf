"""``tocsin serve`` as a non-root user: it creates its quarantine directory or says what it needs.

The tests run as root (see the README), so each case runs in a child process that drops
to ``nobody`` after importing what it needs (the interpreter itself lives under /root).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
# Import every module of the package (and what they import) while still root: the
# standard library under /root is out of nobody's reach once the ids are dropped.
PROLOGUE = """
import importlib, os, pkgutil, sys
from pathlib import Path
import milter, encodings.idna
for mod in pkgutil.walk_packages(milter.__path__, "milter."):
    if not mod.name.endswith("__main__"):
        importlib.import_module(mod.name)
os.setgroups([]); os.setgid({uid}); os.setuid({uid})
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A scratch directory nobody can reach (pytest's own open_tmp sits under a 0700 dir)."""
    with tempfile.TemporaryDirectory(prefix="tocsin-preflight-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROLOGUE.format(uid=NOBODY) + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_explains_a_root_only_quarantine_dir(open_tmp: Path) -> None:
    state = open_tmp / "lib-tocsin"
    state.mkdir(mode=0o700)  # root-owned 0700, as the quick start leaves /var/lib/tocsin
    target = state / "quarantine"
    run_dir = open_tmp / "run"
    run_dir.mkdir()
    os.chown(run_dir, NOBODY, NOBODY)
    code = (
        f"sys.exit(milter.cli.main(['serve', '--no-dns', '--milter', 'unix:{run_dir}/milter', "
        f"'--quarantine-dir', {str(target)!r}]))"
    )
    result = as_nobody(code)
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert f"install -d -o nobody -m 0700 {target}" in result.stderr
    assert "--quarantine-dir" in result.stderr
    assert "n'est pas utilisable" in result.stderr
    assert not target.exists()
    assert not (run_dir / "milter").exists()  # the socket it had bound is gone again


def test_preflight_creates_a_missing_dir_it_may_create(open_tmp: Path) -> None:
    parent = open_tmp / "home"
    parent.mkdir()
    os.chown(parent, NOBODY, NOBODY)
    target = parent / "a" / "quarantine"
    result = as_nobody(f"milter.ops.preflight.prepare_quarantine_dir(Path({str(target)!r}))")
    assert result.returncode == 0, result.stderr
    assert target.is_dir()
    assert target.stat().st_uid == NOBODY
    assert target.stat().st_mode & 0o777 == 0o700


def test_preflight_refuses_an_existing_dir_it_cannot_write(open_tmp: Path) -> None:
    target = open_tmp / "quarantine"
    target.mkdir(mode=0o755)  # root's, readable but not writable by nobody
    code = (
        "try:\n"
        f"    milter.ops.preflight.prepare_quarantine_dir(Path({str(target)!r}))\n"
        "except milter.ops.preflight.PreflightError as exc:\n"
        "    print(exc); sys.exit(9)\n"
    )
    result = as_nobody(code)
    assert result.returncode == 9, result.stderr
    assert "is not writable for user nobody" in result.stdout
