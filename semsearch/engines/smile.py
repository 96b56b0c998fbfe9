"""Smile, Jackson's binary JSON, for bulk bodies: vectors travel as raw float32 instead of decimal text.

OpenSearch and Elasticsearch accept ``Content-Type: application/smile`` on ``_bulk``, each action
and each source a Smile document ended by the 0xFF separator. A float32 costs 6 bytes here (a
type byte and 32 bits in five 7-bit bytes) and the node reads it without parsing decimals, so a
384-d vector is 2.3 KB of bits instead of ~4 KB of text, and arrives exactly as computed.

Only what JSON documents hold is encoded, with no back-references (the header says so): objects,
arrays, strings, booleans, null, integers up to 64 bits, doubles, and numpy float32 vectors.
Anything else raises :class:`SmileUnsupported`, and the caller sends that request as JSON.
Format: https://github.com/FasterXML/smile-format-specification (version 1.0).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

CONTENT_TYPE = "application/smile"
# ":)\n", then version 0 with no shared names, no shared values and no raw binary.
HEADER = b":)\n\x00"
END_OF_DOCUMENT = b"\xff"  # the bulk API's separator between Smile documents

_NULL, _FALSE, _TRUE, _EMPTY_STRING = 0x21, 0x22, 0x23, 0x20
_INT32, _INT64, _FLOAT32, _FLOAT64 = 0x24, 0x25, 0x28, 0x29
_START_ARRAY, _END_ARRAY, _START_OBJECT, _END_OBJECT = 0xF8, 0xF9, 0xFA, 0xFB
_END_OF_STRING = 0xFC
_LONG_KEY = 0x34


class SmileUnsupported(ValueError):
    """A value this encoder does not write (an integer beyond 64 bits, a non-JSON type)."""


def dumps(document: Mapping[str, Any]) -> bytes:
    """One Smile document (header, object, 0xFF separator) as the bulk API reads it (pure)."""
    out = bytearray(HEADER)
    _object(document, out)
    out += END_OF_DOCUMENT
    return bytes(out)


def float32_values(vector: np.ndarray) -> bytes:
    """The Smile tokens of a float32 vector's components, without the array markers (pure, vectorised)."""
    bits = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1).view(np.uint32)
    tokens = np.empty((bits.size, 6), dtype=np.uint8)
    tokens[:, 0] = _FLOAT32
    # 32 bits right-aligned in five 7-bit bytes, most significant first: 4 + 7 + 7 + 7 + 7.
    tokens[:, 1] = bits >> 28
    tokens[:, 2] = (bits >> 21) & 0x7F
    tokens[:, 3] = (bits >> 14) & 0x7F
    tokens[:, 4] = (bits >> 7) & 0x7F
    tokens[:, 5] = bits & 0x7F
    return tokens.tobytes()


def _vint(value: int) -> bytes:
    """An unsigned VInt: 7-bit bytes, most significant first; the last has 6 data bits and 0x80 set."""
    out = [0x80 | (value & 0x3F)]
    value >>= 6
    while value:
        out.append(value & 0x7F)
        value >>= 7
    return bytes(reversed(out))


def _zigzag(value: int, bits: int) -> int:
    return ((value << 1) ^ (value >> (bits - 1))) & ((1 << bits) - 1)


def _key(name: str, out: bytearray) -> None:
    if not isinstance(name, str):
        raise SmileUnsupported(f"object key {name!r} is not a string")
    data = name.encode("utf-8")
    size = len(data)
    if size == 0:
        out.append(_EMPTY_STRING)
    elif data.isascii() and size <= 64:
        out.append(0x80 + size - 1)  # short ASCII name
        out += data
    elif not data.isascii() and size <= 57:
        out.append(0xC0 + size - 2)  # short Unicode name (2 bytes at least: one non-ASCII character)
        out += data
    else:
        out.append(_LONG_KEY)
        out += data
        out.append(_END_OF_STRING)


# Length-prefixed string classes, (token of the shortest length, shortest, longest) in bytes: tiny and
# short, for ASCII and for other UTF-8; longer strings take the long marker and end with 0xFC.
_ASCII_CLASSES, _ASCII_LONG = ((0x40, 1, 32), (0x60, 33, 64)), 0xE0
_UNICODE_CLASSES, _UNICODE_LONG = ((0x80, 2, 33), (0xA0, 34, 65)), 0xE4


def _string(text: str, out: bytearray) -> None:
    data = text.encode("utf-8")
    if not data:
        out.append(_EMPTY_STRING)
        return
    classes, long_marker = (_ASCII_CLASSES, _ASCII_LONG) if data.isascii() else (_UNICODE_CLASSES, _UNICODE_LONG)
    for token, shortest, longest in classes:
        if len(data) <= longest:
            out.append(token + len(data) - shortest)
            out += data
            return
    out.append(long_marker)
    out += data
    out.append(_END_OF_STRING)


def _integer(value: int, out: bytearray) -> None:
    if -16 <= value <= 15:
        out.append(0xC0 + _zigzag(value, 32))  # small integer, one byte
    elif -(1 << 31) <= value < (1 << 31):
        out.append(_INT32)
        out += _vint(_zigzag(value, 32))
    elif -(1 << 63) <= value < (1 << 63):
        out.append(_INT64)
        out += _vint(_zigzag(value, 64))
    else:
        raise SmileUnsupported(f"integer {value} is beyond 64 bits")


def _double(value: float, out: bytearray) -> None:
    bits = struct.unpack(">Q", struct.pack(">d", value))[0]
    out.append(_FLOAT64)
    out += bytes((bits >> shift) & 0x7F for shift in range(63, -1, -7))  # 1 + 9 × 7 bits


def _object(mapping: Mapping[str, Any], out: bytearray) -> None:
    out.append(_START_OBJECT)
    for name, item in mapping.items():
        _key(name, out)
        _value(item, out)
    out.append(_END_OBJECT)


def _value(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(_NULL)
    elif value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, int):
        _integer(value, out)
    elif isinstance(value, float):
        _double(value, out)
    elif isinstance(value, Mapping):
        _object(value, out)
    elif isinstance(value, (list, tuple)):
        out.append(_START_ARRAY)
        for item in value:
            _value(item, out)
        out.append(_END_ARRAY)
    elif isinstance(value, np.ndarray) and value.dtype == np.float32 and value.ndim == 1:
        out.append(_START_ARRAY)
        out += float32_values(value)
        out.append(_END_ARRAY)
    else:
        raise SmileUnsupported(f"cannot encode a {type(value).__name__} in Smile")
