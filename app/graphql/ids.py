"""Opaque global ids (`Node.id`) and pagination cursors.

An id is the URL-safe base64 of `Type:number`. Clients pass ids back as they are; a string
that is not one of ours is BAD_USER_INPUT, a well-formed id of another type names nothing.
"""

import base64
import binascii
import functools
import json

from app.graphql.errors import bad_user_input

NODE_TYPES = frozenset(
    {"Division", "User", "Queue", "Interaction", "Participant", "MonitoringSession"}
)
# Row ids are INTEGER columns: 32 bits on PostgreSQL, which refuses a larger parameter.
MAX_ROW_ID = 2**31 - 1
_MAX_INT64 = 2**63 - 1


class RowId(int):
    """In `decode_cursor`'s types: a row id, where `int` is any non-negative 64-bit number."""


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64encode(text: str) -> str:
    # base64.urlsafe_b64encode, without its two Python calls: every id of a list is encoded.
    return (
        binascii.b2a_base64(text.encode(), newline=False).translate(_URL_SAFE).rstrip(b"=").decode()
    )


def _b64decode(value: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def encode_id(type_name: str, pk: int) -> str:
    return _b64encode(f"{type_name}:{pk}")


# The ids of the GraphQL objects, remembered: a large list encodes one for each of its
# objects, the same ones request after request (55 ns a lookup, 264 to encode). Bounded by
# about the live objects of a busy floor; the audit export, which encodes every session
# ever, keeps to encode_id (its memory must not grow with the sessions).
node_id = functools.lru_cache(maxsize=16384)(encode_id)


def decode_node_id(value: str) -> tuple[str, int]:
    """(type name, primary key) of one of our ids; BAD_USER_INPUT for anything else."""
    text = _b64decode(value) if isinstance(value, str) and len(value) <= 64 else None
    type_name, _, number = (text or "").partition(":")
    if type_name in NODE_TYPES and number.isdigit() and encode_id(type_name, int(number)) == value:
        pk = int(number)
        if 0 < pk <= MAX_ROW_ID:
            return type_name, pk
    raise bad_user_input(f"{value!r} is not a valid id.")


def decode_id(value: str, expected_type: str) -> int | None:
    """The key of an id of `expected_type`; None for a valid id of another type."""
    type_name, pk = decode_node_id(value)
    return pk if type_name == expected_type else None


def encode_cursor(kind: str, *values: object) -> str:
    return _b64encode(json.dumps([kind, *values], separators=(",", ":")))


def _fits(value: object, expected: type) -> bool:
    if expected is RowId:
        return type(value) is int and 0 <= value <= MAX_ROW_ID
    if expected is int:
        return type(value) is int and 0 <= value <= _MAX_INT64
    if expected is str:
        # PostgreSQL text cannot hold NUL: no cursor of ours has one.
        return type(value) is str and "\x00" not in value
    return type(value) is expected


def decode_cursor(value: str, kind: str, *types: type) -> list:
    """The values of a cursor made by `encode_cursor(kind, ...)`, of these types;
    BAD_USER_INPUT for anything else (a forged cursor must never reach SQL)."""
    text = _b64decode(value) if isinstance(value, str) and len(value) <= 512 else None
    try:
        decoded = json.loads(text) if text else None
    except ValueError:
        decoded = None
    if (
        not isinstance(decoded, list)
        or len(decoded) != len(types) + 1
        or decoded[0] != kind
        or not all(_fits(v, t) for v, t in zip(decoded[1:], types, strict=True))
    ):
        raise bad_user_input(f"{value!r} is not a valid cursor.")
    return decoded[1:]
