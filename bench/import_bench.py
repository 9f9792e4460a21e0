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
import os
import random
import resource
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


def timed_import(path: Path, *, write: bool):
    from django.db import transaction

    from transfers.importers import import_table
    from transfers.models import ImportJob
    from transfers.reading import open_table

    started = time.perf_counter()
    with path.open("rb") as binary, transaction.atomic():
        table = open_table(binary, name=path.name, size=path.stat().st_size)
        report = import_table(table, kind=ImportJob.Kind.MEMBERS, write=write, label=path.name)
    return time.perf_counter() - started, report


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    path = Path(tempfile.mkdtemp(prefix="loyalty-import-")) / "kunden.csv"
    write_file(path, rows)
    print(f"{rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB (Windows-1252, semicolons, German headings)", flush=True)
    with throwaway_postgres(["-c shared_buffers=1GB", "-c maintenance_work_mem=512MB", "-c max_wal_size=8GB"]) as pg, \
            throwaway_redis() as redis:
        os.environ["DATABASE_URL"] = pg["url"]
        os.environ["LOYALTY_TEST_REDIS_URL"] = redis["url"]
        os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings.test"
        import django

        django.setup()
        tiers_and_migrations()
        dry_seconds, dry = timed_import(path, write=False)
        print(f"  dry run: {dry_seconds:,.1f} s, {rows / dry_seconds:,.0f} rows/s "
              f"(new {dry.counts["new"]:,}, invalid {dry.counts["invalid"]:,})", flush=True)
        import_seconds, done = timed_import(path, write=True)
        print(f"  import:  {import_seconds:,.1f} s, {rows / import_seconds:,.0f} rows/s "
              f"(new {done.counts['new']:,})", flush=True)
        copy_seconds = timed_copy(path)
        print(f"  COPY:    {copy_seconds:,.1f} s, {rows / copy_seconds:,.0f} rows/s "
              f"(import takes {import_seconds / copy_seconds:,.0f}× COPY's time)", flush=True)
        again_seconds, again = timed_import(path, write=True)
        print(f"  same file again: {again_seconds:,.1f} s, {rows / again_seconds:,.0f} rows/s, "
              f"new {again.counts['new']:,}, unchanged {again.counts['unchanged']:,}", flush=True)
        # ru_maxrss is in KiB on Linux: this process's peak (the file is streamed, never held).
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the importing process: {peak:,.0f} MiB", flush=True)
        from django.core.management import call_command

        call_command("verify_ledger")
    return 0


if __name__ == "__main__":
    sys.exit(main())
