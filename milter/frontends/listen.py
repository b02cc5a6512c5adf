"""Listening addresses in the MTA's own notation, and the sockets behind them.

Accepted forms (the first two are what Postfix's ``smtpd_milters`` uses):
``inet:HOST:PORT``, ``inet:[IPv6]:PORT``, ``unix:/path`` (also ``local:/path``), and
Sendmail's ``inet:PORT@HOST`` / ``inet6:PORT@HOST``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LISTEN = "inet:127.0.0.1:8894"


class ListenError(ValueError):
    """A listening address that cannot be parsed or bound."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the milter listens: a TCP host and port, or a Unix socket path."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @property
    def is_unix(self) -> bool:
        """True for a Unix-domain socket."""
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"inet:{host}:{self.port}"


def parse_listen(spec: str) -> ListenAddress:
    """Parse ``spec``; raise ListenError naming what is wrong."""
    kind, sep, rest = spec.strip().partition(":")
    if not sep or not rest:
        raise ListenError(f"{spec!r}: expected inet:HOST:PORT or unix:/path")
    kind = kind.lower()
    if kind in ("unix", "local"):
        if not rest.startswith("/"):
            raise ListenError(f"{spec!r}: the Unix socket path must be absolute")
        return ListenAddress(path=Path(rest))
    if kind not in ("inet", "inet6"):
        raise ListenError(f"{spec!r}: unknown socket type {kind!r} (inet or unix)")
    if "@" in rest:  # Sendmail: inet:PORT@HOST
        port_text, _, host = rest.partition("@")
    elif rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if not tail.startswith(":"):
            raise ListenError(f"{spec!r}: expected inet:[IPv6]:PORT")
        port_text = tail[1:]
    elif ":" in rest:
        host, _, port_text = rest.rpartition(":")
    else:
        raise ListenError(f"{spec!r}: expected inet:HOST:PORT (the port is missing)")
    return ListenAddress(host=_host(spec, host), port=_port(spec, port_text))


def parse_endpoint(spec: str) -> ListenAddress:
    """``HOST:PORT`` / ``[IPv6]:PORT`` (the SMTP side's notation) or any `parse_listen` form."""
    kind = spec.strip().partition(":")[0].lower()
    if kind in ("inet", "inet6", "unix", "local"):
        return parse_listen(spec)
    try:
        return parse_listen("inet:" + spec.strip())
    except ListenError as exc:  # name the address as the admin wrote it
        reason = str(exc).split(": ", 1)[-1].replace("inet:HOST:PORT", "HOST:PORT")
        raise ListenError(f"{spec!r}: {reason}") from None


def _host(spec: str, host: str) -> str:
    host = host.strip("[]")
    if not host:
        raise ListenError(f"{spec!r}: missing host (use 127.0.0.1 for loopback only)")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    if host == "localhost" or all(part.isalnum() or "-" in part for part in host.split(".")):
        return host
    raise ListenError(f"{spec!r}: {host!r} is not an IP address or host name")


def _port(spec: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ListenError(f"{spec!r}: port must be a number from 1 to 65535")
    return int(text)


def bind(address: ListenAddress, *, backlog: int = 256, mode: int = 0o660) -> socket.socket:
    """A listening socket for ``address``, inheritable by worker processes.

    A stale Unix socket file is replaced, but never a regular file or a socket that
    still has a listener (another Tocsin is running).
    """
    sock = _bind_unix(address.path, mode) if address.path is not None else _bind_inet(address)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def no_delay(transport: asyncio.BaseTransport) -> socket.socket | None:
    """Turn Nagle off on an accepted TCP connection; the socket, or None (Unix socket).

    Without it a reply written in several pieces (a multi-line EHLO answer) waits for the
    client's delayed acknowledgement: ~40 ms per message on Linux. asyncio sets the option
    only on sockets whose ``proto`` is IPPROTO_TCP, which sockets made with
    ``socket(family, SOCK_STREAM)`` are not, so it is set here whatever made the socket.
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock  # type: ignore[no-any-return]


def _bind_inet(address: ListenAddress) -> socket.socket:
    assert address.host is not None
    assert address.port is not None
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"{address}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)  # proto 0: see `no_delay`
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise ListenError(f"{address}: {exc.strerror}") from None
    return sock


def _bind_unix(path: Path, mode: int) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ListenError(f"unix:{path}: exists and is not a socket; not removing it")
        if _has_listener(path):
            raise ListenError(f"unix:{path}: another process is listening there")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise ListenError(f"unix:{path}: {exc.strerror}") from None
    return sock


def _has_listener(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
