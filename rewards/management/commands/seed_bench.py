"""A large, reproducible dataset for the benchmarks (PostgreSQL only).

    python manage.py seed_bench --members 1000000 --entries-per-member 20

Rows are generated inside PostgreSQL (generate_series with a fixed setseed), which is much
faster than sending them from Python; indexes and foreign-key triggers are switched off while
loading and rebuilt afterwards. The result obeys the ledger's invariants (`verify_ledger`
passes): balances are the sums of the entries, never negative, and the credits' expiry dates
follow the configured months, so some members have points due for the expiry job.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from members.models import Tier
from rewards.demo import seed_catalogue_basics
from rewards.ledger import BALANCES_FROM_ENTRIES_SQL

FIRST_NAMES = ["Anna", "Lena", "Marie", "Sophie", "Laura", "Julia", "Lea", "Sarah", "Hannah", "Katharina", "Ursula",
               "Monika", "Sabine", "Petra", "Claudia", "Andrea", "Lukas", "Leon", "Finn", "Jonas", "Paul", "Felix",
               "Maximilian", "Elias", "Noah", "Thomas", "Michael", "Andreas", "Stefan", "Christian", "Markus", "Jürgen",
               "Tobias", "Florian", "Matthias", "Sebastian", "Niklas", "Moritz", "Valentina", "Elif", "Mehmet", "Luca"]
LAST_NAMES = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
              "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
              "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
              "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber",
              "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Gruber", "Steiner",
              "Moser", "Brunner", "Keller", "Frei", "Baumann", "Gerber", "Widmer", "Yilmaz", "Kaya", "Nowak"]
CITIES = [("Berlin", "DE"), ("Hamburg", "DE"), ("München", "DE"), ("Köln", "DE"), ("Frankfurt am Main", "DE"),
          ("Stuttgart", "DE"), ("Leipzig", "DE"), ("Dresden", "DE"), ("Wien", "AT"), ("Graz", "AT"), ("Linz", "AT"),
          ("Zürich", "CH"), ("Basel", "CH"), ("Bern", "CH")]


# The tables whose index-only scans the bench measures, and how much of each the visibility map
# must cover before it starts (vacuum_until_visible).
VISIBLE_TABLES = ("members_member", "rewards_pointentry", "rewards_purchase", "rewards_membermonth")
VISIBLE_SHARE = 0.99
VISIBLE_ATTEMPTS = 8


def vacuum_until_visible(cursor, table: str) -> bool:
    """VACUUM ANALYZE `table` (then plain VACUUM) until the visibility map covers it, as
    autovacuum leaves a table in production; False if it still does not after VISIBLE_ATTEMPTS.
    Without it an index-only scan reads every row from the heap (console page 5,000: 230 ms
    instead of 68 ms). A VACUUM right after a load sometimes marked no page at all (the ledger:
    0 of 24,692 pages; members: 2,866 of 41,639), and the same VACUUM a moment later all of
    them, so it is repeated until it does."""
    for attempt in range(VISIBLE_ATTEMPTS):
        cursor.execute(f"VACUUM {'ANALYZE ' if attempt == 0 else ''}{table}")
        cursor.execute("SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass", [table])
        pages, visible = cursor.fetchone()
        if visible >= VISIBLE_SHARE * pages:
            return True
        time.sleep(1 + attempt)
    return False


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


class Command(BaseCommand):
    help = "Generate a large benchmark dataset inside PostgreSQL (members, ledger entries, purchases)."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=1_000_000)
        parser.add_argument("--entries-per-member", type=int, default=20)
        parser.add_argument("--purchases-per-member", type=int, default=4)
        parser.add_argument("--seed", type=float, default=0.42, help="setseed() value, -1 … 1")

    def handle(self, *args, **options):
        members, per_member, purchases = (options["members"], options["entries_per_member"],
                                          options["purchases_per_member"])
        if purchases > per_member:
            raise CommandError("--purchases-per-member cannot exceed --entries-per-member")
        started = time.monotonic()
        partner, stores = seed_catalogue_basics()
        base_tier = Tier.objects.order_by("rank").first()
        months = settings.LOYALTY_POINTS_EXPIRY_MONTHS or 1200
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM members_member")
            offset = cursor.fetchone()[0]
            cursor.execute("SET LOCAL session_replication_role = replica")  # no FK triggers while loading
            # Bulk loading is much faster without the secondary indexes; they are rebuilt after.
            indexes = self._drop_secondary_indexes(cursor)
            cursor.execute("SELECT setseed(%s)", [options["seed"]])
            cursor.execute("SELECT coalesce(max(id), 0) FROM rewards_purchase")
            purchase_offset = cursor.fetchone()[0]
            params = {"first": offset + 1, "last": offset + members, "tier": base_tier.pk, "base": purchase_offset,
                      "n": purchases, "per_member": per_member, "partner": partner.pk,
                      "stores": [store.pk for store in stores]}
            self._step("members", cursor, self._members_sql(), params)
            self._step("purchases", cursor, self._purchases_sql(), params)
            self._step("partner relations", cursor, """
                INSERT INTO members_partnerrelation (member_id, partner_id, store_id, via, created_at)
                SELECT member_id, partner_id, store_id, 'purchase', min(created_at) FROM rewards_purchase
                WHERE member_id BETWEEN %(first)s AND %(last)s GROUP BY member_id, partner_id, store_id
                ON CONFLICT DO NOTHING""", params)
            self._step("ledger entries", cursor, self._entries_sql(months), params)
            self._step("balances", cursor, BALANCES_FROM_ENTRIES_SQL, params)  # the ledger's statement
            self._step("purchase statistics", cursor, """
                UPDATE members_member m SET last_purchase_at = s.last, lifetime_spend = s.spend,
                       purchases_12m = s.recent, spend_12m = s.recent_spend
                FROM (SELECT member_id, max(occurred_at) AS last, sum(amount) AS spend,
                             count(*) FILTER (WHERE occurred_at > now() - interval '365 days') AS recent,
                             coalesce(sum(amount) FILTER (WHERE occurred_at > now() - interval '365 days'), 0)
                                 AS recent_spend
                      FROM rewards_purchase WHERE member_id BETWEEN %(first)s AND %(last)s GROUP BY member_id) s
                WHERE m.id = s.member_id""", params)
            # The triggers that keep the monthly rollup are off while loading (replica role).
            self._step("member months", cursor, """
                INSERT INTO rewards_membermonth (member_id, month, currency, purchases, net_amount)
                SELECT member_id, (date_trunc('month', occurred_at AT TIME ZONE 'UTC'))::date, currency,
                       count(*), sum(amount - returned_amount)
                FROM rewards_purchase WHERE member_id BETWEEN %(first)s AND %(last)s
                GROUP BY 1, 2, 3 ORDER BY 2, 1, 3""", params)
            started_indexes = time.monotonic()
            for definition in indexes:
                cursor.execute(definition)
            self.stdout.write(f"  {len(indexes)} indexes rebuilt in {time.monotonic() - started_indexes:.1f} s")
            for table in ("members_member", "rewards_pointentry", "rewards_purchase"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        with connection.cursor() as cursor:
            # Rewrite the members table at its fillfactor (members migration 0025), so later
            # balance updates are HOT.
            cursor.execute("VACUUM FULL members_member")
            for table in VISIBLE_TABLES:
                if not vacuum_until_visible(cursor, table):
                    self.stdout.write(self.style.WARNING(f"  {table}: not all-visible after "
                                                         f"{VISIBLE_ATTEMPTS} VACUUMs"))
        self.stdout.write(self.style.SUCCESS(
            f"seed_bench: {members:,} members, {members * per_member:,} entries, {members * purchases:,} purchases "
            f"in {time.monotonic() - started:.0f} s"))

    @staticmethod
    def _drop_secondary_indexes(cursor) -> list[str]:
        cursor.execute("""
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename IN ('members_member', 'rewards_pointentry', 'rewards_purchase')
              AND i.indexdef NOT LIKE 'CREATE UNIQUE%%'
        """)
        rows = cursor.fetchall()
        for name, _definition in rows:
            cursor.execute(f'DROP INDEX "{name}"')
        return [definition for _name, definition in rows]

    def _step(self, label: str, cursor, sql: str, params: dict) -> None:
        started = time.monotonic()
        cursor.execute(sql, params)
        self.stdout.write(f"  {label}: {cursor.rowcount:,} rows in {time.monotonic() - started:.1f} s")

    @staticmethod
    def _members_sql() -> str:
        cities = _array([city for city, _ in CITIES])
        countries = _array([country for _, country in CITIES])
        first, last, n_cities = len(FIRST_NAMES), len(LAST_NAMES), len(CITIES)
        # Only constants are formatted in; every value comes in as a query parameter.
        return f"""
            INSERT INTO members_member (public_id, customer_number, card_number, email, salutation, first_name,
                last_name, phone, birth_date, street, postal_code, city, country, language, status, joined_at, tier_id,
                points_balance, points_pending, purchases_12m, spend_12m, lifetime_spend, created_at, updated_at)
            SELECT gen_random_uuid(), 'B' || lpad(g::text, 10, '0'), '9277' || lpad(g::text, 12, '0'),
                   lower(f.name) || '.' || lower(l.name) || '.' || g || '@bench.example',
                   CASE WHEN g %% 2 = 0 THEN 'ms' ELSE 'mr' END, f.name, l.name, '',
                   date '1945-01-01' + (random() * 22000)::int, 'Hauptstraße ' || (g %% 250 + 1),
                   lpad((10000 + (g * 7919) %% 89999)::text, 5, '0'), c.city, c.country,
                   CASE WHEN g %% 9 = 0 THEN 'en' ELSE 'de' END, 'active',
                   now() - random() * interval '1000 days', %(tier)s, 0, 0, 0, 0, 0, now(), now()
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            CROSS JOIN LATERAL (SELECT ({_array(FIRST_NAMES)})[1 + (g * 31 + (random() * 3)::int) %% {first}]
                                AS name) f
            CROSS JOIN LATERAL (SELECT ({_array(LAST_NAMES)})[1 + (g * 17 + (random() * 5)::int) %% {last}]
                                AS name) l
            CROSS JOIN LATERAL (SELECT ({cities})[1 + g %% {n_cities}] AS city,
                                       ({countries})[1 + g %% {n_cities}] AS country) c
        """

    @staticmethod
    def _purchases_sql() -> str:
        return """
            INSERT INTO rewards_purchase (id, member_id, partner_id, store_id, channel, order_reference, amount,
                currency, occurred_at, points_earned, points_reversed, points_pending, available_at,
                returned_amount, created_at)
            SELECT %(base)s + (m - %(first)s) * %(n)s + j, m, %(partner)s, s.store_id, 'store',
                   'BENCH-' || m || '-' || j, a.amount, 'EUR', a.at, floor(a.amount)::bigint, 0, 0, a.at, 0, a.at
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS m
            CROSS JOIN generate_series(1, %(n)s) AS j
            -- The WHERE makes the subquery depend on (m, j): an uncorrelated LATERAL is evaluated
            -- once, which gave every purchase the same amount and the same moment.
            CROSS JOIN LATERAL (SELECT round((5 + random() * 120)::numeric, 2) AS amount,
                                       now() - random() * interval '900 days' AS at WHERE m + j > 0) a
            CROSS JOIN LATERAL (SELECT (%(stores)s::bigint[])[1 + (m + j) %% cardinality(%(stores)s::bigint[])]
                                AS store_id) s
        """

    @staticmethod
    def _entries_sql(months: int) -> str:
        # Entry j of a member: the first `n` are earns of that member's purchases; every fifth
        # is a redemption smaller than the four credits before it, so no running balance ever
        # dips below zero; the rest are bonus credits. Credits expire after `months`.
        return f"""
            INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, purchase_id,
                source, reference)
            SELECT m, v.kind, v.points, v.at,
                   CASE WHEN v.points > 0 THEN v.at + interval '{int(months)} months' END,
                   '', CASE WHEN j <= %(n)s AND j %% 5 <> 0 THEN %(base)s + (m - %(first)s) * %(n)s + j END, '', ''
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS m
            CROSS JOIN generate_series(1, %(per_member)s) AS j
            CROSS JOIN LATERAL (SELECT
                CASE WHEN j %% 5 = 0 THEN 'redeem' WHEN j <= %(n)s THEN 'earn' ELSE 'bonus' END AS kind,
                CASE WHEN j %% 5 = 0 THEN -(10 + floor(random() * 60))::bigint
                     ELSE (20 + floor(random() * 180))::bigint END AS points,
                now() - interval '30 months' + (j * interval '29 days') + random() * interval '20 days' AS at) v
        """
