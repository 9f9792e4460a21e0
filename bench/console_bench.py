"""Time the operator console and the ledger jobs on a large dataset.

    python scripts/testdb.py -- python bench/console_bench.py --members 1000000

Seeds with `seed_bench`, then measures server time of admin changelist pages (first page, page
5,000, a search by e-mail fragment and by name, a filter by tier), `verify_ledger` and the
expiry job, and prints one line per figure.
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
