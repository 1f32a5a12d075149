"""The exceptions of the protocol layer.

Two tiers, as in Kafka:

* A Kafka error code inside a response is data (see ``odradek.protocol.error_codes``), not an
  exception of this module.
* Input the protocol layer cannot accept raises a :class:`ProtocolError`. Every such error carries
  ``error_code``: the Kafka error code a broker answers with when it can still answer (for
  example ``UNSUPPORTED_VERSION`` for a known API at a version we do not speak, or
  ``CORRUPT_MESSAGE`` for a record batch whose CRC does not match). ``closes_connection`` says
  whether Kafka closes the connection instead of answering (a frame it cannot even parse the
  header of, or one over ``socket.request.max.bytes``).

Callers catch :class:`ProtocolError` and nothing else from the decoders: every decoder either
returns a value or raises a subclass of it (fuzz tests hold it to that).
"""

from __future__ import annotations

# Kafka error codes used as defaults below; the full table lives in error_codes.
UNKNOWN_SERVER_ERROR = -1
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87


class ProtocolError(Exception):
    """Input the protocol layer refuses.

    ``error_code`` is the Kafka error code to answer with; ``closes_connection`` is True when
    Kafka does not answer such input but closes the connection.
    """

    error_code: int = INVALID_REQUEST
    closes_connection: bool = False
    # Context the connection codec fills in when it knows it (None otherwise): the request's
    # API key, version and correlation id, the decoded request header when the header parsed but
    # the rest did not, and, where Kafka answers instead of closing, the request to answer
    # (see odradek.protocol.connection).
    api_key: int | None = None
    api_version: int | None = None
    correlation_id: int | None = None
    header = None
    request = None

    def __init__(self, message: str, *, error_code: int | None = None, closes_connection: bool | None = None):
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code
        if closes_connection is not None:
            self.closes_connection = closes_connection


class DecodeError(ProtocolError):
    """Bytes that do not decode: truncated, a length past the end, a bad varint, a negative or
    impossible size. Kafka cannot trust anything after such an error, so it closes."""

    error_code = INVALID_REQUEST
    closes_connection = True


class FrameTooLarge(ProtocolError):
    """A size prefix above the configured maximum (Kafka's ``socket.request.max.bytes``);
    detected from the 4-byte prefix alone, before anything is allocated."""

    error_code = INVALID_REQUEST
    closes_connection = True


class UnsupportedVersion(ProtocolError):
    """A known API key at a version outside the supported range; answered, not closed."""

    error_code = UNSUPPORTED_VERSION
    closes_connection = False


class UnknownApiKey(ProtocolError):
    """An API key that no schema defines. Kafka closes the connection for these."""

    error_code = INVALID_REQUEST
    closes_connection = True


class CorruptRecord(ProtocolError):
    """A record batch or message set that fails its CRC or structural checks."""

    error_code = CORRUPT_MESSAGE
    closes_connection = False


class UnsupportedCompression(ProtocolError):
    """A compression codec id that Kafka does not define (or the message format cannot carry)."""

    error_code = UNSUPPORTED_COMPRESSION_TYPE
    closes_connection = False


class DecompressionLimitExceeded(ProtocolError):
    """Compressed data that inflates past the configured limit: refused before it is
    materialised."""

    error_code = CORRUPT_MESSAGE
    closes_connection = False
