"""CPU time of one console request, and where it goes (issue #24).

    python scripts/testdb.py -- python bench/console_profile.py --members 2000
    python scripts/testdb.py -- python bench/console_profile.py --members 2000 --profile ledger

Seeds a small dataset (`seed_bench` and the console extras of console_bench) and times the
customer-number search on each member-related console page and the ledger searched by card
number in this process's CPU time (time.process_time: the machine is shared, wall time is not
ours alone), median of --repeat requests after one warm-up. The database's own time is not in
it: the queries take 0.5–16 ms on 20,000,000 entries and were not what this measures. With
--profile NAME, prints cProfile's top functions (cumulative) for that page.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")


def cpu_ms(function, repeat: int) -> float:
    function()  # warm-up: template loading, first-use imports
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        function()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--profile", default="", help="a page's label (ledger, card, purchases …): profile it")
    parser.add_argument("--profile-out", default="", help="with --profile: also write the raw profile here")
    args = parser.parse_args()

    import django

    django.setup()
    from console_bench import MEMBER_PAGES, admin_page, seed_console_extras
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from members.models import Member

    call_command("migrate", verbosity=0)
    if not Member.objects.exists():
        with open(os.devnull, "w") as quiet:
            call_command("seed_bench", members=args.members, stdout=quiet)
    seed_console_extras(args.members)
    user = get_user_model().objects.filter(username="bench-admin").first() or get_user_model().objects.create_superuser(
        "bench-admin", "bench@example.org", "bench-password")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    searched = min(12340, args.members - args.members % 20)
    customer_number, card_number = f"B{searched:010d}", f"9277{searched:012d}"
    pages = {label: admin_page(client, changelist, customer_number) for label, changelist in MEMBER_PAGES}
    pages["card"] = admin_page(client, "rewards/pointentry", card_number)
    if args.profile:
        fetch = pages[args.profile]
        fetch()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.repeat):
            fetch()
        profiler.disable()
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        return
    for label, fetch in pages.items():
        print(f"{label:14s} {cpu_ms(fetch, args.repeat):7.1f} ms CPU", flush=True)


if __name__ == "__main__":
    main()
