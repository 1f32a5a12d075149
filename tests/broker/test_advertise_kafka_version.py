"""``odradek.advertise.kafka.version``: a real ``odradek serve`` speaking Kafka 2.8's and 0.11's
protocol. ApiVersions lists that release's APIs and ranges cut to what odradek serves (the
table read from the release's kafka-clients jar, protocol/kafka_releases.py), a request above
the release's range gets Kafka's answer, and kafka-python, confluent-kafka (librdkafka) and the
Java client negotiate the release's versions and still produce and consume.

Which versions a client used is read from the broker's activity stream (the control API, as
``odradek activity`` shows it): each client runs once against a broker serving Kafka 4.4's ranges
and once against the older release, and for every API it used, the newest version it sent to
the older one must be its 4.4 choice capped at the release's maximum.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, strategies as st

from odradek.broker.advertised_versions import release_line, restrict
from odradek.broker.control.client import ControlClient
from odradek.broker.handlers import REGISTRY
from odradek.protocol import error_codes
from odradek.protocol.kafka_releases import API_VERSIONS, FEATURES
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.describe_cluster import DescribeClusterRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest

from .conftest import BrokerProcess, RawClient
from .test_cli import run_odradek

KEY = "odradek.advertise.kafka.version"
PRODUCE, FETCH, METADATA, API_VERSIONS_KEY, DESCRIBE_CLUSTER = 0, 1, 3, 18, 60
REGISTRY_KEYS = {entry.name: entry.api_key for entry in REGISTRY}


@pytest.fixture(scope="module")
def brokers(tmp_path_factory):
    """release -> a broker advertising it (None: odradek's own, Kafka 4.4)."""
    directory = tmp_path_factory.mktemp("advertise")
    started = {}
    for release in (None, "2.8", "0.11"):
        name = release or "own"
        # No wait for more members: each consumer here is alone in its group.
        overrides = ("group.initial.rebalance.delay.ms=0",) + (() if release is None else (f"{KEY}={release}",))
        started[release] = BrokerProcess(directory / name, overrides, directory / f"{name}.log")
    yield started
    for process in started.values():
        assert process.stop() == 0, process.log()


def expected_ranges(release: str) -> dict[int, tuple[int, int]]:
    """What ApiVersions must list: the release's ranges intersected with odradek's own."""
    ranges = {}
    for entry in REGISTRY.advertised():
        if entry.api_key in API_VERSIONS[release]:
            low, high = API_VERSIONS[release][entry.api_key]
            low, high = max(low, entry.min_version), min(high, entry.max_version)
            if low <= high:
                ranges[entry.api_key] = (low, high)
    return ranges


def api_versions(broker, version):
    client = RawClient(broker.host, broker.port)
    try:
        return client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), version)
    finally:
        client.close()


def versions_used(broker, client_id: str) -> dict[int, int]:
    """api key -> the newest version ``client_id`` sent, from the broker's activity stream
    (the control API's /v1/activity, what ``odradek activity`` shows)."""
    control = ControlClient(broker.control_url)
    try:
        events = control.call("GET", "/v1/activity", query={"client_id": client_id, "limit": 10_000})["events"]
    finally:
        control.close()
    newest: dict[int, int] = {}
    for event in events:
        key = REGISTRY_KEYS[event["api"]]
        newest[key] = max(event["api_version"], newest.get(key, -1))
    assert newest, f"no request from {client_id} in the broker's activity"
    return newest


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_api_versions_lists_the_release_intersected_with_what_odradek_serves(brokers, release):
    top = API_VERSIONS[release][API_VERSIONS_KEY][1]
    answer = api_versions(brokers[release], top)
    assert answer.error_code == error_codes.NONE
    listed = {item.api_key: (item.min_version, item.max_version) for item in answer.api_keys}
    assert listed == expected_ranges(release)
    # Facts about those releases (Kafka's protocol guide) that the table must reproduce.
    if release == "2.8":
        assert listed[PRODUCE] == (0, 9) and listed[FETCH] == (0, 12) and listed[API_VERSIONS_KEY] == (0, 3)
        assert 68 not in listed  # ConsumerGroupHeartbeat came with 3.7
    else:
        assert listed[PRODUCE] == (0, 3) and listed[FETCH] == (0, 5) and listed[API_VERSIONS_KEY] == (0, 1)
        assert 36 not in listed and 42 not in listed  # SaslAuthenticate (1.0), DeleteGroups (1.1)
    # Fewer APIs than odradek's own list, never one the release lacked.
    own = {item.api_key for item in api_versions(brokers[None], 4).api_keys}
    assert set(listed) < own


def test_4_4_is_odradeks_own_list_less_the_versions_kafka_4_removed():
    """The table's 4.4 (read from the JSON schemas) and odradek's codecs (generated from the same
    jar) agree on every API and newest version; only the oldest versions, which odradek still
    serves for pre-2.1 clients (from 3.9's schemas), go."""
    own = REGISTRY.version_ranges()
    kafka_4_4 = REGISTRY.version_ranges("4.4")
    assert set(kafka_4_4) == set(own)
    assert {key: high for key, (_, high) in kafka_4_4.items()} == {key: high for key, (_, high) in own.items()}
    raised = {key for key in own if kafka_4_4[key][0] > own[key][0]}
    assert {PRODUCE, FETCH} <= raised
    assert kafka_4_4[PRODUCE] == (3, own[PRODUCE][1])  # KIP-896: Produce v0-2 removed in 4.0


def test_features_the_release_did_not_define_are_not_advertised(brokers):
    # Read from the jars: 3.9 defined the feature but had no production level above 0 yet.
    assert FEATURES["2.8"] == FEATURES["3.9"] == {} and FEATURES["4.0"] == {"transaction.version": 2}
    old = api_versions(brokers["2.8"], 3)
    assert old.supported_features == [] and old.finalized_features == []
    own = api_versions(brokers[None], 3)
    assert [feature.name for feature in own.supported_features] == ["transaction.version"]


@pytest.mark.parametrize("release, listed", [("3.9", False), ("4.0", True)])
def test_transaction_version_is_advertised_from_4_0(tmp_path, release, listed):
    process = BrokerProcess(tmp_path / "data", (f"{KEY}={release}",), tmp_path / "broker.log")
    try:
        answer = api_versions(process, 4)
    finally:
        assert process.stop() == 0
    supported = [(f.name, f.min_version, f.max_version) for f in answer.supported_features]
    finalized = [(f.name, f.min_version_level, f.max_version_level) for f in answer.finalized_features]
    if listed:
        assert supported == [("transaction.version", 0, 2)] and finalized == [("transaction.version", 2, 2)]
    else:
        assert supported == [] and finalized == []


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_api_versions_above_the_release_answers_unsupported_version(brokers, release):
    low, high = API_VERSIONS[release][API_VERSIONS_KEY]
    answer = api_versions(brokers[release], high + 1)  # KIP-511: answered at v0 with our range
    assert answer.error_code == error_codes.UNSUPPORTED_VERSION
    assert [(item.api_key, item.min_version, item.max_version) for item in answer.api_keys] == [
        (API_VERSIONS_KEY, low, high)]


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_other_requests_outside_the_release_close_the_connection(brokers, release):
    """As Kafka closes a connection whose request is at a version it does not serve (only
    ApiVersions gets an answer): a version above the release's, or an API it did not have."""
    broker = brokers[release]
    produce_max = API_VERSIONS[release][PRODUCE][1]
    metadata_max = API_VERSIONS[release][METADATA][1]
    refused = [(ProduceRequest(acks=1, timeout_ms=1000), produce_max + 1), (MetadataRequest(topics=[]), metadata_max + 1)]
    if DESCRIBE_CLUSTER not in API_VERSIONS[release]:
        refused.append((DescribeClusterRequest(), 0))
    for message, version in refused:
        client = RawClient(broker.host, broker.port)
        try:
            client.send(message, version)
            assert client.is_closed_by_peer(), f"{type(message).__name__} v{version} was not refused"
        finally:
            client.close()
    assert len(refused) == (3 if release == "0.11" else 2)
    # The versions the release had are served, and the broker odradek's own answers all of them.
    client = RawClient(broker.host, broker.port)
    own = RawClient(brokers[None].host, brokers[None].port)
    try:
        assert client.request(MetadataRequest(topics=[]), metadata_max).brokers
        assert own.request(MetadataRequest(topics=[]), metadata_max + 1).brokers
        assert own.request(DescribeClusterRequest(), 0).error_code == error_codes.NONE
    finally:
        client.close()
        own.close()


@pytest.mark.parametrize("value", ["2.99", "5.0", "banana", "2", "2.8.x", ""])
def test_an_invalid_release_is_refused_at_start(tmp_path, value):
    result = run_odradek("serve", "--data-dir", str(tmp_path / "data"), "--port", "0", "--override", f"{KEY}={value}")
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"odradek: Invalid value {value} for configuration {KEY}: "
                                    "not a Kafka release odradek can advertise; one of 0.11, 1.0,"), result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value", ["2.8.2", "0.11.0"])
def test_a_patch_release_names_its_line(tmp_path, value):
    process = BrokerProcess(tmp_path / "data", (f"{KEY}={value}",), tmp_path / "broker.log")
    try:
        line = value.rsplit(".", 1)[0]
        top = API_VERSIONS[line][API_VERSIONS_KEY][1]
        listed = {item.api_key: (item.min_version, item.max_version) for item in api_versions(process, top).api_keys}
        assert listed == expected_ranges(line)
    finally:
        assert process.stop() == 0


def assert_negotiated(brokers, release, client_id_of):
    """The newest version of each API the client sent to ``release`` is its choice against
    Kafka 4.4 capped at the release's maximum (ApiVersions aside: a client first tries its own
    newest and falls back on the KIP-511 answer)."""
    own = versions_used(brokers[None], client_id_of(None))
    old = versions_used(brokers[release], client_id_of(release))
    advertised = expected_ranges(release)
    assert set(old) <= set(advertised), f"APIs the release lacked: {set(old) - set(advertised)}"
    assert old[API_VERSIONS_KEY] >= advertised[API_VERSIONS_KEY][1]  # tried, then used the release's
    for key, version in old.items():
        if key == API_VERSIONS_KEY:
            continue
        low, high = advertised[key]
        assert low <= version <= high, (key, version, advertised[key])
        if key in own:
            assert version == max(low, min(own[key], high)), (key, version, own[key], advertised[key])
    assert old[PRODUCE] == min(own[PRODUCE], advertised[PRODUCE][1])
    assert old[FETCH] == min(own[FETCH], advertised[FETCH][1])
    print(f"{client_id_of(release)}: {dict(sorted(old.items()))}; against 4.4: {dict(sorted(own.items()))}")


def kafka_python_round_trip(broker, client_id: str) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"kp-{uuid.uuid4().hex[:8]}"
    values = [b"v%d" % i for i in range(10)]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, client_id=client_id, acks="all")
    for value in values:
        producer.send(topic, value)
    producer.flush(15)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, client_id=client_id, group_id=topic,
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    received = []
    for message in consumer:
        received.append(message.value)
        if len(received) == len(values):
            break
    consumer.commit()
    consumer.close()
    assert received == values


def confluent_round_trip(broker, client_id: str) -> None:
    from confluent_kafka import Consumer, Producer

    topic = f"ck-{uuid.uuid4().hex[:8]}"
    values = [b"v%d" % i for i in range(10)]
    producer = Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "enable.idempotence": True})
    delivered = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda error, message: delivered.append(error))
    assert producer.flush(15) == 0
    assert delivered == [None] * len(values)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "group.id": topic,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received = []
    for _ in range(100):
        if len(received) == len(values):
            break
        message = consumer.poll(1)
        if message is not None:
            assert message.error() is None, message.error()
            received.append(message.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert received == values


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_kafka_python_negotiates_the_release(brokers, release):
    def client_id(advertised):
        return f"kafka-python-{advertised or 'own'}-for-{release}"

    kafka_python_round_trip(brokers[None], client_id(None))
    kafka_python_round_trip(brokers[release], client_id(release))
    assert_negotiated(brokers, release, client_id)


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_librdkafka_negotiates_the_release(brokers, release):
    def client_id(advertised):
        return f"librdkafka-{advertised or 'own'}-for-{release}"

    confluent_round_trip(brokers[None], client_id(None))
    confluent_round_trip(brokers[release], client_id(release))
    assert_negotiated(brokers, release, client_id)


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_java_client_negotiates_the_release(brokers, kafka_jars, release):
    def client_id(advertised):
        return f"java-{advertised or 'own'}-for-{release}"

    for advertised in (None, release):
        broker = brokers[advertised]
        topic = f"java-{advertised or 'own'}-for-{release}"
        server = ["--bootstrap-server", broker.bootstrap]
        kafka_jars.run_java(kafka_jars.CONSOLE_PRODUCER, [*server, "--topic", topic, "--command-property",
                                                          f"client.id={client_id(advertised)}"],
                            input="one\ntwo\nthree\n")
        consumed = kafka_jars.run_java(kafka_jars.CONSOLE_CONSUMER, [
            *server, "--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000",
            "--group", topic, "--command-property", f"client.id={client_id(advertised)}"])
        assert consumed.stdout.splitlines() == ["one", "two", "three"]
    assert_negotiated(brokers, release, client_id)


@given(st.text(alphabet="0123456789.x -", max_size=12) | st.text(max_size=12))
def test_release_line_names_a_table_line_or_refuses(text):
    try:
        line = release_line(text)
    except ValueError as error:
        assert "not a Kafka release odradek can advertise" in str(error)
    else:
        assert line in API_VERSIONS and text.strip().startswith(line)


@given(st.sampled_from(sorted(API_VERSIONS)), st.integers(0, 99), st.dictionaries(
    st.integers(0, 90), st.tuples(st.integers(0, 20), st.integers(0, 20)).map(sorted).map(tuple)))
def test_restrict_keeps_only_what_both_serve(line, patch, served):
    assert release_line(f"{line}.{patch}") == line
    ranges = restrict(served, f"{line}.{patch}")
    had = API_VERSIONS[line]
    for key in served:
        both = (max(served[key][0], had[key][0]), min(served[key][1], had[key][1])) if key in had else None
        assert ranges.get(key) == (both if both and both[0] <= both[1] else None)
    assert set(ranges) <= set(served)
    assert restrict(served, None) == served
