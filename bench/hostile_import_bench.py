"""Peak memory and time of reading each hostile import file (tests/hostile_files.py).

    python bench/hostile_import_bench.py [--limit-mib 3072] [--timeout 120] [--keep DIR]

Each file is read in a child process the way a dry run reads it (`transfers.reading.open_table`, then
every row), with its address space capped at --limit-mib (so an unbounded reader fails with a
MemoryError instead of taking the machine) and killed after --timeout seconds. Prints one line
per file: outcome, peak RSS (from wait4) and wall time."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

def measure(path: Path, *, limit_mib: int, timeout: float) -> dict:
    from tests.hostile_files import read_in_child

    read = read_in_child(path, settings_module=os.environ.get("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.local"),
                         limit_mib=limit_mib, timeout=timeout)
    if read.killed:
        outcome = f"killed after {timeout:.0f} s (still reading)"
    elif read.printed is None:
        outcome = f"crashed: {(read.stderr.strip().splitlines() or ['?'])[-1][:120]}"
    elif read.printed["refused"]:
        outcome = "refused: " + read.printed["refused"]
    else:
        outcome = f"read {read.printed['rows']} rows"
    return {"outcome": outcome, "peak_rss_mib": read.peak_rss_mib, "seconds": read.seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit-mib", type=int, default=3072)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--keep", type=Path, help="write the files here (and reuse them)")
    parser.add_argument("--only", help="substring of the names to run")
    args = parser.parse_args()

    from tests.hostile_files import HOSTILE_FILES

    folder = args.keep or Path(tempfile.mkdtemp(prefix="hostile-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for title, (name, make) in HOSTILE_FILES.items():
        if args.only and args.only not in title:
            continue
        path = folder / name
        if not path.exists():
            make(path)
        result = measure(path, limit_mib=args.limit_mib, timeout=args.timeout)
        result["file_kib"] = path.stat().st_size / 1024
        results[title] = result
        print(f"{title:42} {result['file_kib']:9.1f} KiB  peak {result['peak_rss_mib']:7.1f} MiB  "
              f"{result['seconds']:6.2f} s  {result['outcome'][:140]}", flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
