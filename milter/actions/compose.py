"""One pass over the text parts: suspicious links neutralised, then one banner on top.

Links are rewritten in every inline text part (a lure's link may sit in the second
alternative, or in a forwarded part); the banner goes into the first text/plain and the
first text/html part only, so list footers and quoted parts get none.
"""

from __future__ import annotations

from milter.actions.banner import Banner, insert_html, insert_plain
from milter.actions.body import rewrite_text_parts
from milter.actions.defang import LinkMemo, LinkRewrite, defang_links_html, defang_links_text


def edit_body(
    raw: bytes, *, banner: Banner | None = None, links: LinkRewrite | None = None
) -> bytes | None:
    """The new body of ``raw`` (bytes after its header block), or None when unchanged.

    None as well for signed or encrypted mail (S/MIME, PGP/MIME, inline PGP): see
    :func:`milter.actions.body.rewrite_text_parts`.
    """
    if banner is None and (links is None or not links.targets):
        return None
    seen: set[str] = set()
    memo = LinkMemo(links) if links else None  # one message: its parts share the work

    def edit_plain(text: str) -> str | None:
        new = defang_links_text(text, links.targets, memo=memo) if links else text
        if banner is not None and "plain" not in seen:
            seen.add("plain")
            new = insert_plain(new, banner.plain)
        return new

    def edit_html(text: str) -> str | None:
        new = defang_links_html(text, links, memo) if links else text
        if banner is not None and "html" not in seen:
            seen.add("html")
            new = insert_html(new, banner.html)
        return new

    return rewrite_text_parts(raw, edit_plain, edit_html)
