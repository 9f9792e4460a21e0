"""Concurrency tests run real threads against PostgreSQL, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_in_threads(count: int, work: Callable[[int], Any], *, results: bool = False) -> list:
    """Start `count` threads at the same moment (`work(index)` each); return what each raised,
    else None, or with `results=True` what each returned."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def runner(index: int) -> None:
        try:
            barrier.wait()
            value = work(index)
            if results:
                outcomes[index] = value
        except Exception as error:  # collected for the assertions
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
