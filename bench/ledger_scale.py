"""How the ledger behaves at its size: the figures behind docs/ledger-partitioning.md (issue #24).

    python scripts/testdb.py -- python bench/ledger_scale.py --members 1000000   # seed, then measure
    DATABASE_URL=… LOYALTY_TEST_REDIS_URL=… python bench/ledger_scale.py --skip-seed   # a seeded database

Prints, for the ledger (rewards_pointentry) as it is, one line per figure:
  - table, TOAST and index sizes, bytes per entry, and the depth of each index (pageinspect);
  - an earn's INSERT: EXPLAIN (ANALYZE, BUFFERS) of one, and EARNS earns timed one by one, each a
    transaction like the service's (insert the entry, raise the cached balance), median and p99;
  - a member's ledger: the portal's activity page and the console ledger searched by customer number;
  - verify_ledger, the expiry job (one batch's plan under EXPLAIN ANALYZE, rolled back, and a full
    run), ANALYZE, a plain VACUUM and an aggressive (freezing, every page) VACUUM of the table;
  - archiving a year without partitions: reading the year out (COPY … TO STDOUT), and deleting it,
    measured on one month in a rolled-back transaction (the append-only trigger is bypassed for
    the measurement only) and scaled to a year.
Run it on a 1,000,000-member database (20,000,000 entries) and on a 50,000-member one (1,000,000
entries) to compare. Everything it writes is either rolled back or an earn that keeps the ledger
consistent (entry and balance together), so verify_ledger still passes afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

EARNS = 2000
TABLE = "rewards_pointentry"


def line(figure: str, value: float | str, unit: str = "", note: str = "") -> None:
    if isinstance(value, int):
        shown = f"{value:14,d}"
    else:
        shown = f"{value:14,.1f}" if isinstance(value, float) else f"{value:>14s}"
    print(f"{figure:52s} {shown} {unit:6s} {note}", flush=True)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def sizes(cursor) -> int:
    cursor.execute(f"SELECT count(*) FROM {TABLE}")
    entries = cursor.fetchone()[0]
    line("entries", entries)
    cursor.execute("SELECT pg_relation_size(%s), pg_total_relation_size(%s), pg_indexes_size(%s)",
                   [TABLE, TABLE, TABLE])
    heap, total, indexes = cursor.fetchone()
    mib = 1024 * 1024
    line("table (heap)", heap / mib, "MiB", f"{heap / max(entries, 1):.0f} bytes per entry")
    line("indexes, all", indexes / mib, "MiB", f"{indexes / max(entries, 1):.0f} bytes per entry")
    line("table + TOAST + indexes", total / mib, "MiB", f"{total / max(entries, 1):.0f} bytes per entry")
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
    cursor.execute("""
        SELECT c.relname, pg_relation_size(c.oid), (SELECT level FROM bt_metap(c.relname::text))
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE i.indrelid = %s::regclass AND a.amname = 'btree' ORDER BY 2 DESC""", [TABLE])
    for name, size, level in cursor.fetchall():
        line(f"  index {name}", size / mib, "MiB", f"btree depth {level + 1}")
    return entries


def earn_cost(cursor, members: int) -> None:
    """An earn as the service writes it: one entry, the cached balance raised, one transaction."""
    insert = (f"INSERT INTO {TABLE} (member_id, kind, points, created_at, expires_at, reason, source, "
              "reference) VALUES (%s, 'earn', 10, now(), now() + interval '24 months', 'ledger_scale', '', '')")
    cursor.execute("BEGIN")
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + insert, [members // 2])
    plan = cursor.fetchone()[0][0]
    cursor.execute("ROLLBACK")
    node = plan["Plan"]
    # The foreign-key checks are deferred to the commit (Django's DEFERRABLE INITIALLY DEFERRED), so
    # EXPLAIN shows the insert and its index entries; the timed earns below include the checks.
    line("one earn INSERT, EXPLAIN ANALYZE", plan["Execution Time"], "ms",
         f"buffers hit {node.get('Shared Hit Blocks', 0)}, read {node.get('Shared Read Blocks', 0)}, "
         f"dirtied {node.get('Shared Dirtied Blocks', 0)}")
    rng = random.Random(24)
    cursor.execute("SELECT min(id), max(id) FROM members_member")
    low, high = cursor.fetchone()
    samples = []
    for _ in range(EARNS):
        member = rng.randint(low, high)
        started = time.perf_counter()
        cursor.execute("BEGIN")
        cursor.execute(insert, [member])
        cursor.execute("UPDATE members_member SET points_balance = points_balance + 10 WHERE id = %s", [member])
        cursor.execute("COMMIT")
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    line(f"earn (insert + balance, committed), median of {EARNS}", statistics.median(samples), "ms",
         f"p99 {samples[int(len(samples) * 0.99)]:.2f} ms, random members, one connection")


def member_ledger_pages(members: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from members.models import Member

    member = Member.objects.get(pk=Member.objects.order_by("pk").values_list("pk", flat=True)[members // 3])
    user_model = get_user_model()
    user = user_model.objects.filter(username="ledger-scale").first() or user_model.objects.create_user(
        "ledger-scale", member.email, "ledger-scale-password")
    Member.objects.filter(user=user).exclude(pk=member.pk).update(user=None)
    Member.objects.filter(pk=member.pk).update(user=user)
    portal = Client(HTTP_HOST="localhost")
    portal.force_login(user)
    staff = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "bench@example.org", "bench-password")
    console = Client(HTTP_HOST="localhost")
    console.force_login(staff)
    entries = member.point_entries.count()

    def portal_page():
        response = portal.get("/konto/aktivitaet/")
        assert response.status_code == 200, response.status_code

    def console_page():
        response = console.get("/admin/rewards/pointentry/", {"q": member.customer_number})
        assert response.status_code == 200, response.status_code

    for label, function in (("portal activity page", portal_page), ("console ledger, search customer number",
                                                                    console_page)):
        function()  # warm: sessions, templates
        samples = sorted(timed(function) * 1000 for _ in range(5))
        line(f"{label} ({entries} entries)", statistics.median(samples), "ms", "median of 5")


def expiry(cursor) -> None:
    from django.db import connection

    from rewards import ledger
    from rewards.ledger import points_expire_due

    batch = {"low": 1, "high": 10_000, "step": 8, "residue": 0, "due_at": time.strftime("%Y-%m-%d"),
             "reason": "ledger_scale"}
    cursor.execute("BEGIN")
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + vars(ledger)["_EXPIRE_BATCH_SQL"], batch)
    plan = [row[0] for row in cursor.fetchall()]
    cursor.execute("ROLLBACK")
    print("  expiry, one batch (1,250 members), rolled back:")
    for row in plan:
        if any(word in row for word in ("Scan", "Execution Time", "Buffers", "Insert", "Update", "Aggregate")):
            print("    " + row)
    started = time.perf_counter()
    report = points_expire_due()
    line(f"expiry job, full run ({report.members:,} members expired)", time.perf_counter() - started, "s")
    connection.close()


def maintenance(cursor) -> None:
    line("ANALYZE rewards_pointentry", timed(lambda: cursor.execute(f"ANALYZE {TABLE}")), "s")
    line("VACUUM rewards_pointentry (as autovacuum)", timed(lambda: cursor.execute(f"VACUUM {TABLE}")), "s")
    line("VACUUM (FREEZE, DISABLE_PAGE_SKIPPING)",
         timed(lambda: cursor.execute(f"VACUUM (FREEZE, DISABLE_PAGE_SKIPPING) {TABLE}")), "s",
         "what an anti-wraparound vacuum reads: every page")


def archive_a_year(cursor, raw) -> None:
    cursor.execute(f"SELECT min(created_at), max(created_at) FROM {TABLE}")
    first, last = cursor.fetchone()
    cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < %s + interval '1 year'", [first])
    year_rows = cursor.fetchone()[0]
    line("entries in the first year", year_rows, "", f"ledger spans {first:%Y-%m-%d} … {last:%Y-%m-%d}")

    def copy_out():
        with raw.cursor() as copy_cursor, copy_cursor.copy(
                f"COPY (SELECT * FROM {TABLE} WHERE created_at < '{first.isoformat()}'::timestamptz "
                f"+ interval '1 year') TO STDOUT") as copy:
            for _block in copy:
                pass
        raw.commit()

    line("archive a year: COPY it out", timed(copy_out), "s", "reads it by a scan: no index on created_at")
    cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < %s + interval '1 month'", [first])
    month_rows = cursor.fetchone()[0]
    cursor.execute("BEGIN")
    cursor.execute("SET LOCAL session_replication_role = replica")  # the append-only trigger, for this test only
    started = time.perf_counter()
    cursor.execute(f"DELETE FROM {TABLE} WHERE created_at < %s + interval '1 month'", [first])
    month = time.perf_counter() - started
    cursor.execute("ROLLBACK")
    line(f"DELETE a month ({month_rows:,} entries), rolled back", month, "s",
         f"a year by scale: ~{month * year_rows / max(month_rows, 1):,.0f} s, then VACUUM, and the space "
         "stays in the table")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--skip", default="", help="Comma-separated parts to skip: earn, pages, verify, expiry, "
                        "maintenance, archive")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import django

    django.setup()
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        call_command("seed_bench", members=args.members)
    database = settings.DATABASES["default"]
    raw = psycopg.connect(host=database["HOST"], port=database["PORT"], user=database["USER"],
                          dbname=database["NAME"], password=database.get("PASSWORD") or None, autocommit=True)
    with raw.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        print(f"ledger_scale on {database['NAME']} (shared_buffers {cursor.fetchone()[0]})")
        sizes(cursor)
        if "earn" not in skip:
            earn_cost(cursor, args.members)
        if "pages" not in skip:
            member_ledger_pages(args.members)
        if "verify" not in skip:
            line("verify_ledger", timed(lambda: call_command("verify_ledger")), "s")
        if "expiry" not in skip:
            expiry(cursor)
        if "maintenance" not in skip:
            maintenance(cursor)
        if "archive" not in skip:
            archive_a_year(cursor, raw)
    raw.close()


if __name__ == "__main__":
    main()
