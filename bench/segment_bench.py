"""Time segment counts on a large dataset: every condition field, and a few realistic segments.

    python scripts/testdb.py -- python bench/segment_bench.py --members 1000000

Seeds with `seed_bench` (members, purchases, ledger), then adds what segments also read and
seed_bench leaves out: purchase lines with categories, e-mail consents and tags. Prints one
line per segment: the median of three COUNTs (seconds) and the audience size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

SEGMENTS = {
    "tier >= Gold": [("tier", "gte", "Gold", None)],
    "balance >= 1000": [("points_balance", "gte", "1000", None)],
    "no purchase for 90+ days": [("days_since_purchase", "gte", "90", None)],
    "purchases (12 months) >= 3": [("purchases", "gte", "3", None)],
    "purchases (90 days) >= 2": [("purchases", "gte", "2", 90)],
    "purchases (90 days) <= 1 (incl. none)": [("purchases", "lte", "1", 90)],
    "spend (12 months) >= 200": [("spend", "gte", "200", None)],
    "spend (180 days) >= 100": [("spend", "gte", "100", 180)],
    "average order (12 months) >= 60": [("average_order", "gte", "60", None)],
    "average order (180 days) >= 60": [("average_order", "gte", "60", 180)],
    "bought Kaffee (90 days)": [("category", "in", "Kaffee", 90)],
    "never bought Wein (365 days)": [("category", "not_in", "Wein", None)],
    "store BER-01 (180 days)": [("store", "in", "BER-01", 180)],
    "country AT,CH": [("country", "in", "AT,CH", None)],
    "language en": [("language", "in", "en", None)],
    "birthday in December": [("birthday_month", "in", "12", None)],
    "joined in the last 90 days": [("days_since_joined", "lte", "90", None)],
    "tag VIP": [("tags", "in", "VIP", None)],
    "e-mail consent": [("consent", "given", "email", None)],
    "win-back: consent & 90+ days & spend >= 100": [("consent", "given", "email", None),
                                                  ("days_since_purchase", "gte", "90", None),
                                                  ("spend", "gte", "100", None)],
    "Gold+ OR (Kaffee 90 days AND AT)": [("tier", "gte", "Gold", None, 1), ("category", "in", "Kaffee", 90, 2),
                                         ("country", "in", "AT", None, 2)],
}


def seed_extras(cursor, members: int) -> None:
    """Lines (one per purchase, a category), e-mail consents for 60 %, a VIP tag on 1 %."""
    from rewards.management.commands.seed_bench import vacuum_until_visible

    cursor.execute("SELECT setseed(0.7)")
    cursor.execute("""
        INSERT INTO rewards_purchaseline (purchase_id, sku, category, quantity, amount, points, returned_amount,
                                          points_reversed)
        SELECT p.id, '', (ARRAY['Kaffee','Backwaren','Feinkost','Wein','Haushalt','Geschenke'])[1 + (p.id % 6)],
               1, p.amount, p.points_earned, 0, 0
        FROM rewards_purchase p WHERE NOT EXISTS (SELECT 1 FROM rewards_purchaseline l WHERE l.purchase_id = p.id)
    """)
    cursor.execute("""
        INSERT INTO members_consentrecord (member_id, purpose, granted, source, text_version, confirmed_at,
                                           confirmation_token, created_at)
        SELECT m.id, 'email', true, 'import', 'bench', m.joined_at, '', m.joined_at
        FROM members_member m WHERE m.id % 10 < 6
          AND NOT EXISTS (SELECT 1 FROM members_consentrecord c WHERE c.member_id = m.id)
    """)
    cursor.execute("INSERT INTO members_tag (name) VALUES ('VIP') ON CONFLICT DO NOTHING")
    cursor.execute("""
        INSERT INTO members_member_tags (member_id, tag_id)
        SELECT m.id, t.id FROM members_member m, members_tag t WHERE t.name = 'VIP' AND m.id % 100 = 0
        ON CONFLICT DO NOTHING
    """)
    # The consent state is kept by a trigger from the records: it is new too.
    for table in ("rewards_purchaseline", "members_consentrecord", "members_consentstate", "members_member_tags"):
        vacuum_until_visible(cursor, table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from campaigns.segments import Condition, compile_conditions
    from members.models import Member

    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        started = time.perf_counter()
        call_command("seed_bench", members=args.members)
        with connection.cursor() as cursor:
            seed_extras(cursor, args.members)
        print(f"seeded in {time.perf_counter() - started:.0f} s")

    results = {}
    for label, rows in SEGMENTS.items():
        conditions = [Condition(field=row[0], operator=row[1], value=row[2], days=row[3],
                                group=row[4] if len(row) > 4 else 1) for row in rows]
        queryset = Member.objects.active().filter(compile_conditions(conditions))
        samples, count = [], 0
        for _ in range(3):
            started = time.perf_counter()
            count = queryset.count()
            samples.append(time.perf_counter() - started)
        seconds = statistics.median(samples)
        results[label] = {"seconds": round(seconds, 3), "members": count}
        print(f"{label:50s} {seconds:7.3f} s  {count:>9,} members", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
