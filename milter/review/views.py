"""Request handlers of the review page. State changes are POST only, each checked for a
session and its CSRF token; every action is written to the audit trail."""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from milter.quarantine.backend import STATES, AuditEntry, ListQuery
from milter.quarantine.errors import InvalidQuarantineId, QuarantineError, QuarantineNotFound
from milter.quarantine.ids import validate_id
from milter.quarantine.release import ReleaseError, release
from milter.review.allow import allow_sender
from milter.review.explain import explain
from milter.review.i18n import LANGS, pick, translator
from milter.review.inspect import inspect_message
from milter.review.passwords import DUMMY_HASH, verify_password
from milter.review.sessions import COOKIE, PRE_COOKIE, Session

if TYPE_CHECKING:
    from milter.review.app import ReviewState

Handler = Callable[[Request, Session], Awaitable[Response]]
ACTIONS = ("release", "delete", "release-allow")
MAX_BULK = 500


def _state(request: Request) -> ReviewState:
    state: ReviewState = request.app.state.review
    return state


def _session(request: Request) -> Session | None:
    return _state(request).sessions.get(request.cookies.get(COOKIE))


def _lang(request: Request, session: Session | None) -> str:
    if session is not None and session.lang in LANGS:
        return session.lang
    return pick(request.headers.get("accept-language", ""), _state(request).config.language)


def render(
    request: Request, name: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render template ``name`` (autoescaped) with the common context."""
    lang = _lang(request, session)
    flash = list(session.flash) if session else []
    if session:
        session.flash.clear()
    html = (
        _state(request)
        .templates.get_template(name)
        .render(
            t=translator(lang),
            lang=lang,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            flash=flash,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_state(request).config.secure_cookies,
    )


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=MAX_BULK + 20)


def _csrf_ok(expected: str, form: FormData) -> bool:
    given = form.get("csrf")
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given, expected)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def login_required(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """GET without a session → the login page; POST also needs the session's CSRF token."""

    async def wrapped(request: Request) -> Response:
        session = _session(request)
        if session is None:
            return _to_login()
        if request.method == "POST":
            form = await _form(request)
            if not _csrf_ok(session.csrf, form):
                t = translator(_lang(request, session))
                return render(request, "error.html", session, 403, message=t("csrf"))
            request.state.form = form
        return await handler(request, session)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def _audit(request: Request, entry: AuditEntry) -> None:
    # the action's own result is still shown if the trail cannot be written
    with contextlib.suppress(QuarantineError):
        await run_in_threadpool(_state(request).store.record_action, entry)


# -- login ----------------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    """The login form, with a double-submit CSRF cookie."""
    token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", None, login_csrf=token, error=None)
    _set_cookie(request, response, PRE_COOKIE, token, 3600)
    return response


async def login_submit(request: Request) -> Response:
    """Check the CSRF cookie, the rate limit, then the password (scrypt)."""
    state = _state(request)
    t = translator(_lang(request, None))
    form = await _form(request)
    token = request.cookies.get(PRE_COOKIE, "")
    if not _csrf_ok(token, form):
        return render(request, "error.html", None, 403, message=t("csrf"))
    user = str(form.get("user", ""))[:100]
    password = str(form.get("password", ""))
    client = request.client.host if request.client else "?"
    keys = (f"ip:{client}", f"user:{user.lower()}")
    wait = state.limiter.blocked(*keys)
    if wait > 0:
        await _audit(request, AuditEntry.now(user or "-", "login", None, "blocked", client))
        refused = render(
            request, "login.html", None, 429, login_csrf=token,
            error=t("login_blocked", seconds=int(wait) + 1),
        )  # fmt: skip
        refused.headers["retry-after"] = str(int(wait) + 1)
        return refused
    stored = state.config.users.get(user)
    good = await run_in_threadpool(verify_password, password, stored or DUMMY_HASH)
    if not (good and stored):
        state.limiter.failed(*keys)
        await _audit(request, AuditEntry.now(user or "-", "login", None, "failed", client))
        return render(request, "login.html", None, 401, login_csrf=token, error=t("login_failed"))
    sid, _ = state.sessions.create(user, _lang(request, None))
    await _audit(request, AuditEntry.now(user, "login", None, "ok", client))
    response = RedirectResponse("/", status_code=303)
    _set_cookie(request, response, COOKIE, sid, int(state.config.session_seconds))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@login_required
async def logout(request: Request, session: Session) -> Response:
    """End the session."""
    _state(request).sessions.drop(request.cookies.get(COOKIE))
    await _audit(request, AuditEntry.now(session.user, "logout", None, "ok"))
    response = _to_login()
    response.delete_cookie(COOKIE, path="/")
    return response


@login_required
async def set_lang(request: Request, session: Session) -> Response:
    """Switch the session's language (fr/en)."""
    lang = request.state.form.get("lang")
    if lang in LANGS:
        session.lang = str(lang)
    back = str(request.state.form.get("back", "/"))
    return RedirectResponse(
        back if back.startswith("/") and not back.startswith("//") else "/", 303
    )


# -- list -----------------------------------------------------------------------------------


def _day(text: str | None) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(text or ""), datetime.min.time(), UTC)
    except ValueError:
        return None


def _query(params: Any, page_size: int) -> tuple[ListQuery, dict[str, str]]:
    """The ListQuery of the list page's query string, and the filters to show back."""
    keys = ("state", "brand", "verdict", "rcpt", "sender", "q", "since", "until")
    shown = {k: str(params.get(k, "")).strip()[:200] for k in keys}
    if "state" not in params:
        shown["state"] = "held"
    until = _day(shown["until"])
    before = params.get("before")
    try:
        before = validate_id(before) if before else None
    except InvalidQuarantineId:
        before = None
    state = shown["state"] if shown["state"] in STATES else None
    query = ListQuery(
        state=state,
        brand=shown["brand"] or None,
        verdict=shown["verdict"] or None,
        recipient=shown["rcpt"] or None,
        sender=shown["sender"] or None,
        text=shown["q"] or None,
        since=_day(shown["since"]),
        until=until + timedelta(days=1) if until else None,
        before=before,
        limit=page_size,
    )
    return query, shown


def age(when: datetime, now: datetime, t: Callable[..., str]) -> str:
    """``12 min``, ``5 h``, ``3 j`` (``d`` in English)."""
    minutes = max(0, int((now - when).total_seconds() // 60))
    if minutes < 120:
        return t("minutes", n=minutes)
    if minutes < 48 * 60:
        return t("hours", n=minutes // 60)
    return t("days", n=minutes // 1440)


@login_required
async def list_page(request: Request, session: Session) -> Response:
    """Held messages, newest first, filtered, one page."""
    state = _state(request)
    query, shown = _query(request.query_params, state.config.page_size)
    try:
        page = await run_in_threadpool(state.store.search, query)
        brands = await run_in_threadpool(_brands, state)
    except QuarantineError as exc:
        return render(request, "error.html", session, 503, message=str(exc))
    t = translator(_lang(request, session))
    now = datetime.now(UTC)
    return render(
        request,
        "list.html",
        session,
        page=page,
        items=[(item, age(item.received_at, now, t)) for item in page.items],
        filters=shown,
        brands=brands,
        states=STATES,
        allow=state.config.allowlist_file is not None,
        here=_page_url(request, query.before),
        next_url=_page_url(request, page.next_before) if page.next_before else None,
        first_url=_page_url(request, None) if query.before else None,
    )


def _brands(state: ReviewState) -> list[str]:
    brands = getattr(state.store, "brands", None)
    return list(brands()) if callable(brands) else []


def _page_url(request: Request, before: str | None) -> str:
    """This list page's URL with the same filters, starting before ``before``."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
    if before:
        params.append(("before", before))
    return "/?" + urlencode(params)


# -- one message ----------------------------------------------------------------------------


@login_required
async def message_page(request: Request, session: Session) -> Response:
    """The safe view: explanation first, then envelope, headers, text, links, parts."""
    state = _state(request)
    t = translator(_lang(request, session))
    try:
        qid = validate_id(request.path_params["qid"])
        record = await run_in_threadpool(state.store.get, qid)
        raw = await run_in_threadpool(state.store.read_message, qid)
        info = await run_in_threadpool(inspect_message, raw)
        trail = await run_in_threadpool(state.store.audit_trail, qid, 50)
    except (InvalidQuarantineId, QuarantineNotFound):
        return render(request, "error.html", session, 404, message=t("not_found"))
    except QuarantineError as exc:
        return render(request, "error.html", session, 503, message=str(exc))
    return render(
        request,
        "message.html",
        session,
        record=record,
        info=info,
        why=explain(record.verdict),
        trail=trail,
        allow=state.config.allowlist_file is not None,
        here=f"/m/{record.id}",
    )


# -- actions --------------------------------------------------------------------------------


async def _act(request: Request, session: Session, qid: str, action: str) -> tuple[bool, str]:
    """Do ``action`` on ``qid``; (ok, message for the admin)."""
    state = _state(request)
    t = translator(_lang(request, session))
    try:
        validate_id(qid)
        if action == "delete":
            await run_in_threadpool(lambda: state.store.delete(qid, actor=session.user))
            await _audit(request, AuditEntry.now(session.user, "delete", qid, "ok"))
            return True, t("deleted_ok")
        host, port = state.config.relay
        # allowing the sender says the hold was a mistake: no banner then either
        mistaken = action == "release-allow" or request.state.form.get("false_positive") == "1"
        result = await release(
            state.store,
            qid,
            host,
            port,
            actor=session.user,
            transform=state.config.release_transform,
            false_positive=mistaken,
        )
        message = t("released_ok", reply=result.reply)
        if result.edited:
            message += " " + t("released_banner")
        if action == "release-allow" and state.config.allowlist_file is not None:
            record = await run_in_threadpool(state.store.get, qid)
            sender = await run_in_threadpool(
                allow_sender, state.config.allowlist_file, record, session.user
            )
            detail = f"{sender} → {state.config.allowlist_file}"
            await _audit(request, AuditEntry.now(session.user, "allow", qid, "ok", detail))
            message += " " + t("allowed_ok", sender=sender, file=state.config.allowlist_file)
        return True, message
    except ReleaseError as exc:
        return False, t("release_failed", error=str(exc))
    except (QuarantineError, OSError, ValueError) as exc:
        if action == "delete":
            await _audit(request, AuditEntry.now(session.user, "delete", qid, "failed", str(exc)))
        return False, t("failed", error=str(exc))


@login_required
async def item_action(request: Request, session: Session) -> Response:
    """POST /m/{qid}/{release|delete|release-allow}."""
    qid, action = request.path_params["qid"], request.path_params["action"]
    if action not in ACTIONS:
        return render(request, "error.html", session, 404, message=action)
    ok, message = await _act(request, session, qid, action)
    session.flash.append(("ok" if ok else "error", message))
    if action == "delete" and ok:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(f"/m/{qid}" if _is_id(qid) else "/", status_code=303)


def _is_id(text: str) -> bool:
    try:
        validate_id(text)
    except InvalidQuarantineId:
        return False
    return True


@login_required
async def bulk_action(request: Request, session: Session) -> Response:
    """POST /bulk: one action on every checked id (at most 500)."""
    form = request.state.form
    action = str(form.get("action", ""))
    ids = [str(x) for x in form.getlist("ids")][:MAX_BULK]
    t = translator(_lang(request, session))
    if action not in ACTIONS:
        return render(request, "error.html", session, 400, message=action)
    if not ids:
        session.flash.append(("error", t("nothing_selected")))
    for qid in ids:
        ok, message = await _act(request, session, qid, action)
        session.flash.append(("ok" if ok else "error", f"{qid}: {message}"))
    back = str(form.get("back", "/"))
    return RedirectResponse(back if back.startswith("/?") else "/", status_code=303)


@login_required
async def audit_page(request: Request, session: Session) -> Response:
    """The last 200 audit entries."""
    try:
        trail = await run_in_threadpool(_state(request).store.audit_trail, None, 200)
    except QuarantineError as exc:
        return render(request, "error.html", session, 503, message=str(exc))
    return render(request, "audit.html", session, trail=trail)
