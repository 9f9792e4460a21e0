#!/usr/bin/env python3
"""A customer-file import at scale, next to PostgreSQL's own COPY of the same file.

    python bench/import_bench.py                 # 1,000,000 members
    python bench/import_bench.py --rows 100000

Starts its own PostgreSQL, writes a Windows-1252, semicolon-separated file with German headings,
dates and decimal commas (opening balances, tags, tiers, consent proof on some rows), then times:
1. the dry run (parse and validate every row, write nothing),
2. the import (one transaction: members, tier history, tags, consent records, opening balances
   as ledger entries through rewards.ledger),
3. COPY of the same file into a table of text columns (the floor: no parsing, no checks),
and prints rows per second for each. Nothing else runs against this server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from testdb import throwaway_postgres, throwaway_redis  # noqa: E402

HEADINGS = ["Kundennummer", "Anrede", "Vorname", "Nachname", "E-Mail", "Telefon", "Geburtsdatum", "Straße", "PLZ",
            "Ort", "Land", "Sprache", "Beitrittsdatum", "Tags", "Stufe", "Anfangsbestand", "Einwilligung E-Mail",
            "Einwilligungsdatum", "Einwilligungsquelle"]
FIRST = ["Jürgen", "Özlem", "Anna", "Lukas", "Sophie", "Maximilian", "Mia", "Leon", "Hannah", "Élodie"]
LAST = ["Müller", "Schäfer", "Weiß", "Bauer", "Groß", "Köhler", "Fischer", "Wagner", "Becker", "Hoffmann"]
CITIES = [("10115", "Berlin", "Deutschland"), ("1010", "Wien", "Österreich"), ("8001", "Zürich", "Schweiz"),
          ("80331", "München", "DE")]


def write_file(path: Path, rows: int) -> None:
    rng = random.Random(42)
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write(";".join(HEADINGS) + "\r\n")
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            postal, city, country = rng.choice(CITIES)
            consent = n % 3 == 0
            balance = rng.randrange(0, 5000)
            out.write(";".join([
                f"K-{n + 1:08d}", rng.choice(["Frau", "Herr", "divers", ""]), first, last,
                f"kunde{n + 1}@beispiel.de", f"+49 30 {rng.randrange(10**6, 10**7)}",
                f"{rng.randrange(1, 29):02d}.{rng.randrange(1, 13):02d}.{rng.randrange(1940, 2005)}",
                f"Hauptstraße {rng.randrange(1, 200)}", postal, city, country, rng.choice(["Deutsch", "Englisch"]),
                f"{rng.randrange(1, 29):02d}.{rng.randrange(1, 13):02d}.{rng.randrange(2015, 2026)}",
                rng.choice(["", "VIP", "Kaffee, Newsletter"]), rng.choice(["Basis", "Silber", "Gold"]),
                f"{balance:,}".replace(",", "."), "ja" if consent else "",
                "02.03.2021" if consent else "", "Webshop-Anmeldung (Double-Opt-in)" if consent else "",
            ]) + "\r\n")


def tiers_and_migrations() -> None:
    from decimal import Decimal

    from django.core.management import call_command

    from members.models import Tier

    call_command("migrate", verbosity=0)
    for rank, (de, en, threshold) in enumerate([("Basis", "Basic", 0), ("Silber", "Silver", 500),
                                                 ("Gold", "Gold", 2000)]):
        Tier.objects.get_or_create(rank=rank, defaults={"name_de": de, "name_en": en, "threshold_points": threshold,
                                                        "earn_multiplier": Decimal("1")})


GOAL_ROWS_PER_SECOND = 10_000  # issue #24: a real import of 1,000,000 rows
GOAL_PEAK_MIB = 1024


def backend_cpu_seconds() -> float:
    """CPU time of this connection's PostgreSQL backend so far (it runs on this machine): with
    other work on the machine, CPU seconds say more than wall-clock time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_import(path: Path, *, write: bool):
    """Wall seconds, the report, and CPU seconds: this process (all threads), its main thread
    (the read-ahead thread cleans while the main thread waits for PostgreSQL) and the backend."""
    from django.db import transaction

    from transfers.importers import import_table
    from transfers.models import ImportJob
    from transfers.reading import open_table

    backend = backend_cpu_seconds()
    process, main = time.process_time(), time.thread_time()
    started = time.perf_counter()
    with path.open("rb") as binary, transaction.atomic():
        table = open_table(binary, name=path.name, size=path.stat().st_size)
        report = import_table(table, kind=ImportJob.Kind.MEMBERS, write=write, label=path.name)
    elapsed = time.perf_counter() - started
    cpu = {"process": time.process_time() - process, "main": time.thread_time() - main,
           "backend": backend_cpu_seconds() - backend}
    return elapsed, report, cpu


def cpu_text(rows: int, cpu: dict) -> str:
    """The CPU seconds, and the rate if the main thread and the backend had a core each and
    nothing else ran (what a quiet machine shows; the read-ahead thread runs while they wait)."""
    serial = cpu["main"] + cpu["backend"]
    return (f"CPU: importer {cpu['process']:,.1f} s (main thread {cpu['main']:,.1f} s), "
            f"PostgreSQL {cpu['backend']:,.1f} s; main thread + PostgreSQL: {rows / serial:,.0f} rows/s")


def timed_copy(path: Path) -> float:
    from django.db import connection

    columns = ", ".join(f"c{n} text" for n in range(len(HEADINGS)))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE bench_copy ({columns})")
        started = time.perf_counter()
        with path.open("rb") as binary, cursor.copy(
                "COPY bench_copy FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER true, ENCODING 'WIN1252')") as copy:
            while chunk := binary.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return elapsed


def measure(rows: int, *, dry_run: bool = True, again: bool = True) -> dict:
    """Write the file, start a server, time the import (and, unless told not to, the dry run
    before it and the same file again after it) and COPY; print each figure and return them
    (seconds, rows/s, CPU seconds, the peak RSS of this process in MiB). `make bench` runs this
    in a process of its own (bench/run.py, part "import"): the peak is then the import's."""
    path = Path(tempfile.mkdtemp(prefix="loyalty-import-")) / "kunden.csv"
    write_file(path, rows)
    figures: dict = {"rows": rows, "megabytes": path.stat().st_size / 1e6}
    print(f"{rows:,} rows, {figures['megabytes']:,.0f} MB (Windows-1252, semicolons, German headings)", flush=True)
    # wal_buffers: PostgreSQL's default (16 MB here) fills within a chunk, and the importing backend
    # then writes the WAL itself instead of leaving it to the WAL writer (measured: 5 s of its CPU
    # per 1,000,000 rows). A server taking bulk imports wants it larger; README, production.
    with throwaway_postgres(["-c shared_buffers=1GB", "-c maintenance_work_mem=512MB", "-c max_wal_size=8GB",
                             "-c wal_buffers=128MB"]) as pg, \
            throwaway_redis() as redis:
        os.environ["DATABASE_URL"] = pg["url"]
        os.environ["LOYALTY_TEST_REDIS_URL"] = redis["url"]
        os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings.test"
        import django

        django.setup()
        tiers_and_migrations()
        if dry_run:
            dry_seconds, dry, dry_cpu = timed_import(path, write=False)
            figures["dry_run"] = {"seconds": dry_seconds, "rows_per_second": rows / dry_seconds, "cpu": dry_cpu}
            print(f"  dry run: {dry_seconds:,.1f} s, {rows / dry_seconds:,.0f} rows/s "
                  f"(new {dry.counts["new"]:,}, invalid {dry.counts["invalid"]:,}); {cpu_text(rows, dry_cpu)}",
                  flush=True)
        import_seconds, done, import_cpu = timed_import(path, write=True)
        figures["import"] = {"seconds": import_seconds, "rows_per_second": rows / import_seconds, "cpu": import_cpu,
                             "new": done.counts["new"]}
        print(f"  import:  {import_seconds:,.1f} s, {rows / import_seconds:,.0f} rows/s "
              f"(goal ≥ {GOAL_ROWS_PER_SECOND:,}; new {done.counts['new']:,}); {cpu_text(rows, import_cpu)}",
              flush=True)
        copy_seconds = timed_copy(path)
        figures["copy"] = {"seconds": copy_seconds, "rows_per_second": rows / copy_seconds}
        print(f"  COPY:    {copy_seconds:,.1f} s, {rows / copy_seconds:,.0f} rows/s "
              f"(import takes {import_seconds / copy_seconds:,.0f}× COPY's time)", flush=True)
        if again:
            again_seconds, repeated, again_cpu = timed_import(path, write=True)
            figures["again"] = {"seconds": again_seconds, "rows_per_second": rows / again_seconds, "cpu": again_cpu}
            print(f"  same file again: {again_seconds:,.1f} s, {rows / again_seconds:,.0f} rows/s, "
                  f"new {repeated.counts['new']:,}, unchanged {repeated.counts['unchanged']:,}; "
                  f"{cpu_text(rows, again_cpu)}", flush=True)
        # ru_maxrss is in KiB on Linux: this process's peak (the file is streamed, never held).
        figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the importing process: {figures['peak_mib']:,.0f} MiB "
              f"(goal < {GOAL_PEAK_MIB:,} MiB)", flush=True)
        from django.core.management import call_command

        call_command("verify_ledger")
    shutil.rmtree(path.parent, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-dry-run", action="store_true", help="time the import only, without the dry run first")
    parser.add_argument("--no-again", action="store_true", help="do not import the same file a second time")
    parser.add_argument("--json", type=Path, help="also write the figures to this file (bench/run.py reads it)")
    args = parser.parse_args()
    figures = measure(args.rows, dry_run=not args.no_dry_run, again=not args.no_again)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
