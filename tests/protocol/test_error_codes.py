"""The error-code table against kafka-python 3.0.12's ``kafka.errors`` as an oracle.

Every code kafka-python knows must agree on code and retriable flag, and on the name except
where kafka-python's name is its own (listed below, each checked against Kafka's Errors.java).
Codes kafka-python lacks come from Kafka's source and are listed too, so that a newer
kafka-python learning them turns this test into a check of them.
"""

import inspect
import re

import kafka.errors

from odradek.protocol import error_codes, errors

# kafka-python's own names for codes whose Kafka enum name differs (Kafka's name first).
KAFKA_PYTHON_NAMES = {
    -1: ("UNKNOWN_SERVER_ERROR", "UNKNOWN"),
    0: ("NONE", "NO_ERROR"),
    6: ("NOT_LEADER_OR_FOLLOWER", "NOT_LEADER_FOR_PARTITION"),  # renamed in Kafka 2.7 (KIP-392)
    10: ("MESSAGE_TOO_LARGE", "MESSAGE_SIZE_TOO_LARGE"),
    17: ("INVALID_TOPIC_EXCEPTION", "INVALID_TOPIC"),
    39: ("INVALID_REPLICA_ASSIGNMENT", "INVALID_REPLICATION_ASSIGNMENT"),
}
# Codes whose retriable flag kafka-python gets wrong: CorruptRecordException extends
# RetriableException in Kafka (clients retry a produce whose CRC failed in transit).
KAFKA_PYTHON_RETRIABLE_WRONG = {2}
# Codes newer than kafka-python 3.0.12 (Kafka 4.0 to 4.4).
NOT_IN_KAFKA_PYTHON = {128, 129, 130, 131, 132, 133, 134, 135, 136}


def kafka_python_errors():
    by_code = {}
    for cls in vars(kafka.errors).values():
        if inspect.isclass(cls) and issubclass(cls, kafka.errors.BrokerResponseError) and cls.errno is not None:
            by_code.setdefault(cls.errno, set()).add((cls.message, cls.retriable))
    return by_code


def test_table_is_complete_and_contiguous():
    assert sorted(error_codes.ERRORS) == list(range(-1, 137))
    assert len(error_codes.BY_NAME) == len(error_codes.ERRORS)  # names are unique


def test_entries_are_consistent():
    for code, entry in error_codes.ERRORS.items():
        assert entry.code == code
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", entry.name)
        assert getattr(error_codes, entry.name) == code
        assert error_codes.BY_NAME[entry.name] is entry
        assert isinstance(entry.retriable, bool)
        if code == 0:
            assert entry.message is None and not entry.retriable
        else:
            assert entry.message and entry.message == entry.message.strip()


def test_agrees_with_kafka_python_on_every_code_it_knows():
    oracle = kafka_python_errors()
    assert set(oracle) == set(error_codes.ERRORS) - NOT_IN_KAFKA_PYTHON
    for code, variants in oracle.items():
        ours = error_codes.ERRORS[code]
        for name, retriable in variants:
            if code in KAFKA_PYTHON_NAMES:
                assert (ours.name, name) == KAFKA_PYTHON_NAMES[code]
            else:
                assert ours.name == name, code
            if code in KAFKA_PYTHON_RETRIABLE_WRONG:
                assert ours.retriable and not retriable
            else:
                assert ours.retriable == retriable, (code, ours.name)


def test_known_entries_from_kafka_source():
    # Spot checks against Errors.java and the exception classes' parents.
    assert error_codes.UNSUPPORTED_VERSION == 35
    assert error_codes.INVALID_REQUEST == 42
    assert error_codes.ERRORS[error_codes.NOT_LEADER_OR_FOLLOWER].retriable  # via InvalidMetadataException
    assert error_codes.ERRORS[error_codes.UNKNOWN_TOPIC_OR_PARTITION].retriable
    assert not error_codes.ERRORS[error_codes.TOPIC_AUTHORIZATION_FAILED].retriable
    assert error_codes.INVALID_REGULAR_EXPRESSION == 128
    assert error_codes.REBOOTSTRAP_REQUIRED == 129
    assert error_codes.SHARE_SESSION_LIMIT_REACHED == 133
    assert error_codes.ERRORS[133].retriable
    assert error_codes.GROUP_DELETION_FAILED == 134 and not error_codes.ERRORS[134].retriable
    assert error_codes.CONTROLLER_ID_NOT_REGISTERED == 136
    assert error_codes.BY_NAME["UNSUPPORTED_VERSION"].message == "The version of API is not supported."


def test_lookup_of_unknown_code_is_unknown_server_error():
    assert error_codes.lookup(35).name == "UNSUPPORTED_VERSION"
    assert error_codes.lookup(9999).name == "UNKNOWN_SERVER_ERROR"


def test_protocol_errors_use_codes_of_the_table():
    # errors.py keeps its own constants to stay import-light; they must match the table.
    for name in ("UNKNOWN_SERVER_ERROR", "CORRUPT_MESSAGE", "MESSAGE_TOO_LARGE", "UNSUPPORTED_VERSION",
                 "INVALID_REQUEST", "UNSUPPORTED_COMPRESSION_TYPE", "INVALID_RECORD"):
        assert getattr(errors, name) == getattr(error_codes, name)
    for cls in (errors.ProtocolError, errors.DecodeError, errors.FrameTooLarge, errors.UnsupportedVersion,
                errors.UnknownApiKey, errors.CorruptRecord, errors.UnsupportedCompression,
                errors.DecompressionLimitExceeded):
        assert cls.error_code in error_codes.ERRORS
