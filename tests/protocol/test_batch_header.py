import struct

import crc32c
import pytest

from odradek.protocol.errors import CorruptRecord, DecodeError
from odradek.protocol.records.header import (
    BATCH_HEADER_SIZE,
    batch_crc_matches,
    patch_base_offset,
    patch_max_timestamp,
    read_batch_header,
)


def make_batch(records: bytes = b"\x00" * 10, count: int = 1, attributes: int = 0) -> bytearray:
    body = struct.pack(">hiqqqhii", attributes, count - 1, 1000, 2000, 7, 3, 0, count) + records
    crc = crc32c.crc32c(body)
    head = struct.pack(">qiibI", 0, len(body) + 9, 5, 2, crc)
    return bytearray(head + body)


def test_header_fields_and_patch_keep_records_untouched():
    batch = make_batch(records=b"abcdefghij", count=3)
    header = read_batch_header(batch)
    assert (header.base_offset, header.magic, header.records_count) == (0, 2, 3)
    assert header.size_in_bytes == len(batch) and header.last_offset_delta == 2
    assert header.producer_id == 7 and header.producer_epoch == 3
    assert batch_crc_matches(batch, 0, header)
    patch_base_offset(batch, 0, 12345)
    patched = read_batch_header(batch)
    assert patched.base_offset == 12345 and patched.next_offset == 12348
    assert batch_crc_matches(batch, 0, patched)
    assert batch[BATCH_HEADER_SIZE:] == b"abcdefghij"


def test_log_append_time_patch_recomputes_crc():
    batch = make_batch()
    header = read_batch_header(batch)
    patch_max_timestamp(batch, 0, header.size_in_bytes, 99999, header.attributes | 0x08)
    patched = read_batch_header(batch)
    assert patched.max_timestamp == 99999 and patched.is_log_append_time
    assert batch_crc_matches(batch, 0, patched)


def test_flipped_bit_fails_crc():
    batch = make_batch()
    batch[-1] ^= 0x01
    assert not batch_crc_matches(batch, 0, read_batch_header(batch))


def test_truncated_header_and_wrong_magic():
    batch = make_batch()
    with pytest.raises(DecodeError):
        read_batch_header(batch[:60])
    batch[16] = 1
    with pytest.raises(CorruptRecord):
        read_batch_header(batch)
