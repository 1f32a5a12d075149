"""The error response each API gets when its handler fails (odradek.broker.error_responses,
Kafka's ``AbstractRequest.getErrorResponse``).

* For every registered API at every version served, a drawn request (any field values the
  schema allows) gets an error response that encodes at that version, carries the code in
  every error field it has, in the top-level error field where the version has one, and one
  result per element where the request names elements.
* Against Kafka itself: compat/ErrorResponses.java parses the same request bytes with Kafka's
  client library (4.4.0; 3.9.2 for the versions Kafka 4 dropped) and prints
  ``getErrorResponse(0, e)`` for a KafkaStorageException, an UnsupportedVersionException and an
  unexpected exception; odradek's response must decode to the same message, field by field,
  for every API and version odradek serves (slow: it needs Java and the jars).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_scripts import load_compat_script
from odradek.broker.error_responses import BUILDERS, ErrorAnswer, error_answer, error_response
from odradek.broker.handlers import REGISTRY
from odradek.protocol import error_codes
from odradek.protocol.errors import CorruptRecord
from odradek.protocol.messages._runtime import Struct
from odradek.storage.errors import KafkaStorageError

TESTS = Path(__file__).resolve().parents[1]
PROGRAM = TESTS.parent / "compat" / "ErrorResponses.java"


def _strategies():
    """tests/protocol/test_messages_strategies.py (a plain module there, not a package)."""
    name = "test_messages_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "protocol" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


message_strategy = _strategies().message_strategy

SERVED = [(entry, version) for entry in REGISTRY for version in range(entry.min_version, entry.max_version + 1)]
STORAGE = ErrorAnswer(error_codes.KAFKA_STORAGE_ERROR, "x")
UNKNOWN = ErrorAnswer(error_codes.UNKNOWN_SERVER_ERROR, None)
UNSUPPORTED = ErrorAnswer(error_codes.UNSUPPORTED_VERSION, "x")


def decoded(request_class, message, version: int):
    """``message`` as the broker sees it: encoded at ``version`` and decoded again."""
    return request_class.decode(message.encode(version), version)


def error_codes_in(message, version: int, path=()):
    """(path, value) of every error_code field the version carries, anywhere in ``message``."""
    bit = 1 << version
    for info in type(message).FIELDS:
        if not info.present & bit:
            continue
        value = getattr(message, info.attr)
        if info.attr == "error_code":
            yield path + (info.attr,), value
        elif info.struct is not None and value is not None:
            for index, item in enumerate(value if info.is_array else [value]):
                yield from error_codes_in(item, version, path + (info.attr, index))


# API key -> (the request's list of elements, the response's list of results, one per element,
# in order), where Kafka's error response mirrors the request one to one.
MIRRORED = {
    2: ("topics", "topics"), 3: ("topics", "topics"), 8: ("topics", "topics"), 15: ("groups", "groups"),
    19: ("topics", "topics"), 20: ("topic_names", "responses"), 21: ("topics", "topics"),
    23: ("topics", "topics"), 30: ("creations", "results"), 31: ("filters", "filter_results"),
    32: ("resources", "results"), 33: ("resources", "responses"), 37: ("topics", "results"),
    42: ("groups_names", "results"), 44: ("resources", "responses"), 61: ("topics", "topics"),
    69: ("group_ids", "groups"), 75: ("topics", "topics"),
}


def mirrored_lists(api_key: int, request, response, version: int):
    """(request elements, response results) for an API in MIRRORED, else None."""
    if api_key not in MIRRORED:
        return None
    wanted, answered = MIRRORED[api_key]
    if api_key == 20 and version >= 6:
        wanted = "topics"
    return getattr(request, wanted) or [], getattr(response, answered)


def has_top_level_error_code(cls, version: int) -> bool:
    return any(info.attr == "error_code" and info.present & (1 << version) for info in cls.FIELDS)


def test_every_registered_api_has_an_error_response():
    assert {entry.api_key for entry in REGISTRY} <= set(BUILDERS)


@pytest.mark.parametrize("entry,version", SERVED, ids=[f"{e.name}-v{v}" for e, v in SERVED])
@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_an_error_response_encodes_and_carries_the_code_where_kafka_puts_it(entry, version, data):
    request = decoded(entry.request_class, data.draw(message_strategy(entry.request_class, version)), version)
    for answer in (STORAGE, UNKNOWN, UNSUPPORTED):
        response = error_response(request, version, answer, (entry.min_version, entry.max_version))
        if entry.api_key == 0 and request.acks == 0:
            assert response is None  # no response to send: the connection closes
            continue
        assert isinstance(response, entry.response_class)
        back = entry.response_class.decode(response.encode(version), version)
        codes = list(error_codes_in(back, version))
        assert all(code == answer.code for _, code in codes), codes
        if has_top_level_error_code(entry.response_class, version):
            assert back.error_code == answer.code
        mirrored = mirrored_lists(entry.api_key, request, back, version)
        if mirrored is not None:
            elements, results = mirrored
            assert len(results) == len(elements)
            # a topic's own code, or its partitions' (checked with every other code above)
            assert all(getattr(result, "error_code", answer.code) == answer.code for result in results)
        assert back.throttle_time_ms == 0 if hasattr(back, "throttle_time_ms") else True


def test_error_answer_maps_exceptions_as_kafka_errors_for_exception():
    assert error_answer(OSError(24, "Too many open files")) == ErrorAnswer(56, "[Errno 24] Too many open files")
    assert error_answer(KafkaStorageError("disk gone")) == ErrorAnswer(56, "disk gone")
    assert error_answer(CorruptRecord("bad crc")) == ErrorAnswer(2, "bad crc")
    assert error_answer(TimeoutError()) == ErrorAnswer(error_codes.REQUEST_TIMED_OUT, None)
    assert error_answer(ConnectionResetError("peer")) == ErrorAnswer(-1, None)
    # Nothing of an unexpected exception leaks into the answer.
    assert error_answer(RuntimeError("secret")) == ErrorAnswer(-1, None)
    assert error_answer(KeyError("x")) == ErrorAnswer(-1, None)
    # A message that is the code's default one is left out, as ApiError.fromThrowable does.
    assert error_answer(KafkaStorageError(error_codes.lookup(56).message)) == ErrorAnswer(56, None)


# --- against Kafka ---

class KafkaOracle:
    """One JVM running compat/ErrorResponses.java; ``ask`` sends a request, reads Kafka's answer."""

    def __init__(self, classpath: str, main: str):
        self.process = subprocess.Popen(["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", classpath, main],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1)

    def ask(self, api_key: int, version: int, failure: str, body: bytes) -> tuple[str, bytes | None]:
        self.process.stdin.write(f"{api_key} {version} {failure} {body.hex()}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline().strip()
        assert line, "the JVM stopped"
        kind, _, rest = line.partition(" ")
        return kind, bytes.fromhex(rest) if kind == "OK" else None

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


# The Kafka client libraries that parse the requests and build the error responses: 4.4.0 (the
# release whose schemas odradek speaks) and, for the old versions Kafka 4 dropped, 3.9.2; their
# dependencies (compression libraries, slf4j) come from the pinned Kafka's lib
# (compat/kafka_jars.py).
KAFKA_CLIENTS = ("4.4.0", "3.9.2")
CLIENTS_DEPENDENCIES = ("zstd-jni", "lz4-java", "snappy-java", "slf4j-api")


@pytest.fixture(scope="module")
def kafka_oracles(tmp_path_factory):
    """{kafka-clients version: KafkaOracle}."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed (compat/install_tools.sh installs it)")
    kafka_jars = load_compat_script("kafka_jars")
    clients = kafka_jars.artifact_jars("error-response-jars", [("org.apache.kafka", "kafka-clients", version)
                                                               for version in KAFKA_CLIENTS])
    dependencies = [jar for jar in kafka_jars.classpath().split(":")
                    if any(f"/{name}-" in jar for name in CLIENTS_DEPENDENCIES)]
    oracles = {}
    for version in KAFKA_CLIENTS:
        classpath = ":".join([str(clients["org.apache.kafka", "kafka-clients", version]), *dependencies])
        if shutil.which("javac") is None:  # java runs the source file itself
            oracles[version] = KafkaOracle(classpath, str(PROGRAM))
            continue
        classes = tmp_path_factory.mktemp(f"error-responses-{version}")
        subprocess.run(["javac", "-d", str(classes), "-cp", classpath, str(PROGRAM)], check=True,
                       capture_output=True, timeout=120)
        oracles[version] = KafkaOracle(f"{classes}:{classpath}", "ErrorResponses")
    yield oracles
    for oracle in oracles.values():
        oracle.close()


def in_kafkas_order(response, api_key: int, version: int):
    """Kafka gathers a Produce's partitions (and an OffsetFetch v0's, and a WriteTxnMarkers'
    producers and partitions) in a hash map: compare them as sets."""
    if api_key == 0:
        for topic in response.responses:
            topic.partition_responses.sort(key=lambda partition: partition.index)
        response.responses.sort(key=lambda topic: (topic.name, topic.topic_id))
    if api_key == 9 and version == 0:
        for topic in response.topics:
            topic.partitions.sort(key=lambda partition: partition.partition_index)
        response.topics.sort(key=lambda topic: topic.name)
    if api_key == 27:
        for marker in response.markers:
            for topic in marker.topics:
                topic.partitions.sort(key=lambda partition: partition.partition_index)
            marker.topics.sort(key=lambda topic: topic.name)
        response.markers.sort(key=lambda marker: marker.producer_id)
    return response


def differences(ours, kafka, path="") -> list[str]:
    """Field-by-field differences of two decoded messages (for a readable failure)."""
    if isinstance(ours, Struct) and type(ours) is type(kafka):
        out = []
        for name in ours.__slots__:
            out += differences(getattr(ours, name), getattr(kafka, name), f"{path}.{name}")
        return out
    if isinstance(ours, list) and isinstance(kafka, list) and len(ours) == len(kafka):
        out = []
        for index, (a, b) in enumerate(zip(ours, kafka)):
            out += differences(a, b, f"{path}[{index}]")
        return out
    if isinstance(ours, memoryview):
        ours = bytes(ours)
    if isinstance(kafka, memoryview):
        kafka = bytes(kafka)
    return [] if ours == kafka else [f"{path}: odradek {ours!r}, Kafka {kafka!r}"]


@pytest.mark.slow
@pytest.mark.parametrize("entry,version", SERVED, ids=[f"{e.name}-v{v}" for e, v in SERVED])
def test_error_responses_are_the_ones_kafka_builds(kafka_oracles, entry, version):
    compared = []
    not_comparable = []

    @settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow], deadline=None, database=None)
    @given(data=st.data())
    def compare(data):
        body = data.draw(message_strategy(entry.request_class, version)).encode(version)
        request = entry.request_class.decode(body, version)
        for failure, answer in (("storage", STORAGE), ("unknown", UNKNOWN), ("unsupported", UNSUPPORTED)):
            for oracle in kafka_oracles.values():  # the newest client library that speaks the version
                kind, kafka_bytes = oracle.ask(entry.api_key, version, failure, body)
                if kind != "UNSUPPORTED":
                    break
            assert kind != "UNSUPPORTED", f"no Kafka client library speaks {entry.name} v{version}"
            if kind in ("REFUSED", "THROWS"):  # Kafka's parsing refuses values the schema allows;
                # getErrorResponse throws for a Produce with null records (odradek answers it)
                not_comparable.append(kind)
                return
            ours = error_response(request, version, answer, (entry.min_version, entry.max_version))
            if kind == "NULL":
                assert ours is None, request
                compared.append(failure)
                continue
            assert ours is not None, request
            kafka = in_kafkas_order(entry.response_class.decode(kafka_bytes, version), entry.api_key, version)
            mine = in_kafkas_order(entry.response_class.decode(ours.encode(version), version), entry.api_key,
                                   version)
            assert not differences(mine, kafka), (failure, differences(mine, kafka), request)
            compared.append(failure)

    compare()
    assert compared, f"Kafka refused every drawn request: {not_comparable}"
