"""A minimal blocking Kafka client over one socket, for odradek's own tools: the pytest plugin's
topic factory (api/pytest_plugin.py) creates topics through it, as any client would, since the
embedded broker has no call of its own for that.

One request at a time on one connection (``socket`` plus the sans-I/O
:class:`odradek.protocol.connection.ClientConnection`). The connection starts with ApiVersions,
as Kafka's clients do, and every request then goes at the newest version both the broker and
our codecs serve, so a broker advertising an older Kafka (``odradek.advertise.kafka.version``)
is spoken to in that release's versions. Plaintext only: no SASL handshake, no TLS.
"""

from __future__ import annotations

import socket
from typing import Any, Mapping

from odradek.protocol import error_codes
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest

CLIENT_SOFTWARE_NAME = "odradek-blocking-client"
DEFAULT_TIMEOUT = 30.0


class KafkaRequestError(RuntimeError):
    """The broker answered with an error code (``error`` is its :class:`ErrorCode`), or no
    version of the API is served by both sides."""

    def __init__(self, message: str, error: error_codes.ErrorCode | None = None):
        super().__init__(message)
        self.error = error


class BlockingClient:
    """``with BlockingClient(host, port) as client: client.create_topic("orders", 3)``."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT,
                 client_id: str = CLIENT_SOFTWARE_NAME):
        self.client_id = client_id
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._connection = ClientConnection()
        self._correlation_id = 0
        try:
            # api key -> (min, max) version the broker serves, from its ApiVersions answer
            self.versions = self._negotiate()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "BlockingClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close()

    def request(self, message):
        """Send ``message`` at the newest version both sides serve and return the response."""
        served = self.versions.get(message.API_KEY)
        low = max(message.MIN_VERSION, served[0]) if served else None
        high = min(message.MAX_VERSION, served[1]) if served else None
        if served is None or low > high:
            raise KafkaRequestError(f"the broker serves no version of {type(message).__name__} that this "
                                    f"client encodes (broker: {served}, client: {message.MIN_VERSION}-"
                                    f"{message.MAX_VERSION})")
        return self._exchange(message, high)

    def create_topic(self, name: str, partitions: int = 1, config: Mapping[str, Any] | None = None) -> None:
        """Create topic ``name`` with ``partitions`` partitions, replication factor 1 and the topic
        configs ``config`` (Kafka's names, values as strings); raises :class:`KafkaRequestError`
        with the broker's error (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...)."""
        Topic = CreateTopicsRequest.CreatableTopic
        configs = [Topic.CreatableTopicConfig(name=key, value=value) for key, value in (config or {}).items()]
        request = CreateTopicsRequest(topics=[Topic(name=name, num_partitions=partitions, replication_factor=1,
                                                    configs=configs)],
                                      timeout_ms=int(self._socket.gettimeout() * 1000))
        result = self.request(request).topics[0]
        if result.error_code != error_codes.NONE:
            error = error_codes.lookup(result.error_code)
            detail = result.error_message or error.message  # error_message: v1 on
            raise KafkaRequestError(f"creating topic {name!r}: {error.name}: {detail}", error)

    def _negotiate(self) -> dict[int, tuple[int, int]]:
        """api key -> (min, max) version the broker serves, from ApiVersions. A broker that does
        not serve our newest ApiVersions answers UNSUPPORTED_VERSION with the range it serves
        (KIP-511), and we ask again at its newest."""
        request = ApiVersionsRequest(client_software_name=CLIENT_SOFTWARE_NAME, client_software_version="1")
        response = self._exchange(request, ApiVersionsRequest.MAX_VERSION)
        if response.error_code == error_codes.UNSUPPORTED_VERSION:
            listed = {item.api_key: item.max_version for item in response.api_keys}
            version = min(listed.get(ApiVersionsRequest.API_KEY, 0), ApiVersionsRequest.MAX_VERSION)
            response = self._exchange(request, version)
        if response.error_code != error_codes.NONE:
            error = error_codes.lookup(response.error_code)
            raise KafkaRequestError(f"ApiVersions: {error.name}", error)
        return {item.api_key: (item.min_version, item.max_version) for item in response.api_keys}

    def _exchange(self, message, version: int):
        self._correlation_id += 1
        self._socket.sendall(self._connection.encode_request(message, version, self._correlation_id,
                                                             self.client_id))
        while True:
            received = self._connection.next_response()
            if received is not None:
                return received[1]  # ClientConnection checked the correlation id
            data = self._socket.recv(1 << 16)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self._connection.receive_data(data)
