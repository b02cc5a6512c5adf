"""The review web application: Starlette routes, Jinja2 templates, security headers.

Why Starlette (+ uvicorn, Jinja2): a small, maintained ASGI toolkit on the asyncio we
already use (``release()`` is async), with routing, form parsing and static files and
nothing else to configure; uvicorn parses HTTP (h11), not us. Jinja2 autoescapes every
value in the templates, so untrusted text can only ever be text.

Routes are the list ``ROUTES``; ``build_app(..., extra_routes=[...])`` prepends more
(another page of the same process, e.g. a redirect warning) without touching this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milter.quarantine.backend import QuarantineBackend
from milter.quarantine.release import ReleaseTransform
from milter.review import views, warning
from milter.review.i18n import WORDS
from milter.review.inspect import clean
from milter.review.meanings import meaning, reason_line
from milter.review.sessions import LoginLimiter, SessionStore

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True)
class ReviewConfig:
    """What the review page needs from the settings.

    Attributes:
        users: user name → scrypt hash (``tocsin review passwd NAME``).
        relay: (host, port) released mail is re-injected to.
        secure_cookies: add ``Secure`` to cookies (own TLS or an HTTPS reverse proxy).
        session_seconds: a login lasts this long.
        language: default language when the browser asks for neither fr nor en.
        page_size: items per list page.
        allowlist_file: YAML policy file "release and allow sender" appends to (None:
            the action is not offered).
        link_keys: the policy's redirect keys; the link warning page (``/link``) accepts
            links signed with any of them (none: every link is refused).
        release_transform: given the held message, its stored verdict and whether the
            admin says it was a false positive, the new body to release (None: as held);
            built by ``tocsin review`` from the engine, which this package may not import.
    """

    users: dict[str, str]
    relay: tuple[str, int] = ("127.0.0.1", 10026)
    secure_cookies: bool = False
    session_seconds: float = 8 * 3600
    language: str = "fr"
    page_size: int = 50
    allowlist_file: Path | None = None
    login_attempts: int = 5
    login_window_seconds: float = 300.0
    link_keys: tuple[bytes, ...] = ()
    release_transform: ReleaseTransform | None = None


@dataclass
class ReviewState:
    """Shared by every request of one process (``request.app.state.review``)."""

    config: ReviewConfig
    store: QuarantineBackend
    templates: Environment
    sessions: SessionStore
    limiter: LoginLimiter
    brands: list[str] = field(default_factory=list)


class SecurityHeaders:
    """Adds the strict CSP and friends to every HTTP response (pure ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, add_headers)


def templates() -> Environment:
    """The Jinja2 environment: autoescape on for every template, ``clean`` filter."""
    env = Environment(
        loader=PackageLoader("milter.review", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clean"] = clean
    env.globals["meaning"] = meaning
    env.globals["reason_line"] = reason_line
    env.globals["words"] = WORDS
    return env


ROUTES: list[BaseRoute] = [
    Route("/", views.list_page, methods=["GET"], name="list"),
    Route(warning.PATH, warning.link_warning, methods=["GET"], name="link"),
    Route("/login", views.login_form, methods=["GET"], name="login"),
    Route("/login", views.login_submit, methods=["POST"]),
    Route("/logout", views.logout, methods=["POST"], name="logout"),
    Route("/lang", views.set_lang, methods=["POST"], name="lang"),
    Route("/audit", views.audit_page, methods=["GET"], name="audit"),
    Route("/bulk", views.bulk_action, methods=["POST"], name="bulk"),
    Route("/m/{qid}", views.message_page, methods=["GET"], name="message"),
    Route("/m/{qid}/{action}", views.item_action, methods=["POST"], name="action"),
    Mount(
        "/static",
        app=StaticFiles(directory=str(Path(__file__).parent / "static")),
        name="static",
    ),
]


def build_app(
    config: ReviewConfig,
    store: QuarantineBackend,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI application (run it with uvicorn; ``tocsin review`` does)."""
    app = Starlette(routes=[*extra_routes, *ROUTES])
    app.add_middleware(SecurityHeaders)
    app.state.review = ReviewState(
        config,
        store,
        templates(),
        SessionStore(config.session_seconds),
        LoginLimiter(config.login_attempts, config.login_window_seconds),
    )
    return app
