"""The records of an event file (TFRecord framing), read in chunks from a byte offset on and checked, so that a
file that grows is read from where the last read stopped.

Each record is: uint64 length, uint32 masked CRC-32C of those 8 bytes, the data, uint32 masked CRC-32C of the
data (little-endian). A chunk's records are framed one after another, then all their checksums are computed
at once (crc32c.py); reading stops at the first record whose checksum fails, that the file ends inside (a
writer mid-record, or a truncated file), or that ends past the byte limit.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np

from core.runs.crc32c import masked_crc32c

CHUNK = 4 * 2**20  # bytes read at a time (a longer record is read whole)
_HEADER, _FOOTER = 12, 4
_LENGTH = struct.Struct("<Q")

Stop = Literal["truncated", "corrupt", "limit"]


@dataclass
class Cursor:
    """Where reading one event file stands: the offset of the first record not yet read, and why the last read
    stopped before the end of the file (None when it reached the end)."""

    offset: int = 0
    stop: Stop | None = None


def _frame(buf: bytes, base: int, limit: int) -> tuple[list[int], list[int], int]:
    """Starts and lengths of the whole records at the front of `buf` (which starts at file offset `base`) that
    end by `limit`, and the offset in `buf` after them."""
    starts, lengths = [], []
    pos, size, end = 0, len(buf), limit - base
    while pos + _HEADER <= size:
        (length,) = _LENGTH.unpack_from(buf, pos)
        after = pos + _HEADER + length + _FOOTER
        if after > size or after > end:
            break
        starts.append(pos)
        lengths.append(length)
        pos = after
    return starts, lengths, pos


def _first_bad(data: np.ndarray, starts: list[int], lengths: list[int]) -> int:
    """The index of the first record whose length or data checksum fails (len(starts) when none does)."""
    if not starts:
        return 0
    begin = np.asarray(starts, dtype=np.int64)
    size = np.asarray(lengths, dtype=np.int64)
    stored = data[(begin[:, None] + np.arange(8, 12)).ravel()].view("<u4")
    header_ok = masked_crc32c(data, begin, np.full(len(begin), 8)) == stored
    bad = np.flatnonzero(~header_ok)
    count = int(bad[0]) if len(bad) else len(starts)  # a bad length makes every later frame garbage
    begin, size = begin[:count], size[:count]
    footer = (begin + _HEADER + size)[:, None] + np.arange(4)
    data_ok = masked_crc32c(data, begin + _HEADER, size) == data[footer.ravel()].view("<u4")
    bad = np.flatnonzero(~data_ok)
    return int(bad[0]) if len(bad) else count


def _header_ok(head: bytes) -> bool:
    data = np.frombuffer(head, dtype=np.uint8)
    return int(masked_crc32c(data, [0], [8])[0]) == int.from_bytes(head[8:12], "little")


def records(f: BinaryIO, cursor: Cursor, limit: int) -> Iterator[bytes]:
    """The data of each checked record of the open event file `f` from `cursor.offset` on that ends within the
    first `limit` bytes of the file (opened by the caller, checked: core/paths.open_inside). The cursor moves
    past a record when the next one is asked for, so a caller that stops early (a record it cannot use) leaves
    it at that record; when the records run out, `cursor.stop` says why."""
    cursor.stop = None
    size = os.fstat(f.fileno()).st_size
    while cursor.offset < size:
        f.seek(cursor.offset)
        buf = f.read(min(CHUNK, size - cursor.offset))
        starts, lengths, _ = _frame(buf, cursor.offset, limit)
        if not starts:  # the next record does not fit this chunk, the file or the limit
            if len(buf) < _HEADER:
                cursor.stop = "truncated"
                return
            if not _header_ok(buf[:_HEADER]):
                cursor.stop = "corrupt"
                return
            (length,) = _LENGTH.unpack_from(buf, 0)
            after = cursor.offset + _HEADER + length + _FOOTER
            if after > min(size, limit):
                cursor.stop = "limit" if limit < after and limit < size else "truncated"
                return
            buf += f.read(after - cursor.offset - len(buf))
            starts, lengths = [0], [length]
        data = np.frombuffer(buf, dtype=np.uint8)
        good = _first_bad(data, starts, lengths)
        for start, length in zip(starts[:good], lengths[:good], strict=True):
            yield buf[start + _HEADER : start + _HEADER + length]
            cursor.offset += _HEADER + length + _FOOTER
        if good < len(starts):
            cursor.stop = "corrupt"
            return
