"""Fuzzing the import parsers with hypothesis: whatever a cell or a file holds, the parser returns
a value or a clear cell error (reported with its line), never a crash."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transfers.cells import (
    CellError,
    parse_bool,
    parse_country,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_money,
    parse_points,
)
from transfers.errors import ImportFileError
from transfers.reading import _EncodingFailed, detect_encoding, open_table, sniff_delimiter

CELLS = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,9}([.,][0-9]{0,4})?", fullmatch=True),
    st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{2,5}", fullmatch=True),
    st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates(), st.datetimes(), st.none(), st.booleans(),
)
PARSERS = [parse_date, parse_datetime, parse_decimal, parse_money, parse_points, parse_bool, parse_country]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda parser: parser.__name__)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(cell=CELLS)
@example(cell=Decimal("35680554854949373868370893440.143"))  # found by the fuzzer: quantize overflowed
def test_a_cell_parses_or_is_a_clear_error(parser, cell):
    try:
        value = parser(cell)
    except CellError as error:
        assert str(error)  # a message for the report, never empty
        return
    assert value is None or isinstance(value, str | bool | int | Decimal | date | datetime)
    if isinstance(value, Decimal):
        assert value.is_finite()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=2000))
def test_any_bytes_give_a_table_or_a_clear_file_error(raw):
    try:
        table = open_table(io.BytesIO(raw), name="kunden.csv", size=len(raw))
        for _ in zip(range(50), getattr(table, "rows", []), strict=False):
            pass
    except (ImportFileError, CellError) as error:
        assert str(error)
    except _EncodingFailed as failure:
        # The dry run's signal: reread UTF-8 as Windows-1252, or report the line as a file error
        # (test_wrong_encoding_chosen_is_a_clear_error covers that message).
        assert failure.encoding in ("utf-8", "cp1252") and failure.line >= 1


@settings(max_examples=200, deadline=None)
@given(sample=st.binary(max_size=500))
def test_encoding_detection_always_names_an_encoding(sample):
    assert detect_encoding(sample) in ("utf-8", "utf-8-sig", "utf-16", "cp1252")


@settings(max_examples=200, deadline=None)
@given(sample=st.text(max_size=300))
def test_delimiter_sniffing_always_answers(sample):
    assert sniff_delimiter(sample) in (",", ";", "\t", "|")
