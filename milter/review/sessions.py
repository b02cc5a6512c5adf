"""Server-side sessions and the login rate limit, in the review process's memory.

A session id is 256 random bits in an ``HttpOnly; SameSite=Strict`` cookie (``Secure``
behind TLS); the server keeps the user, the CSRF token, the language and the expiry.
Logging out or restarting the process ends every session: nothing to forge or replay.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

COOKIE = "tocsin_session"
PRE_COOKIE = "tocsin_login"  # CSRF double-submit cookie of the login form


@dataclass
class Session:
    """One logged-in browser."""

    user: str
    csrf: str
    expires: float
    lang: str | None = None
    flash: list[tuple[str, str]] = field(default_factory=list)


class SessionStore:
    """Sessions by id, expiring ``lifetime`` seconds after login."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, lang: str | None = None) -> tuple[str, Session]:
        """A new session for ``user``; returns (cookie value, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.lifetime, lang)
        with self._lock:
            self._purge()
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid``, or None."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[sid]
                return None
            return session

    def drop(self, sid: str | None) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _purge(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds per client address and
    per user name; a success does not reset the address's count."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> float:
        """Seconds to wait before another try for any of ``keys`` (0: allowed)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                times[0] + self.window - now
                for times in (self._recent(k, now) for k in keys)
                if len(times) >= self.attempts
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count one failed login for each of ``keys``."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
