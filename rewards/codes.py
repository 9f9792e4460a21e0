"""Voucher codes: 65 random bits from `secrets`, in Crockford's base-32 alphabet (no I, L, O, U:
nothing to misread), with a Luhn mod 32 check character, shown in groups of four.

A till operator can type it; a typo is caught by the check character before any lookup; and
at 2^65 possibilities, guessing one is hopeless even without the rate limit.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {char: index for index, char in enumerate(ALPHABET)}
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
BODY_LENGTH = 13  # 13 × 5 = 65 bits


def generate_code() -> str:
    value = secrets.randbits(BODY_LENGTH * 5)
    body = "".join(ALPHABET[(value >> (5 * shift)) & 31] for shift in range(BODY_LENGTH))
    return body + check_character(body)


def check_character(body: str) -> str:
    """Luhn mod N (N = 32): catches every single-character error and most transpositions."""
    factor, total = 2, 0
    for char in reversed(body):
        addend = factor * _INDEX[char]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def normalize(raw: str) -> str | None:
    """The code as stored, from what someone typed; None if it cannot be a valid code."""
    code = "".join(raw.upper().split()).replace("-", "").translate(_LOOKALIKES)
    if len(code) != BODY_LENGTH + 1 or any(char not in _INDEX for char in code):
        return None
    return code if check_character(code[:-1]) == code[-1] else None


def format_code(code: str) -> str:
    return "-".join(code[index:index + 4] for index in range(0, len(code), 4))
