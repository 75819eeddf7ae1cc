"""Parse JSON a caller sent: standard JSON only, with numbers of a sane length."""

import json

# Longer than any bound an argument has (seeds go up to 2**63 - 1, 19 digits), far below
# the interpreter's own limit on turning digits into an int.
MAX_NUMBER_DIGITS = 100


class StrictJSONError(ValueError):
    """A document that is not standard JSON, or holds a number too long to be an argument."""


def loads(text: str):
    """Parse `text`, refusing NaN, Infinity and numbers over MAX_NUMBER_DIGITS digits."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_bounded_float)


def _reject_constant(name: str):
    """Refuse NaN and Infinity, which JSON does not have."""
    raise StrictJSONError(f"{name} is not valid JSON")


def _bounded_int(digits: str) -> int:
    """Turn digits into an int, refusing absurd lengths with a clear message."""
    _check_length(digits)
    return int(digits)


def _bounded_float(digits: str) -> float:
    """Turn a decimal number into a float, refusing absurd lengths with a clear message."""
    _check_length(digits)
    return float(digits)


def _check_length(digits: str) -> None:
    """Refuse a number written with more digits than any argument could need."""
    if len(digits) > MAX_NUMBER_DIGITS:
        raise StrictJSONError(f"a number has {len(digits)} digits; at most {MAX_NUMBER_DIGITS} are accepted")
