"""Record batches (magic 2), legacy message sets (magic 0 and 1) and their compression.

Sans-I/O: bytes in, values or bytes out. Every decoder raises only
:class:`~odradek.protocol.errors.ProtocolError` subclasses on bad input: ``CorruptRecord``
(CORRUPT_MESSAGE, or INVALID_RECORD where Kafka answers that), ``UnsupportedCompression``
(UNSUPPORTED_COMPRESSION_TYPE), ``DecompressionLimitExceeded`` (CORRUPT_MESSAGE). Each error
carries ``error_code``, the Kafka error code to answer the produce/fetch with.

The stable public functions (other layers use these; change them only compatibly):

:mod:`.header` -- the 61-byte v2 batch header, without touching the records (hot path)
    ``read_batch_header(buf, pos) -> RecordBatchHeader``, ``read_magic(buf, pos)``,
    ``batch_crc_matches(buf, pos, header)``, ``compute_batch_crc``, ``patch_base_offset``,
    ``patch_partition_leader_epoch``, ``patch_max_timestamp`` (LogAppendTime + CRC), the offsets
    and attribute masks.

:mod:`.batch` -- v2 batches
    ``decode_batch(buf, pos=0, *, max_decompressed_size) -> RecordBatch``: CRC, sizes, record
    count, every record field checked; decompresses with the bound.
    ``iter_batches(buf, *, max_decompressed_size=..., allow_incomplete=True)``: concatenated
    batches; a trailing partial batch is yielded last as ``IncompleteBatch(position, available,
    size)`` (fetch responses may end so), or raises CorruptRecord with ``allow_incomplete=False``
    (produce requests).
    ``iter_batch_headers(buf, *, allow_incomplete=True)``: ``(position, RecordBatchHeader |
    IncompleteBatch)`` without decoding records or checking CRCs.
    ``validate_produce_records(buf, *, max_decompressed_size) -> RecordBatch``: the single v2
    batch of one partition's produce records (none or several: INVALID_RECORD; a trailing
    partial batch is ignored, as Kafka trims it), then ``validate_batch_for_append``.
    ``validate_batch_for_append(buf, pos=0, *, max_decompressed_size) -> RecordBatch``: decode
    plus Kafka ``LogValidator.validateBatch``'s checks for a client batch (count > 0 and ==
    last_offset_delta + 1, no control batch, producer id => base sequence >= 0); pure, raises
    CorruptRecord with INVALID_RECORD. Timestamp and compacted-key checks need configuration
    and are the caller's.
    ``assigns_in_place(batch) -> bool``: False when Kafka would rebuild a compressed batch
    (inner offsets not 0..n-1) instead of patching its header.
    ``build_batch(records, *, base_offset, base_timestamp, compression, timestamp_type,
    producer_id, producer_epoch, base_sequence, transactional, control, partition_leader_epoch,
    delete_horizon, ...) -> bytes``; ``Record``, ``RecordBatch`` (``offset_of``,
    ``timestamp_of``, ``delete_horizon``, ...).
    Control records: ``build_end_txn_marker_batch(commit, *, producer_id, producer_epoch,
    coordinator_epoch, base_offset, timestamp, partition_leader_epoch)``,
    ``parse_control_record(record) -> ControlRecord``, ``CONTROL_ABORT``/``CONTROL_COMMIT``/...

:mod:`.legacy` -- magic 0/1 message sets
    ``decode_message_set(buf, *, max_decompressed_size, allow_incomplete=False) ->
    list[LegacyRecord]`` (wrappers expanded, absolute offsets), ``iter_legacy_entries`` (outer
    entries, CRC-checked), ``expand_entry``, ``build_message_set(records, *, magic,
    compression, timestamp_type, log_append_time)``, ``encode_message``.

:mod:`.convert` -- between formats
    ``up_convert(buf, *, base_offset, max_decompressed_size, compression=None, timestamp_type,
    log_append_time, partition_leader_epoch) -> bytes``: a legacy message set as ONE v2 batch
    with offsets assigned from ``base_offset`` (Kafka's append path for old producers).
    ``down_convert(buf, *, to_magic, max_decompressed_size, first_offset=0) -> bytes``: log
    bytes (any magics) as a magic-0/1 message set for fetch < v4.
    ``iter_entry_spans(buf)``: ``(position, size, magic)`` over mixed-magic data.

:mod:`.compression` -- codecs
    ``compress(codec, data, level=None, *, magic=2)``, ``decompress(codec, data, *, max_size,
    magic=2)``; ``NONE GZIP SNAPPY LZ4 ZSTD`` = 0..4, ``CODEC_NAMES``/``CODEC_IDS``.
"""
