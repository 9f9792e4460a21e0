"""Check the ledger invariants for every member; exit non-zero on any mismatch.

- points_balance == SUM(entries.points) and points_balance >= 0
- points_pending == SUM(purchases.points_pending)

One grouped query per invariant, so it runs over millions of entries in one pass.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from members.models import Member
from rewards.selectors import ledger_mismatches, pending_mismatches


class Command(BaseCommand):
    help = "Verify that every member's cached balance equals the sum of their ledger entries."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=50, help="How many mismatches to print.")

    def handle(self, *args, **options):
        balance_rows = ledger_mismatches(limit=options["limit"])
        pending_rows = pending_mismatches(limit=options["limit"])
        negative = Member.objects.filter(points_balance__lt=0).count()
        for member_id, cached, actual in balance_rows:
            self.stdout.write(f"member {member_id}: points_balance {cached} != sum of entries {actual}")
        for member_id, cached, actual in pending_rows:
            self.stdout.write(f"member {member_id}: points_pending {cached} != pending on purchases {actual}")
        if negative:
            self.stdout.write(f"{negative} member(s) with a negative balance")
        if balance_rows or pending_rows or negative:
            raise CommandError("ledger verification FAILED")
        members = Member.objects.count()
        self.stdout.write(self.style.SUCCESS(f"ledger OK: {members} members checked"))
