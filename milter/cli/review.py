"""``tocsin review``: the quarantine review web page; ``tocsin review passwd NAME``.

A separate process from ``tocsin serve`` (what faces a browser never handles SMTP),
reading the same settings file (``--config``): the quarantine directory and relay, and
the ``review:`` section (listen address, users, TLS). Exit codes: 0 ok; 2 usage or
unsafe settings; 6 the quarantine store failed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from milter.frontends.settings import ReviewSettings, ServeSettings
    from milter.policy.model import Policy

EXIT_OK, EXIT_USAGE, EXIT_STORE = 0, 2, 6
LOOPBACK = ("127.", "::1", "[::1]", "localhost")


def add_review_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tocsin review`` and ``tocsin review passwd``."""
    parser = sub.add_parser("review", help="the quarantine review web page")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE", help="settings file")
    parser.add_argument(
        "--listen", default=None, metavar="HOST:PORT", help="default 127.0.0.1:8895"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, metavar="DIR", help="quarantine directory"
    )
    commands = parser.add_subparsers(dest="review_command")
    passwd = commands.add_parser("passwd", help="set a review user's password")
    passwd.add_argument(
        "--config",
        dest="passwd_config",
        type=Path,
        default=None,
        metavar="FILE",
        help="settings file (its review.users_file)",
    )
    passwd.add_argument("name", metavar="NAME", help="user name (no ':' and no spaces)")
    passwd.set_defaults(run=run_passwd)
    parser.set_defaults(run=run_review)


def _error(message: str) -> None:
    print(f"tocsin: {message}", file=sys.stderr)


def _settings(path: Path | None) -> ServeSettings | None:
    from milter.frontends.settings import load_settings
    from milter.policy.errors import PolicyInvalid

    try:
        return load_settings(path)
    except PolicyInvalid as exc:
        for problem in exc.errors:
            _error(str(problem))
    except OSError as exc:
        _error(f"cannot read {path}: {exc.strerror or exc}")
    return None


def read_users(review: ReviewSettings) -> dict[str, str]:
    """Users of the settings (``users``) and of ``users_file`` (``NAME:HASH`` lines)."""
    users = dict(review.users or {})
    path = review.users_file
    if path is not None and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, stored = line.strip().partition(":")
            if sep and name and not name.startswith("#"):
                users[name] = stored
    return users


def _write_users(path: Path, users: dict[str, str]) -> None:
    from milter.review.atomic import write_atomic

    text = "# tocsin review users: NAME:scrypt hash (tocsin review passwd NAME)\n" + "".join(
        f"{name}:{stored}\n" for name, stored in sorted(users.items())
    )
    write_atomic(path, text, 0o600)


def _new_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n") or None
    first = getpass.getpass("Mot de passe / Password: ")
    if first != getpass.getpass("Encore / Again: "):
        _error("the two passwords differ / les deux mots de passe diffèrent")
        return None
    return first or None


def run_passwd(args: argparse.Namespace) -> int:
    """Set NAME's password in ``review.users_file`` (or print the settings line)."""
    from milter.review.passwords import hash_password

    settings = _settings(args.passwd_config or args.config)
    if settings is None:
        return EXIT_USAGE
    name = args.name
    if not name or ":" in name or any(c.isspace() for c in name) or len(name) > 64:
        _error(f"not a user name (no ':', no spaces, at most 64 characters): {name!r}")
        return EXIT_USAGE
    password = _new_password()
    if password is None:
        _error("no password given")
        return EXIT_USAGE
    stored = hash_password(password)
    path = settings.review.users_file
    if path is None:
        print(f'review:\n  users:\n    {name}: "{stored}"')
        return EXIT_OK
    try:
        users = read_users(settings.review.model_copy(update={"users": {}}))
        users[name] = stored
        _write_users(path, users)
    except OSError as exc:
        _error(f"cannot write {path}: {exc.strerror or exc}")
        return EXIT_USAGE
    print(f"{name}: password set in {path}")
    return EXIT_OK


def _host_port(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def run_review(args: argparse.Namespace) -> int:
    """Serve the review page until SIGINT/SIGTERM."""
    settings = _settings(args.config)
    if settings is None:
        return EXIT_USAGE
    review = settings.review
    listen = _host_port(args.listen or review.listen)
    relay = _host_port(settings.quarantine.relay)
    if listen is None or relay is None:
        _error(f"expected HOST:PORT, got {args.listen or review.listen!r}")
        return EXIT_USAGE
    tls = review.tls_cert is not None and review.tls_key is not None
    if not listen[0].startswith(LOOPBACK) and not (tls or review.behind_https_proxy):
        _error(
            f"refusing to serve the review page on {listen[0]} without HTTPS: set "
            "review.tls_cert/tls_key, or review.behind_https_proxy behind a TLS proxy"
        )
        return EXIT_USAGE
    users = read_users(review)
    if not users:
        _error("no review user yet: run `tocsin review passwd NAME` first")
        return EXIT_USAGE
    return _serve(args, settings, listen, relay, users)


def _check_redirect_path(policy: Policy) -> None:
    """Warn when a policy's ``redirect_url`` does not point at this app's warning page."""
    from urllib.parse import urlsplit

    from milter.review.warning import PATH

    doc = policy.document
    for actions in (doc.actions, *(o.actions for o in doc.recipient_domains.values())):
        url = actions.redirect_url if actions else None
        redirecting = bool(url) and actions is not None and actions.link_rewrite == "redirect"
        if url and redirecting and not urlsplit(url).path.endswith(PATH):
            _error(
                f"warning: actions.redirect_url {url} does not end in {PATH}, the path of "
                "the link warning page this review app serves"
            )


def _serve(
    args: argparse.Namespace,
    settings: ServeSettings,
    listen: tuple[str, int],
    relay: tuple[str, int],
    users: dict[str, str],
) -> int:
    import uvicorn

    from milter.cli.common import CliError, load_or_fail
    from milter.cli.release_banner import banner_transform, link_keys
    from milter.quarantine import QuarantineError
    from milter.quarantine.postgres_config import open_store, redact
    from milter.review.app import ReviewConfig, build_app

    review = settings.review
    tls = review.tls_cert is not None and review.tls_key is not None
    directory = args.dir or settings.quarantine.directory
    shared = None if args.dir else settings.quarantine.database  # docs/shared-quarantine.md
    try:
        store = open_store(
            directory,
            shared,
            password_file=settings.quarantine.database_password_file,
            timeout=settings.quarantine.database_timeout_seconds,
            application_name="tocsin-review",
        )
    except QuarantineError as exc:
        _error(str(exc))
        return EXIT_STORE
    try:
        policy = load_or_fail(settings.policy_dir)
    except CliError as exc:
        _error(str(exc))
        store.close()
        return EXIT_USAGE
    _check_redirect_path(policy)
    config = ReviewConfig(
        users=users,
        relay=relay,
        secure_cookies=tls or review.behind_https_proxy,
        session_seconds=review.session_hours * 3600,
        language=review.language,
        allowlist_file=review.allowlist_file,
        link_keys=link_keys(policy),
        release_transform=banner_transform(policy),
    )
    app = build_app(config, store)
    scheme = "https" if tls else "http"
    host = f"[{listen[0]}]" if ":" in listen[0] else listen[0]
    where = redact(shared) if shared else directory
    print(f"tocsin review on {scheme}://{host}:{listen[1]}/ (quarantine {where})", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=listen[0],
            port=listen[1],
            ssl_certfile=str(review.tls_cert) if tls else None,
            ssl_keyfile=str(review.tls_key) if tls else None,
            server_header=False,
            proxy_headers=review.behind_https_proxy,
            log_level=settings.log_level,
            access_log=False,
        )
    )
    server.run()
    store.close()
    return EXIT_OK if server.started else EXIT_USAGE
