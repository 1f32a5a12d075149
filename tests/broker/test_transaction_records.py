"""``__transaction_state`` records: what the coordinator writes reads back the same, at both
value versions, and bytes that are not such a record raise a ProtocolError (the load skips
them) instead of anything else."""

from __future__ import annotations

from hypothesis import given, strategies as st

from odradek.broker.transactions.metadata import TransactionMetadata, TxnState, decode_record, transaction_key, \
    transaction_value
from odradek.protocol.errors import ProtocolError

PARTITIONS = st.frozensets(st.tuples(st.text(min_size=1, max_size=5), st.integers(0, 100)), max_size=4)


@st.composite
def metadata(draw):
    state = draw(st.sampled_from(list(TxnState)))
    return TransactionMetadata(
        draw(st.text(min_size=1, max_size=8)), draw(st.integers(0, 2**62)), producer_epoch=draw(st.integers(0, 32767)),
        previous_producer_id=draw(st.integers(-1, 2**62)), next_producer_id=draw(st.integers(-1, 2**62)),
        timeout_ms=draw(st.integers(1, 2**31 - 1)), state=state,
        partitions=frozenset() if state == TxnState.EMPTY else draw(PARTITIONS),
        start_ms=draw(st.integers(-1, 2**45)), last_update_ms=draw(st.integers(-1, 2**45)),
        client_transaction_version=draw(st.integers(0, 2)))


@given(metadata(), st.integers(0, 2))
def test_records_read_back(original, transaction_version):
    kind, transactional_id, decoded = decode_record(transaction_key(original.transactional_id),
                                                    transaction_value(original, transaction_version))
    assert (kind, transactional_id) == ("txn", original.transactional_id)
    compared = ["producer_id", "producer_epoch", "timeout_ms", "state", "partitions", "start_ms", "last_update_ms"]
    if transaction_version >= 1:  # the flexible version carries these as tagged fields
        compared += ["previous_producer_id", "next_producer_id", "client_transaction_version"]
    for name in compared:
        assert getattr(decoded, name) == getattr(original, name), name


def test_a_tombstone_reads_as_none():
    assert decode_record(transaction_key("gone"), None) == ("txn", "gone", None)


@given(st.binary(max_size=40), st.one_of(st.none(), st.binary(max_size=80)))
def test_garbage_raises_a_protocol_error(key, value):
    try:
        decode_record(key, value)
    except ProtocolError:
        pass


@given(metadata(), st.integers(0, 1), st.data())
def test_truncated_values_raise_a_protocol_error(original, transaction_version, data):
    value = transaction_value(original, transaction_version)
    cut = data.draw(st.integers(0, len(value) - 1))
    try:
        decode_record(transaction_key(original.transactional_id), value[:cut])
    except ProtocolError:
        pass
