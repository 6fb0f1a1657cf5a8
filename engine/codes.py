"""Subject identifiers: the unified social credit code (GB 32100-2015) and the citizen ID
number (GB 11643-1999).

Both carry a check character, so a mistyped code is caught at the door instead of becoming
a subject nobody can find. The functions here say whether a code is well formed and, for
generators and tests, compute the check character.
"""
from __future__ import annotations

import re
from datetime import date

__all__ = [
    "USCC_ALPHABET",
    "uscc_check_char",
    "is_valid_uscc",
    "citizen_id_check_char",
    "is_valid_citizen_id",
    "code_kind",
    "mask_citizen_id",
]

# 0-9 and A-Z without I, O, Z, S, V: 31 characters with values 0..30.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-HJ-NP-RTUW-Y]{10}$")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 are given."""
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True when `code` has the GB 32100 shape and a correct check character."""
    if not isinstance(code, str) or not _USCC_SHAPE.match(code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def citizen_id_check_char(first17: str) -> str:
    """The 18th character of a citizen ID number whose first 17 digits are given."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def is_valid_citizen_id(code: str) -> bool:
    """True when `code` is an 18-character citizen ID with a real birth date and check."""
    if not isinstance(code, str) or not _ID_SHAPE.match(code):
        return False
    try:
        date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return False
    return citizen_id_check_char(code[:17]) == code[17]


def code_kind(code: str) -> str | None:
    """Which subject kind a valid code implies: 'natural_person', 'individual_business',
    'legal_person', 'other_org', or None for an invalid code."""
    if is_valid_citizen_id(code):
        return "natural_person"
    if not is_valid_uscc(code):
        return None
    if code[0] == "9":
        return "individual_business" if code[1] == "2" else "legal_person"
    return "other_org"


def mask_citizen_id(code: str) -> str:
    """A citizen ID shown to someone not entitled to it: region and check kept, birth date hidden."""
    if len(code) == 18 and is_valid_citizen_id(code):
        return code[:6] + "********" + code[14:]
    return code
