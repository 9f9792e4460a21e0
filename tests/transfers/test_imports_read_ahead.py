"""Reading and cleaning the next chunk in a thread while this one is written (transfers.importers.read_ahead):
the same rows, problems and line numbers as without it, in the caller's language, and no thread left behind."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import translation

from members.models import Member
from tests.import_helpers import csv_bytes
from transfers import importers as importing
from transfers.errors import ImportFailed, ImportFileError
from transfers.importers import import_table, read_ahead
from transfers.models import ImportJob
from transfers.reading import open_table

OUR_GERMAN = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES" / "django.po"


def _read_ahead_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "import-read-ahead"]


def _import(text: str, *, skip_invalid: bool = False):
    """A write-mode import (the one that reads ahead) in its own transaction."""
    content = csv_bytes(text)
    table = open_table(io.BytesIO(content), name="kunden.csv", size=len(content))
    with transaction.atomic():
        return import_table(table, kind=ImportJob.Kind.MEMBERS, write=True, skip_invalid=skip_invalid,
                            label="kunden.csv")


def test_read_ahead_gives_every_item_in_order_and_leaves_no_thread():
    with_thread = []

    def items():
        for number in range(50):
            with_thread.append(threading.current_thread().name)
            yield number

    assert list(read_ahead(items())) == list(range(50))
    assert set(with_thread) == {"import-read-ahead"}
    assert _read_ahead_threads() == []


def test_read_ahead_raises_the_producers_error_after_the_items_made_before_it():
    def items():
        yield 1
        yield 2
        raise ImportFileError(detail="line 3 cannot be read")

    received = []
    with pytest.raises(ImportFileError, match="line 3"):
        for item in read_ahead(items()):
            received.append(item)
    assert received == [1, 2]
    assert _read_ahead_threads() == []


def test_a_consumer_that_stops_early_stops_the_thread_and_closes_the_producer():
    closed = threading.Event()

    def items():
        try:
            number = 0
            while True:
                number += 1
                yield number
        finally:
            closed.set()

    ahead = read_ahead(items())
    assert next(ahead) == 1
    ahead.close()
    assert closed.is_set()
    assert _read_ahead_threads() == []


def test_read_ahead_works_in_the_callers_language():
    def items():
        yield translation.get_language()

    with translation.override("de"):
        assert list(read_ahead(items())) == ["de"]
    with translation.override("en"):
        assert list(read_ahead(items())) == ["en"]


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is installed by scripts/system-deps.sh")
def test_problems_found_ahead_keep_their_line_numbers_and_the_callers_language(tiers, monkeypatch, tmp_path,
                                                                                settings):
    target = tmp_path / "locale" / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(OUR_GERMAN)], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)  # every two rows a chunk: most are cleaned ahead
    rows = "".join(f"K{n};{'kaputt@' if n % 3 == 0 else f'k{n}@example.de'}\n" for n in range(1, 11))
    with translation.override("de"):
        report = _import("Kundennummer;E-Mail\n" + rows, skip_invalid=True)
    assert report.counts["new"] == 7 and report.counts["invalid"] == 3
    assert [(error["line"], error["column"], error["message"]) for error in report.errors] == [
        (line, "E-Mail", "„kaputt@“ ist keine gültige E-Mail-Adresse") for line in (4, 7, 10)]
    assert sorted(Member.objects.values_list("customer_number", flat=True)) == sorted(
        f"K{n}" for n in range(1, 11) if n % 3)


def test_an_invalid_row_in_a_later_chunk_fails_the_import_with_its_line_and_writes_nothing(tiers, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    rows = "".join(f"K{n};{'kaputt@' if n == 7 else f'k{n}@example.de'}\n" for n in range(1, 11))
    with pytest.raises(ImportFailed) as failure:
        _import("Kundennummer;E-Mail\n" + rows)
    assert failure.value.params["line"] == 8
    assert not Member.objects.exists()
    assert _read_ahead_threads() == []


def test_a_dry_run_cleans_in_its_own_thread(tiers, monkeypatch):
    started = []
    monkeypatch.setattr(importing, "read_ahead", lambda items: started.append(1) or items)
    content = csv_bytes("Kundennummer;E-Mail\nK1;k1@example.de\n")
    table = open_table(io.BytesIO(content), name="kunden.csv", size=len(content))
    assert import_table(table, kind=ImportJob.Kind.MEMBERS, write=False).counts["new"] == 1
    assert started == []
    _import("Kundennummer;E-Mail\nK1;k1@example.de\n")
    assert started == [1]
