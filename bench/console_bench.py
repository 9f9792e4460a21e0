"""Time the operator console and the ledger jobs on a large dataset.

    python scripts/testdb.py -- python bench/console_bench.py --members 1000000

Seeds with `seed_bench` (and, for the member-related pages, consents, tier changes, answers,
complaints and referrals: `seed_console_extras`), then measures server time of admin changelist
pages (first page, page 5,000, a search by e-mail fragment and by name, a filter by tier; a search
by customer number on each member-related page: ledger, purchases, referrals, answers, complaints,
consents, tier history), `verify_ledger` and the expiry job, and prints one line per figure.
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


def timed(function, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def admin_page(client, changelist: str, search: str):
    """A function fetching a changelist searched for `search` that checks it found something."""
    def fetch():
        response = client.get(f"/admin/{changelist}/", {"q": search})
        assert response.status_code == 200, (changelist, response.status_code)
        assert b'id="result_list"' in response.content, f"{changelist}: nothing found for {search}"
    return fetch


def seed_console_extras(members: int) -> None:
    """Rows on the member-related console pages, so a search there has a table to find in: a
    consent per member, a tier change and an answer for every second member, a complaint for every
    twentieth, a referral for every tenth (referred by the member before). Runs once per database."""
    from django.db import connection, transaction

    from feedback.models import Survey
    from referrals.models import ReferralProgram

    if Survey.objects.filter(name="bench").exists():
        return
    with transaction.atomic():
        survey = Survey.objects.create(name="bench", question_de="Wie zufrieden sind Sie?")
        program = ReferralProgram.objects.create(name_de="Bench")
        with connection.cursor() as cursor:
            for statement in _console_extras_sql():
                cursor.execute(statement, {"survey": survey.pk, "program": program.pk})
    with connection.cursor() as cursor:
        for table in ("members_consentrecord", "members_tierhistory", "feedback_response", "feedback_complaint",
                      "referrals_referral"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _console_extras_sql() -> list[str]:
    return [
        """INSERT INTO members_consentrecord (member_id, purpose, granted, source, text_version, confirmed_at,
                                              confirmation_token, created_at)
           SELECT m.id, 'sms', true, 'import', 'bench', m.joined_at, '', m.joined_at FROM members_member m""",
        """INSERT INTO members_tierhistory (member_id, cause, reason, created_at, to_tier_id)
           SELECT m.id, 'points', '', m.joined_at, m.tier_id FROM members_member m WHERE m.id %% 2 = 0""",
        """INSERT INTO feedback_response (survey_id, member_id, score, comment, channel, language, created_at)
           SELECT %(survey)s, m.id, m.id %% 11, CASE WHEN m.id %% 3 = 0 THEN 'Alles gut' ELSE '' END, 'email',
                  'de', m.joined_at FROM members_member m WHERE m.id %% 2 = 0""",
        """INSERT INTO feedback_complaint (member_id, category, subject, description, status, channel, due_at,
                                           created_at, updated_at, goodwill_points)
           SELECT m.id, 'other', 'Bench', '', 'open', 'email', m.joined_at, m.joined_at, m.joined_at, 0
           FROM members_member m WHERE m.id %% 20 = 0""",
        """INSERT INTO referrals_referral (program_id, referrer_id, referee_id, code, channel, status, review_reasons,
                                           started_at, created_at, reject_reason, referrer_points, referee_points,
                                           referrer_capped)
           SELECT %(program)s, m.id - 1, m.id, 'BENCH' || m.id, 'link', 'pending', '[]', m.joined_at, m.joined_at,
                  '', 0, 0, false FROM members_member m WHERE m.id %% 10 = 0 AND m.id > 1""",
    ]


# The member-related pages searched by customer number (issue #24): path, and what is searched.
MEMBER_PAGES = [
    ("ledger", "rewards/pointentry"),
    ("purchases", "rewards/purchase"),
    ("referrals", "referrals/referral"),
    ("answers", "feedback/response"),
    ("complaints", "feedback/complaint"),
    ("consents", "members/consentrecord"),
    ("tier history", "members/tierhistory"),
]


def measure_console(members: int) -> list[tuple[str, float, str, str]]:
    """Server time of admin pages, verify_ledger and the expiry job on the loaded dataset."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from members.models import Tier
    from rewards.ledger import points_expire_due

    user = get_user_model().objects.filter(username="bench-admin").first() or get_user_model().objects.create_superuser(
        "bench-admin", "bench@example.org", "bench-password")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    gold = Tier.objects.get(rank=2)

    def page(query: str):
        def fetch():
            response = client.get("/admin/members/member/" + query)
            assert response.status_code == 200, response.status_code
        return fetch

    deep_page = min(5000, max(1, members // 25 - 1))  # 25 members a page
    goal = "< 200 ms"
    rows = [
        ("admin members, page 1", timed(page("")) * 1000, "ms", goal),
        (f"admin members, page {deep_page}", timed(page(f"?p={deep_page}")) * 1000, "ms", goal),
        ("admin members, search e-mail fragment", timed(page("?q=mueller.12")) * 1000, "ms", goal),
        ("admin members, search name", timed(page("?q=Schneider")) * 1000, "ms", goal),
        ("admin members, search customer number", timed(page("?q=B0000012345")) * 1000, "ms", goal),
        ("admin members, filter by tier", timed(page(f"?tier__id__exact={gold.pk}")) * 1000, "ms", goal),
        ("admin ledger, page 1", timed(lambda: client.get("/admin/rewards/pointentry/")) * 1000, "ms", goal),
    ]
    # A member with a row on every page (see seed_console_extras: an even id divisible by 10 and 20).
    searched = min(12340, members - members % 20)
    customer_number, card_number = f"B{searched:010d}", f"9277{searched:012d}"
    seed_console_extras(members)
    for label, changelist in MEMBER_PAGES:
        rows.append((f"admin {label}, search customer number",
                     timed(admin_page(client, changelist, customer_number)) * 1000, "ms", "< 50 ms"))
    rows.append(("admin ledger, search card number", timed(admin_page(client, "rewards/pointentry", card_number))
                 * 1000, "ms", "< 50 ms"))
    rows.append(("admin purchases, search order reference",
                 timed(admin_page(client, "rewards/purchase", f"BENCH-{searched}-1")) * 1000, "ms", "< 50 ms"))
    started = time.perf_counter()
    call_command("verify_ledger")
    rows.append(("verify_ledger", time.perf_counter() - started, "s", "< 60 s"))
    started = time.perf_counter()
    report = points_expire_due()
    rows.append((f"expiry job ({report.members:,} members with points due)", time.perf_counter() - started, "s",
                 "< 60 s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        call_command("seed_bench", members=args.members)
    rows = measure_console(args.members)
    for figure, value, unit, _goal in rows:
        print(f"{figure:48s} {value:12,.1f} {unit}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
