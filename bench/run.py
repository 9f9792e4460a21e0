#!/usr/bin/env python3
"""`make bench`: measure the product against this machine's own limits, in one run.

Starts its own PostgreSQL, loads a large dataset (`seed_bench`, 1,000,000 members and
20,000,000 ledger entries by default; BENCH_MEMBERS=… for fewer), then measures each figure
next to the reference measured in the same run, prints a table and writes JSON to
var/bench/. Load stays on this machine and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

from testdb import throwaway_postgres, throwaway_redis  # noqa: E402

PG_SETTINGS = ["-c shared_buffers=2GB", "-c work_mem=64MB", "-c maintenance_work_mem=1GB",
               "-c max_wal_size=8GB",
               "-c checkpoint_timeout=30min", "-c max_parallel_workers_per_gather=2"]


class Results:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, figure: str, value: float, unit: str, reference: float | None = None, reference_name: str = "",
            goal: str = "") -> None:
        ratio = value / reference if reference else None
        self.rows.append({"figure": figure, "value": value, "unit": unit, "reference": reference,
                          "reference_name": reference_name, "ratio": ratio, "goal": goal})
        suffix = f" (reference {reference:,.1f}, ratio {ratio:.2f})" if ratio else ""
        print(f"  {figure}: {value:,.1f} {unit}{suffix}", flush=True)

    def table(self) -> str:
        lines = [f"{'figure':48s} {'value':>14s} {'unit':8s} {'reference':>12s} {'ratio':>7s}  goal"]
        for row in self.rows:
            reference = f"{row['reference']:,.1f}" if row["reference"] else "-"
            ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
            lines.append(f"{row['figure']:48s} {row['value']:14,.1f} {row['unit']:8s} {reference:>12s} {ratio:>7s}  "
                         f"{row['goal']}")
        return "\n".join(lines)


def pgbench_earn_reference(server: dict, members: int, clients: int = 16, seconds: int = 15) -> float:
    """The database's own limit for what one earn does: insert a ledger row, update a balance."""
    script = Path(tempfile.mkdtemp()) / "earn.sql"
    script.write_text(
        f"\\set mid random(1, {members})\n"
        "BEGIN;\n"
        "INSERT INTO rewards_pointentry (member_id, kind, points, created_at, expires_at, reason, source, reference) "
        "VALUES (:mid, 'earn', 10, now(), now() + interval '24 months', 'pgbench', '', '');\n"
        "UPDATE members_member SET points_balance = points_balance + 10 WHERE id = :mid;\n"
        "END;\n")
    script.chmod(0o644)
    script.parent.chmod(0o755)
    output = subprocess.run(
        [str(server["bin"] / "pgbench"), "-h", "127.0.0.1", "-p", str(server["port"]), "-U", "postgres", "-n",
         "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script), "loyalty"],
        capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("tps"))
    return float(line.split("=")[1].split()[0])


def load_for(clients: int, seconds: float, open_client) -> tuple[float, float, float, int]:
    """`clients` threads, each calling the function `open_client(index)` returns back to back for
    `seconds` (it gets the call number and answers True when the call succeeded); the
    function's `close` attribute, if any, runs at the end. Returns calls/s, p50 and p99 in ms,
    and the count of failed calls."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        call = open_client(index)
        mine, failed, n = [], 0, 0
        while time.perf_counter() < deadline:
            n += 1
            started = time.perf_counter()
            failed += not call(n)
            mine.append(time.perf_counter() - started)
        getattr(call, "close", lambda: None)()
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    pool = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return (len(latencies) / elapsed, statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000,
            failures[0])


def service_earn_throughput(members: int, threads: int = 16, seconds: float = 15) -> tuple[float, float, float]:
    """purchase_record called by 16 threads at once (rules, tier, ledger), without HTTP."""
    from django.db import connection

    from partners.models import Partner
    from rewards.purchases import purchase_record

    partner = Partner.objects.get_or_create(name="Bench partner")[0]

    def open_client(index: int):
        def call(n: int) -> bool:
            purchase_record(member_id=1 + (index * 7919 + n * 104729) % members, partner=partner,
                            order_reference=f"bench-{index}-{n}-{time.time_ns()}", amount=Decimal("23.45"))
            return True

        call.close = connection.close  # each thread's own connection
        return call

    rate, p50, p99, _failed = load_for(threads, seconds, open_client)
    return rate, p50, p99


def start_web_server(server: dict, workers: int | None = None) -> tuple[subprocess.Popen, str]:
    """The product as it runs in production: `python -m loyalty_site.serve` (granian, worker
    processes of one thread, the garbage collector's freeze after loading). `workers`: its
    default unless given (--workers)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": server["url"], "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.bench",
           "LOYALTY_API_RATE": "", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "loyalty_site.serve", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", *(["--workers", str(workers)] if workers else [])],
        cwd=ROOT, env=env)
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError as error:
            if getattr(error, "code", None):  # answered (503 without a worker): it is up
                break
            time.sleep(0.1)
    return process, f"127.0.0.1:{port}"


WRK_SECONDS = 15


def wrk_load(address: str, key: str, mode: str, members_file: Path, clients: int = 16,
             seconds: int = WRK_SECONDS) -> tuple[float, float, float, int]:
    """`clients` keep-alive connections from wrk (bench/api_load.lua: `mode` is balance or
    purchase; `members_file` holds the API ids of the members to spread the requests over), back
    to back for `seconds`. A load generator in C: a Python one spends about a third of a core per
    thousand requests, taken from the two the server has. Returns requests/s, p50 and p99 in ms,
    and the count of non-2xx answers and socket errors."""
    output = subprocess.run(
        ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(ROOT / "bench" / "api_load.lua"), f"http://{address}",
         "--", mode, str(members_file), key, str(time.time_ns())],
        capture_output=True, text=True, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return (figures["requests"] / figures["seconds"], figures["p50_ms"], figures["p99_ms"],
            figures["non_2xx"] + figures["socket_errors"])


def cpu_seconds(*roots: int) -> float:
    """CPU time (user + system) of the processes `roots` and their children so far (Linux /proc)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total


def postmaster_pid(server: dict) -> int:
    return int((Path(server["data"]) / "postmaster.pid").read_text().split()[0])


def load_with_cpu(process: subprocess.Popen, server: dict, address: str, key: str, mode: str,
                  members_file: Path) -> tuple[float, float, float, int, float, float]:
    """`wrk_load`'s figures, and the CPU per request (ms) of the web server's processes and of
    PostgreSQL's during it."""
    web_before, db_before = cpu_seconds(process.pid), cpu_seconds(postmaster_pid(server))
    rate, p50, p99, failed = wrk_load(address, key, mode, members_file)
    requests = rate * WRK_SECONDS
    web = (cpu_seconds(process.pid) - web_before) / requests * 1000
    db = (cpu_seconds(postmaster_pid(server)) - db_before) / requests * 1000
    return rate, p50, p99, failed, web, db


API_SAMPLE = 100_000  # members the load is spread over (their API ids go to a file wrk reads)


def measure_api(server: dict, members: int, results: Results, reference: float, workers: int | None = None) -> None:
    """As a partner's till or shop: the key of the partner the bench members bought with, so a
    member's API id reaches them (a partner reaches only related or present members)."""
    from members.models import Member
    from partners.models import Scope
    from partners.services import partner_key_create
    from rewards.demo import seed_catalogue_basics

    partner, _stores = seed_catalogue_basics()
    _key, raw = partner_key_create(partner=partner, scopes=Scope.values, name="bench")
    members_file = ROOT / "var" / "bench" / "api_members.txt"
    members_file.parent.mkdir(parents=True, exist_ok=True)
    ids = Member.objects.order_by("id").values_list("public_id", flat=True)[:min(members, API_SAMPLE)]
    members_file.write_text("".join(f"{public_id}\n" for public_id in ids))
    process, address = start_web_server(server, workers)
    try:
        wrk_load(address, raw, "balance", members_file, seconds=3)  # warm-up: imports, caches, connections
        # Where the time goes: CPU of the web workers and of PostgreSQL per purchase, and the rate
        # the machine's cores would allow at that cost (the profile behind the figure).
        rate, p50, p99, failed, web, db = load_with_cpu(process, server, address, raw, "purchase", members_file)
        results.add("API purchase earn (16 clients, granian)", rate, "req/s", reference, "pgbench",
                    ">= 20 % of pgbench")
        results.add("API purchase earn CPU: web workers", web, "ms/req", goal="profile")
        results.add("API purchase earn CPU: PostgreSQL", db, "ms/req", goal="profile")
        results.add("API purchase earn, ceiling at that CPU", (os.cpu_count() or 1) * 1000 / (web + db), "req/s",
                    reference, "pgbench", "profile: all cores, no client")
        results.add("API purchase earn p50", p50, "ms", goal="< 20 ms")
        results.add("API purchase earn p99", p99, "ms", goal="< 50 ms")
        results.add("API purchase earn non-2xx answers", failed, "count", goal="0")
        rate, p50, p99, failed, web, db = load_with_cpu(process, server, address, raw, "balance", members_file)
        results.add("API balance read (16 clients)", rate, "req/s", goal=">= 1,000 req/s")
        # The floor of an API request in this stack (Django, DRF, the key, one query, JSON): what
        # the purchase's CPU above compares with.
        results.add("API balance read CPU: web workers", web, "ms/req", goal="profile")
        results.add("API balance read CPU: PostgreSQL", db, "ms/req", goal="profile")
        results.add("API balance read p99", p99, "ms", goal="< 20 ms")
        results.add("API balance read non-2xx answers", failed, "count", goal="0")
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure_segments(members: int, results: Results) -> None:
    """Audience counts over the whole membership (purchase lines, consents and tags added first)."""
    from django.db import connection
    from segment_bench import SEGMENTS, seed_extras

    from campaigns.segments import Condition, compile_conditions
    from members.models import Member

    with connection.cursor() as cursor:
        seed_extras(cursor, members)
    slowest = ("", 0.0)
    for label, rows in SEGMENTS.items():
        conditions = [Condition(field=row[0], operator=row[1], value=row[2], days=row[3],
                                group=row[4] if len(row) > 4 else 1) for row in rows]
        queryset = Member.objects.active().filter(compile_conditions(conditions))
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            queryset.count()
            samples.append(time.perf_counter() - started)
        seconds = statistics.median(samples)
        slowest = max(slowest, (label, seconds), key=lambda pair: pair[1])
        if label.startswith("win-back") or label.startswith("Gold+"):
            results.add(f"segment count: {label}"[:48], seconds * 1000, "ms", goal="< 1 s")
    results.add(f"slowest of {len(SEGMENTS)} segments ({slowest[0]})"[:48], slowest[1] * 1000, "ms", goal="< 1 s")


def measure_dashboard(results: Results) -> None:
    from loyalty_site.dashboard import compute_figures

    started = time.perf_counter()
    compute_figures()
    results.add("dashboard figures (beat job, every 15 min)", time.perf_counter() - started, "s",
                goal="page: one cache read")


def measure_campaign_send(results: Results) -> None:
    """A broadcast to the VIP members with e-mail consent (1 % of all, from measure_segments):
    render, consent and cap check, record, hand to the e-mail backend (Django's in-memory
    backend: no network)."""
    from campaigns.models import Campaign, Message, Segment, SegmentCondition, Variant
    from campaigns.services import campaign_launch, campaign_run_inline

    segment = Segment.objects.create(name="bench audience")
    SegmentCondition.objects.create(segment=segment, group=1, field="consent", operator="given", value="email")
    SegmentCondition.objects.create(segment=segment, group=1, field="tags", operator="in", value="VIP")
    campaign = Campaign.objects.create(name="bench broadcast", segment=segment, kind=Campaign.Kind.BROADCAST,
                                       channel=Campaign.Channel.EMAIL)
    Variant.objects.create(campaign=campaign, name="A", weight=1, subject_de="Hallo {{ first_name }}",
                           body_de="Sie haben {{ points_balance }} Punkte.", subject_en="Hello {{ first_name }}",
                           body_en="You have {{ points_balance }} points.")
    campaign_launch(campaign_id=campaign.pk, dispatch=False)
    started = time.perf_counter()
    campaign_run_inline(campaign_id=campaign.pk)
    elapsed = time.perf_counter() - started
    sent = Message.objects.filter(campaign=campaign, status=Message.Status.SENT).count()
    results.add(f"campaign send ({sent:,} e-mails)", sent / elapsed, "msg/s", goal=">= 300 msg/s")


def measure_import(rows: int, results: Results) -> None:
    """The member import of bench/import_bench.py (its `measure`: the file, the write-mode import
    in one transaction, COPY of the same file as the floor), in a process of its own with its own
    throwaway PostgreSQL, after the other parts have stopped theirs: the peak memory is then the
    importing process's alone, and neither server's data or load touches the other's figures."""
    figures_file = Path(tempfile.mkdtemp(prefix="loyalty-import-bench-")) / "import.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "import_bench.py"), "--rows", str(rows), "--no-dry-run",
                    "--no-again", "--json", str(figures_file)], check=True, cwd=ROOT)
    figures = json.loads(figures_file.read_text())
    figures_file.unlink()
    results.add(f"member import, write mode ({rows:,} rows)", figures["import"]["rows_per_second"], "rows/s",
                figures["copy"]["rows_per_second"], "COPY", ">= 10,000 rows/s")
    results.add("member import, COPY of the same file (floor)", figures["copy"]["rows_per_second"], "rows/s")
    results.add("member import, peak memory of the process", figures["peak_mib"], "MiB", goal="< 1 GiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=int(os.environ.get("BENCH_MEMBERS", 1_000_000)))
    parser.add_argument("--only", default="", help="Comma-separated parts to run after the seed: "
                        "writes (pgbench, service, API), segments, dashboard, campaigns, console, import (the "
                        "member import, on a server of its own, after the others; no seed if it runs alone). "
                        "Default: all.")
    parser.add_argument("--import-rows", type=int, default=None,
                        help="rows of the member file the import part imports (default: --members, 1,000,000)")
    parser.add_argument("--workers", type=int, default=None,
                        help="web server workers for the API figures (default: loyalty_site/serve.py's)")
    args = parser.parse_args()
    parts = (set(filter(None, args.only.split(",")))
             or {"writes", "segments", "dashboard", "campaigns", "console", "import"})
    results = Results()
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    if parts - {"import"}:
        measure_seeded(args, parts, results)
    if "import" in parts:
        measure_import(args.import_rows or args.members, results)

    print()
    print(results.table())
    path = out_dir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"members": args.members, "results": results.rows}, indent=2))
    print(f"\nJSON: {path}")
    return 0


def measure_seeded(args: argparse.Namespace, parts: set[str], results: Results) -> None:
    """Every part but the import: one server seeded with `args.members` members."""
    with throwaway_postgres(PG_SETTINGS) as server, throwaway_redis() as redis:
        os.environ["DATABASE_URL"] = server["url"]
        os.environ["LOYALTY_TEST_REDIS_URL"] = redis["url"]
        os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings.test"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"Seeding {args.members:,} members …", flush=True)
        started = time.perf_counter()
        call_command("seed_bench", members=args.members)
        results.add("seed_bench (members + 20 entries each)", time.perf_counter() - started, "s")

        if "writes" in parts:
            reference = pgbench_earn_reference(server, args.members)
            results.add("pgbench earn reference (16 clients)", reference, "tps")
            rate, p50, p99 = service_earn_throughput(args.members)
            results.add("purchase earn, service level (16 threads)", rate, "earn/s", reference, "pgbench",
                        ">= 20 % of pgbench (via API)")
            results.add("purchase earn, service level p50", p50, "ms", goal="< 20 ms (via API)")
            results.add("purchase earn, service level p99", p99, "ms", goal="< 50 ms (via API)")
            measure_api(server, args.members, results, reference, args.workers)
        if "segments" in parts or "campaigns" in parts:
            measure_segments(args.members, results)
        if "dashboard" in parts:
            measure_dashboard(results)
        if "campaigns" in parts:
            measure_campaign_send(results)

        if "console" in parts:
            sys.argv = ["console_bench"]
            from console_bench import measure_console

            for figure, value, unit, goal in measure_console(args.members):
                results.add(figure, value, unit, goal=goal)


if __name__ == "__main__":
    sys.exit(main())
