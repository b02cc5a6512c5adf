"""Fixtures of the shared-quarantine tests: a private PostgreSQL cluster on loopback."""

from __future__ import annotations

from tests.review.conftest import browser  # noqa: F401  (Debian's Chromium, Playwright)
from tests.support.pg import own_pg_cluster, pg_cluster, pg_database, pg_store  # noqa: F401
