"""JSON text for machines: what the store keeps in JSON columns, what durable-rules passes to
its C core, and the lines of a JSONL import, written and read by orjson.

The standard library's encoder was the largest single cost left in materialising a subject:
~30 calls a subject (durable-rules serialises every fact asserted and retracted and every
action's state; the store every obligation's provenance and change-feed entry), 18 of the
112 s of a profiled 100,000-subject import. orjson writes and reads the same JSON values
several times faster. The text is compact (no spaces after separators); nothing compares it
as text, only as decoded values. What orjson refuses (integers beyond 64 bits, NaN) falls
back to the standard library, so nothing that worked before fails now. Human-facing JSON (CLI
output, the decision log's canonical form) does not go through here.
"""
from __future__ import annotations

import json

import orjson

__all__ = ["dumps", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS  # as json.dumps: int/float/bool/None keys become strings


def dumps(value, **_ignored) -> str:
    """`value` as JSON text (UTF-8 characters as they are, like json.dumps(ensure_ascii=False)).
    Keyword arguments of json.dumps are accepted and ignored (durable-rules passes ensure_ascii)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError: e.g. an int beyond 64 bits
        return json.dumps(value, ensure_ascii=False)


def loads(text: str | bytes, **_ignored):
    """The value of JSON text. What orjson refuses and the standard library reads (NaN,
    integers beyond 64 bits) is read as before, and bad JSON raises the standard library's
    error, with its wording (import reports quote it)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
