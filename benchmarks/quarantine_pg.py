"""Quarantine writes per second (PostgreSQL vs the local store) and listing at 1,000,000.

Usage (from the repository root, as root, Debian's postgresql installed)::

    .venv/bin/python benchmarks/quarantine_pg.py [--writes 2000] [--rows 1000000]

Starts a private PostgreSQL 15 cluster (tests/support/pg.py: loopback, fsync on,
``synchronous_commit=on``), then:

1. ``put`` of the CPF lure (docs/examples/cpf-lure.eml) ``--writes`` times, by 1 and by
   8 threads (the milter's workers call ``put`` from threads), into ``PostgresStore``
   and into the local ``QuarantineStore`` (files + fsync) in a temporary directory on
   the same disk;
2. ``--rows`` held items (and 1 KB of message bytes each) generated database-side with
   ``INSERT … SELECT generate_series`` (not through the API), then ``search`` timings:
   first page, filters, a page 50,000 items deep (keyset), and ``purge`` of 10 %.

Prints one line per figure; docs/shared-quarantine.md quotes them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from milter.model.envelope import Envelope  # noqa: E402
from milter.quarantine.backend import ListQuery  # noqa: E402
from milter.quarantine.postgres import PostgresStore  # noqa: E402
from milter.quarantine.postgres_schema import MIGRATIONS  # noqa: E402
from milter.quarantine.store import QuarantineStore  # noqa: E402
from tests.support.pg import migrated_database, running_cluster, store_on  # noqa: E402

LURE = (ROOT / "docs" / "examples" / "cpf-lure.eml").read_bytes()
ENVELOPE = Envelope(mail_from="noreply@cpf.example.org", rcpts=("alice@example.com",))
VERDICT = {
    "verdict": "quarantine",
    "brand": "cpf",
    "score": 33.0,
    "reasons": [{"rule": "brand-impersonation"}],
    "findings": [{"code": "LINK_LOOKALIKE"}],
}

GENERATE = """
INSERT INTO quarantine_item (
    id, received_at, state, gateway, size, sha256, mail_from, rcpts, rcpt_keys, envelope,
    subject, header_from, from_name, from_addr, brand, disposition, score, rule, codes,
    verdict)
SELECT to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISSUS') || 'Z-'
           || lpad(to_hex(n), 12, '0'),
       t,
       CASE WHEN n %% 20 = 0 THEN 'released' ELSE 'held' END,
       'mx' || (n %% 2 + 1) || '.example.net',
       1024, repeat('0', 64),
       'sender' || n || '@lure' || (n %% 997) || '.example',
       ARRAY['user' || (n %% 5000) || '@dom' || (n %% 200) || '.test'],
       ARRAY['user' || (n %% 5000) || '@dom' || (n %% 200) || '.test',
             '@dom' || (n %% 200) || '.test'],
       '{"mail_from":"x@y.test","rcpts":["user@dom.test"]}',
       'Votre dossier CPF n°' || n, 'CPF <x@y.test>', 'Mon Compte Formation',
       'noreply' || n || '@lure.example',
       (ARRAY['cpf','ameli','impots','franceconnect','ants','caf','cdc','laposte'])[n %% 8 + 1],
       'quarantine', 20 + n %% 30, 'brand-impersonation',
       ARRAY['LINK_LOOKALIKE','DISPLAY_NAME_BRAND'], '{"verdict":"quarantine"}'
  FROM generate_series(1, %(rows)s) AS n,
       LATERAL (SELECT now() - (n * interval '1 second') * (7776000.0 / %(rows)s)) AS g(t)
"""
EXPLAINED = [
    (
        "brand page",
        "SELECT id FROM quarantine_item WHERE brand = 'ameli' ORDER BY id DESC LIMIT 51",
    ),
    ("brand count", "SELECT count(*) FROM quarantine_item WHERE brand = 'ameli'"),
    ("total count", "SELECT count(*) FROM quarantine_item"),
]
GENERATE_BYTES = """
INSERT INTO quarantine_message (id, raw)
SELECT id, convert_to(repeat('x', 1024), 'UTF8') FROM quarantine_item
"""


def timed(action: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of ``action`` in milliseconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def writes_per_second(put: Callable[[], object], total: int, threads: int) -> float:
    """``put`` called ``total`` times spread over ``threads`` threads; calls per second."""
    per_thread = total // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            put()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return per_thread * threads / (time.perf_counter() - start)


def bench_writes(pg: PostgresStore, total: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-", dir="/var/tmp") as tmp:
        local = QuarantineStore(Path(tmp) / "q")
        for threads in (1, 8):
            for name, store in (("local", local), ("postgresql", pg)):
                rate = writes_per_second(
                    lambda s=store: s.put(LURE, ENVELOPE, VERDICT), total, threads
                )  # type: ignore[misc]
                print(f"writes  {name:10s} threads={threads}: {rate:8.0f} puts/s ({total} puts)")


def bench_listing(pg: PostgresStore, dsn: str, rows: int) -> None:
    import psycopg

    start = time.perf_counter()
    indexes = [st for m in MIGRATIONS for st in m.statements if st.startswith("CREATE INDEX")]
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE quarantine_item CASCADE")
        for statement in indexes:  # a bulk load builds its indexes once, afterwards
            conn.execute("DROP INDEX " + statement.split()[2])
        conn.execute(GENERATE, {"rows": rows})
        conn.execute(GENERATE_BYTES)
        for statement in indexes:
            conn.execute(statement)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE quarantine_item")
        conn.execute("VACUUM ANALYZE quarantine_message")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        row = size.fetchone()
    print(f"generated {rows} items in {time.perf_counter() - start:.1f} s; database {row}")
    deep = pg.search(ListQuery(limit=1, before=None))
    cursor = deep.items[0].id
    for _ in range(100):  # walk 100 pages of 500 to a cursor 50,000 items deep
        page = pg.search(ListQuery(limit=500, before=cursor))
        cursor = page.next_before or cursor
    cases: list[tuple[str, ListQuery]] = [
        ("first page of 50, no filter", ListQuery()),
        ("first page, state=held", ListQuery(state="held")),
        ("first page, brand=ameli", ListQuery(brand="ameli")),
        ("first page, recipient @dom7.test", ListQuery(recipient="@dom7.test")),
        ("first page, recipient user42@dom42.test", ListQuery(recipient="user42@dom42.test")),
        ("first page, sender contains 'lure99'", ListQuery(sender="lure99")),
        ("page 50,000 items deep (keyset)", ListQuery(before=cursor)),
    ]
    for label, query in cases:
        ms = timed(lambda q=query: pg.search(q))  # type: ignore[misc]
        total = pg.search(query).total
        print(f"list    {label:40s} {ms:8.1f} ms (total {total})")
    with psycopg.connect(dsn) as conn:
        for label, sql in EXPLAINED:
            plan = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql).fetchall()
            print(f"plan    {label}: " + " | ".join(r[0].strip() for r in plan))
    start = time.perf_counter()
    purged = pg.purge(timedelta(days=81))
    print(f"purge   older than 81 days: {len(purged)} items in {time.perf_counter() - start:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with running_cluster() as cluster:
        name = migrated_database(cluster)
        pg = store_on(cluster, name, gateway="bench", pool_size=8)
        try:
            bench_writes(pg, args.writes)
            bench_listing(pg, cluster.dsn_with_password(name), args.rows)
        finally:
            pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
