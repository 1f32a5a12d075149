"""Framing and headers against kafka-python 3.0.12 as an oracle: for every request and response
class and version it has, its framed bytes (size prefix + header + body) equal ours, our server
decodes its requests, and it decodes our responses (header versions per API version, including
ApiVersions responses always on header v0). The message bodies themselves are the oracle
tests' subject (test_oracle_*.py); here the messages are the defaults."""

import importlib
import inspect
import pkgutil

import kafka.protocol
from kafka.protocol.api_message import ApiMessage

from odradek.protocol.connection import ClientConnection, ServerConnection
from odradek.protocol.messages import registry


def kafka_python_classes(kind):
    classes = {}
    for module_info in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        if ".old" in module_info.name or "generate_stubs" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for cls in vars(module).values():
            if (inspect.isclass(cls) and issubclass(cls, ApiMessage) and cls is not ApiMessage
                    and getattr(cls, "type", None) == kind):
                classes[cls.API_KEY] = cls
    return [(cls, version) for _, cls in sorted(classes.items())
            for version in range(cls.min_version, cls.max_version + 1)]


REQUESTS = kafka_python_classes("request")
RESPONSES = kafka_python_classes("response")

# kafka-python's own defaults that differ from the schema's (a client choice, not the wire
# format's): its ListOffsetsRequest sets ReplicaId to -1 (a consumer), the schema default is 0.
OUR_REQUEST_FIELDS = {2: {"replica_id": -1}}


def test_kafka_python_has_the_expected_coverage():
    assert len(REQUESTS) > 250 and len(REQUESTS) == len(RESPONSES)


def test_request_frames_agree():
    for cls, version in REQUESTS:
        check_request_frame(cls, version)


def test_response_frames_agree():
    for cls, version in RESPONSES:
        check_response_frame(cls, version)


def check_request_frame(cls, version):
    theirs = cls[version]()
    theirs.with_header(correlation_id=0x1234 + version, client_id="kp-client")
    their_bytes = bytes(theirs.encode(header=True, framed=True))
    ours = registry.API_KEYS[cls.API_KEY].request_class(**OUR_REQUEST_FIELDS.get(cls.API_KEY, {}))
    assert ClientConnection().encode_request(ours, version, 0x1234 + version, client_id="kp-client") == their_bytes, (
        cls.__name__, version)
    server = ServerConnection()
    server.receive_data(their_bytes)
    request = server.next_request()
    assert (request.api_key, request.api_version, request.correlation_id, request.client_id) == (
        cls.API_KEY, version, 0x1234 + version, "kp-client")
    assert request.body == ours


def check_response_frame(cls, version):
    info = registry.API_KEYS[cls.API_KEY]
    server = ServerConnection()
    server.receive_data(ClientConnection().encode_request(info.request_class(), version, 77))
    our_bytes = server.encode_response(server.next_request(), info.response_class())
    theirs = cls[version]()
    theirs.with_header(correlation_id=77)
    assert our_bytes == bytes(theirs.encode(header=True, framed=True)), (cls.__name__, version)
    decoded = cls.decode(our_bytes, version=version, header=True, framed=True)
    assert decoded.header.correlation_id == 77
