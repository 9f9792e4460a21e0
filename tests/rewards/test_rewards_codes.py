"""Voucher codes: unguessable, readable, typo-proof, unique."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from rewards import codes
from tests import factories


def test_a_code_carries_65_random_bits_in_crockford_base32_and_a_check_character():
    code = codes.generate_code()
    assert len(code) == codes.BODY_LENGTH + 1 == 14
    assert codes.BODY_LENGTH * 5 >= 64
    assert set(code) <= set(codes.ALPHABET)
    assert not set("ILOU") & set(codes.ALPHABET)
    assert code[-1] == codes.check_character(code[:-1])


def test_generated_codes_do_not_repeat_and_use_the_whole_alphabet():
    generated = [codes.generate_code() for _ in range(5000)]
    assert len(set(generated)) == len(generated)
    assert set("".join(code[:-1] for code in generated)) == set(codes.ALPHABET)


def test_a_code_is_printed_in_groups_of_four():
    code = "0123456789ABCD"
    assert codes.format_code(code) == "0123-4567-89AB-CD"


def test_what_people_type_is_normalised():
    code = codes.generate_code()
    printed = codes.format_code(code)
    assert codes.normalize(printed) == code
    assert codes.normalize(printed.lower()) == code
    assert codes.normalize(f"  {printed.replace('-', ' ')}  ") == code
    assert codes.normalize(printed.replace("-", "")) == code


def test_lookalike_letters_are_read_as_the_digits_they_resemble():
    body = "0000111100001"
    code = body + codes.check_character(body)
    typed = "OoOo-IiLl-0O0o-l" + code[-1]
    assert codes.normalize(typed) == code


def test_every_single_character_typo_is_caught_by_the_check_character():
    code = codes.generate_code()
    for position in range(len(code)):
        for replacement in codes.ALPHABET:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1:]
            assert codes.normalize(typo) is None, typo


def test_most_swapped_neighbours_are_caught():
    caught = total = 0
    for _ in range(200):
        code = codes.generate_code()
        for position in range(len(code) - 1):
            if code[position] == code[position + 1]:
                continue
            swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
            total += 1
            caught += codes.normalize(swapped) is None
    assert caught / total > 0.95  # Luhn mod N misses only the rare pair that maps onto itself


@pytest.mark.parametrize("typed", ["", "ABC", "0123-4567-89AB-CDEF", "0123-4567-89AB-C!", "Ü123-4567-89AB-CD"])
def test_what_cannot_be_a_code_normalises_to_nothing(typed):
    assert codes.normalize(typed) is None


def test_the_database_refuses_a_second_voucher_with_the_same_code(db):
    first = factories.RedemptionFactory()
    with pytest.raises(IntegrityError):
        factories.RedemptionFactory(code=first.code)
