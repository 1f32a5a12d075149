"""Every generated class, at every version, round-trips its default-constructed value, and the
registry agrees with the generated classes (key, version range, flexible versions)."""

import importlib
import pkgutil

import pytest

from odradek.protocol.errors import UnknownApiKey, UnsupportedVersion
from odradek.protocol.messages import records as record_package
from odradek.protocol.messages import registry
from odradek.protocol.messages.headers import RequestHeader, ResponseHeader


def _api_cases():
    for key, info in sorted(registry.API_KEYS.items()):
        for kind in ("request", "response"):
            yield pytest.param(key, kind, id=f"{info.name}-{kind}")


def _record_classes():
    for module_info in pkgutil.iter_modules(record_package.__path__):
        module = importlib.import_module(f"{record_package.__name__}.{module_info.name}")
        for name in module.__all__:
            cls = getattr(module, name)
            if "_ENCODERS" in cls.__dict__:
                yield cls


RECORD_CLASSES = sorted(_record_classes(), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("api_key, kind", list(_api_cases()))
def test_default_message_round_trips_at_every_version(api_key, kind):
    info = registry.API_KEYS[api_key]
    cls = info.request_class if kind == "request" else info.response_class
    assert cls.API_KEY == api_key
    assert (cls.MIN_VERSION, cls.MAX_VERSION) == (info.min_version, info.max_version)
    assert cls.FLEXIBLE_MIN_VERSION == info.flexible_min_version
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        message = cls()
        raw = message.encode(version)
        decoded, end = cls.decode_from(raw, 0, version)
        assert end == len(raw)
        assert decoded == message
        assert decoded.encode(version) == raw


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_default_record_round_trips_at_every_version(cls):
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        raw = cls().encode(version)
        assert cls.decode(raw, version) == cls()
        assert cls.decode(raw, version).encode(version) == raw


def test_every_api_key_of_kafka_4_4_is_registered():
    assert sorted(registry.API_KEYS) == list(range(95))  # 0 Produce .. 94 UnregisterController
    assert registry.API_KEYS[88].name == "StreamsGroupHeartbeat"
    assert registry.API_KEYS[0].name == "Produce"
    assert registry.API_KEYS[74].name == "ListConfigResources"
    assert registry.API_KEYS[18].request_class.__name__ == "ApiVersionsRequest"


def test_header_versions_follow_kafka():
    assert registry.request_header_version(7, 0) == 0      # ControlledShutdown v0
    assert registry.request_header_version(7, 1) == 1
    assert registry.request_header_version(0, 8) == 1      # Produce v8 is not flexible
    assert registry.request_header_version(0, 9) == 2
    assert registry.response_header_version(0, 9) == 1
    assert registry.response_header_version(0, 8) == 0
    assert registry.response_header_version(18, 3) == 0    # ApiVersions: always v0
    assert registry.request_header_version(18, 3) == 2
    # A version beyond the range still gets a header version (the broker must read it).
    assert registry.request_header_version(18, 99) == 2
    with pytest.raises(UnknownApiKey):
        registry.request_header_version(999, 0)


def test_headers_round_trip():
    header = RequestHeader(request_api_key=3, request_api_version=12, correlation_id=7, client_id="c")
    for version in (1, 2):
        raw = header.encode(version)
        assert RequestHeader.decode(raw, version) == header
    # ClientId keeps its int16 length even in the flexible header v2.
    assert header.encode(2) == b"\x00\x03\x00\x0c\x00\x00\x00\x07\x00\x01c\x00"
    assert ResponseHeader(correlation_id=5).encode(1) == b"\x00\x00\x00\x05\x00"


def test_version_outside_range_is_unsupported():
    cls = registry.API_KEYS[0].request_class
    with pytest.raises(UnsupportedVersion):
        cls().encode(cls.MAX_VERSION + 1)
    with pytest.raises(UnsupportedVersion):
        cls.decode(b"", -1)
