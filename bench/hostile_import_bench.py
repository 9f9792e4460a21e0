"""Peak memory and time of reading each hostile import file (tests/hostile_files.py).

    python bench/hostile_import_bench.py [--limit-mib 3072] [--timeout 120] [--keep DIR]

Each file is read in a child process the way a dry run reads it (`members.imports.open_table`, then
every row), with its address space capped at --limit-mib (so an unbounded reader fails with a
MemoryError instead of taking the machine) and killed after --timeout seconds. Prints one line
per file: outcome, peak RSS (from wait4) and wall time."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, django
django.setup()
from members.imports import ImportFileError, cell_text, open_table
path = sys.argv[1]
try:
    with open(path, "rb") as binary:
        import os
        table = open_table(binary, name=os.path.basename(path), size=os.path.getsize(path))
        # Like the dry run: a row counts unless all its cells are blank.
        rows = sum(1 for _line, cells in table.rows if any(cell_text(cell) for cell in cells))
    print(json.dumps({"outcome": f"read {rows} rows"}))
except ImportFileError as error:
    print(json.dumps({"outcome": "refused: " + str(error)}))
"""


def measure(path: Path, *, limit_mib: int, timeout: float) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE",
                                                                   "loyalty_site.settings.local")}

    def cap() -> None:
        limit = limit_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, env=env, preexec_fn=cap,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = False
    while True:
        pid, _status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            child.kill()
            killed = True
            pid, _status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    if killed:
        outcome = f"killed after {timeout:.0f} s (still reading)"
    elif out.strip():
        outcome = json.loads(out.strip().splitlines()[-1])["outcome"]
    else:
        last = (err.strip().splitlines() or ["?"])[-1]
        outcome = f"crashed: {last[:120]}"
    return {"outcome": outcome, "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds}


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
