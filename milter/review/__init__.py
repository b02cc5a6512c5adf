"""The quarantine review page (``tocsin review``): a separate web process on loopback.

It never handles SMTP and never renders a held message's HTML. Routes are listed in
``app.ROUTES``; ``build_app(..., extra_routes=...)`` adds more (e.g. a redirect-warning
page). See docs/review.md.
"""
