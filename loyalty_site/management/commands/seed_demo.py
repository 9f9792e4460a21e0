from __future__ import annotations

from django.core.management.base import BaseCommand

from loyalty_site.demo import seed_demo
from members.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Load believable demo data (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000, help="How many demo members (default 2000).")

    def handle(self, *args, **options):
        self.stdout.write(f"Seeding demo data ({options['members']} members) …")
        result = seed_demo(members=options["members"], stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready: {result['members_created']} new members, {result['purchases']} purchases."))
        self.stdout.write("")
        self.stdout.write(f"  Operator console: http://127.0.0.1:8000/admin/  login {result['staff']} "
                          f"/ {DEMO_PASSWORD}")
        self.stdout.write(f"  Member portal:    http://127.0.0.1:8000/           login {result['member']} "
                          f"/ {DEMO_PASSWORD}")
        if result.get("api_key"):
            self.stdout.write(f"  Partner API key:  {result['api_key']}")
            self.stdout.write(f"  API example:      customer number {result['example_customer_number']}, "
                              f"member id {result['example_member_id']}")
            self.stdout.write(f"    export KEY={result['api_key']} CUSTOMER={result['example_customer_number']} "
                              f"MEMBER={result['example_member_id']}   # then the curl lines in README.md")
        self.stdout.write("")
