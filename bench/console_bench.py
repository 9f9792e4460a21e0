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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from members.models import Tier
    from rewards.services import points_expire_due

    results: dict[str, float] = {}
    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        started = time.perf_counter()
        call_command("seed_bench", members=args.members)
        results["seed_bench_s"] = time.perf_counter() - started

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

    results["admin_members_page1_ms"] = timed(page("")) * 1000
    deep_page = min(5000, max(1, args.members // 25 - 1))  # 25 members a page
    results[f"admin_members_page{deep_page}_ms"] = timed(page(f"?p={deep_page}")) * 1000
    results["admin_members_search_email_ms"] = timed(page("?q=mueller.12")) * 1000
    results["admin_members_search_number_ms"] = timed(page("?q=B0000012345")) * 1000
    results["admin_members_search_name_ms"] = timed(page("?q=Schneider")) * 1000
    results["admin_members_filter_tier_ms"] = timed(page(f"?tier__id__exact={gold.pk}")) * 1000
    results["admin_ledger_page1_ms"] = timed(lambda: client.get("/admin/rewards/pointentry/")) * 1000

    started = time.perf_counter()
    call_command("verify_ledger")
    results["verify_ledger_s"] = time.perf_counter() - started

    started = time.perf_counter()
    report = points_expire_due()
    results["expiry_job_s"] = time.perf_counter() - started
    results["expiry_members"] = report.members

    for key, value in results.items():
        print(f"{key:34s} {value:12,.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
