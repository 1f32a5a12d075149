"""odradek's pytest plugin (api/pytest_plugin.py), run the way a user's suite runs it: pytester
writes a test file into a fresh directory and runs pytest on it, with no conftest and no ``-p``
(the ``pytest11`` entry point loads the plugin). The inner tests drive real clients
(kafka-python, confluent-kafka) against the fixtures' broker; the outer tests check what the
inner ones saw, pytest's outcome and its terminal output. The pytest-xdist runs are child
processes (``-p xdist -n 2``), the others run in this process."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.pytest_plugin import topic_name_base, unique_topic_name

pytest_plugins = ["pytester"]

LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9_-]{1,249}")
KEPT_LINE = re.compile(r"a test failed: the broker's data is kept in (?:(gw\d+): )?(\S+)")

# What the inner tests share: kafka-python helpers, and a record of what each test saw, written
# to seen/<test name>.json for the outer test to read.
INNER_HELPERS = """
import json, os, pathlib
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

def produce(bootstrap, topic, values, key=b"k"):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

def consume(bootstrap, topic, count, group=None):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    values = []
    for message in consumer:
        values.append(message.value.decode())
        if len(values) == count:
            break
    if group is not None:
        consumer.commit()
    consumer.close()
    return values

def topics(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics()), [group["group_id"] for group in admin.list_groups()]
    finally:
        admin.close()

def record(request, **seen):
    folder = pathlib.Path(str(request.config.rootpath)) / "seen"
    folder.mkdir(exist_ok=True)
    seen["worker"] = os.environ.get("PYTEST_XDIST_WORKER")
    (folder / (request.node.name + ".json")).write_text(json.dumps(seen))
"""


def seen(pytester: pytest.Pytester) -> dict[str, dict]:
    folder = pytester.path / "seen"
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")} if folder.is_dir() else {}


def write_tests(pytester: pytest.Pytester, name: str, body: str) -> None:
    pytester.makepyfile(**{name: INNER_HELPERS + textwrap.dedent(body)})


def free_port_pair() -> int:
    """A port P with P and P+1 both free now (for two xdist workers: P, P+1)."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port < 65535:
                with socket.socket() as second:
                    try:
                        second.bind(("127.0.0.1", port + 1))
                    except OSError:
                        continue
                    return port
    raise AssertionError("no two consecutive free ports")


@pytest.fixture(scope="module", autouse=True)
def broker_modules_loaded_here():
    """pytester's in-process runs drop the modules imported during them, so each would import
    the broker and concurrent.futures anew while uvloop, a C extension loaded once, keeps the
    first run's: a later run's broker then never finished a produce on disk (the client waited
    out its delivery timeout, two minutes). One broker started here loads them into this process
    for good, as in a user's session, which imports them once."""
    import confluent_kafka  # noqa: F401 - kept loaded too: a second copy of each per run is only slower
    import kafka  # noqa: F401

    from odradek import Broker

    with Broker(memory=True):
        pass


@pytest.fixture
def child_env(monkeypatch):
    """Child pytest processes keep compiled bytecode, as tests/broker/conftest.py's broker
    processes do (tox sets PYTHONDONTWRITEBYTECODE: every xdist worker would compile the codecs)."""
    from broker.conftest import subprocess_env

    monkeypatch.setenv("PYTHONPYCACHEPREFIX", subprocess_env()["PYTHONPYCACHEPREFIX"])
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


def test_the_entry_point_registers_the_plugin_and_importing_it_loads_no_broker():
    points = [point for point in importlib.metadata.entry_points(group="pytest11") if point.name == "odradek"]
    assert [point.value for point in points] == ["odradek.pytest_plugin"]
    # Every pytest session where odradek is installed imports the plugin: nothing heavy then.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, odradek.pytest_plugin; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert [name for name in loaded if name.startswith("odradek")] == ["odradek", "odradek.pytest_plugin"]
    assert not [name for name in loaded if name.split(".")[0] in ("structlog", "asyncio", "uvloop", "kafka")]


def test_the_fixtures_serve_kafka_python_and_confluent_kafka(pytester):
    write_tests(pytester, "test_clients", """
        from kafka.admin import ConfigResource, ConfigResourceType

        def test_kafka_python(request, odradek_topic, odradek_bootstrap_servers, odradek_broker):
            topic = odradek_topic(partitions=3, config={"cleanup.policy": "compact"})
            admin = KafkaAdminClient(bootstrap_servers=odradek_bootstrap_servers)
            try:
                [described] = admin.describe_topics([topic])
                configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
            finally:
                admin.close()
            produce(odradek_bootstrap_servers, topic, [b"a", b"b", b"c"])
            record(request, topic=topic, partitions=len(described["partitions"]),
                   cleanup_policy=configs["cleanup.policy"]["value"], values=consume(odradek_bootstrap_servers, topic, 3),
                   bootstrap=odradek_bootstrap_servers, broker=odradek_broker.bootstrap_servers)

        def test_confluent_kafka(request, odradek_topic, odradek_bootstrap_servers):
            from confluent_kafka import Consumer, Producer
            first, second = odradek_topic(), odradek_topic(partitions=2)
            producer = Producer({"bootstrap.servers": odradek_bootstrap_servers})
            for index in range(6):
                producer.produce(second, key=b"%d" % index, value=b"v%d" % index)
            assert producer.flush(10) == 0
            consumer = Consumer({"bootstrap.servers": odradek_bootstrap_servers, "group.id": "g",
                                 "auto.offset.reset": "earliest"})
            consumer.subscribe([second])
            values = []
            while len(values) < 6:
                message = consumer.poll(10)
                assert message is not None and message.error() is None
                values.append(message.value().decode())
            partitions = len(consumer.list_topics(second, timeout=10).topics[second].partitions)
            consumer.close()
            record(request, topics=[first, second], partitions=partitions, values=sorted(values))
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    saw = seen(pytester)
    kafka_python = saw["test_kafka_python"]
    assert kafka_python["bootstrap"] == kafka_python["broker"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", kafka_python["bootstrap"])
    assert (kafka_python["topic"], kafka_python["partitions"], kafka_python["cleanup_policy"]) == (
        "test_clients-test_kafka_python", 3, "compact")
    assert kafka_python["values"] == ["a", "b", "c"]
    confluent = saw["test_confluent_kafka"]
    assert confluent["topics"] == ["test_clients-test_confluent_kafka", "test_clients-test_confluent_kafka-2"]
    assert confluent["partitions"] == 2
    assert confluent["values"] == [f"v{index}" for index in range(6)]


def test_odradek_clean_resets_the_broker_before_each_test(pytester):
    write_tests(pytester, "test_clean", """
        import pytest

        def test_1_leaves_a_topic_and_a_group(request, odradek_clean, odradek_topic, odradek_bootstrap_servers):
            topic = odradek_topic(name="orders")
            produce(odradek_bootstrap_servers, topic, [b"x", b"y"])
            assert consume(odradek_bootstrap_servers, topic, 2, group="billing") == ["x", "y"]
            record(request, state=sorted(topics(odradek_bootstrap_servers)[0]))

        def test_2_without_the_fixture_sees_them(request, odradek_bootstrap_servers):
            names, groups = topics(odradek_bootstrap_servers)
            record(request, orders="orders" in names, groups=groups)

        def test_3_with_the_fixture_sees_nothing(request, odradek_clean, odradek_topic, odradek_bootstrap_servers):
            names, groups = topics(odradek_bootstrap_servers)
            record(request, names=sorted(name for name in names if not name.startswith("__")), groups=groups)
            assert odradek_topic(name="orders") == "orders"  # the name is free again
            with pytest.raises(Exception, match="^TOPIC_ALREADY_EXISTS: "):
                odradek_topic(name="orders")

        @pytest.fixture
        def orders(odradek_topic):
            return odradek_topic(name="orders")

        def test_4_a_topic_made_by_a_fixture_listed_first_outlives_the_reset(
                request, orders, odradek_clean, odradek_bootstrap_servers):
            there = orders in topics(odradek_bootstrap_servers)[0]  # before a producer could auto-create it
            produce(odradek_bootstrap_servers, orders, [b"z"])
            record(request, there=there, values=consume(odradek_bootstrap_servers, orders, 1))
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    saw = seen(pytester)
    assert "orders" in saw["test_1_leaves_a_topic_and_a_group"]["state"]
    assert saw["test_2_without_the_fixture_sees_them"]["orders"] is True
    assert saw["test_2_without_the_fixture_sees_them"]["groups"] == ["billing"]
    assert saw["test_3_with_the_fixture_sees_nothing"] == {"names": [], "groups": [], "worker": None}
    made_first = saw["test_4_a_topic_made_by_a_fixture_listed_first_outlives_the_reset"]
    assert (made_first["there"], made_first["values"]) == (True, ["z"])


def test_options_from_the_ini_file_and_the_command_line_over_them(pytester, child_env):
    port = free_port_pair()
    pytester.makeini(f"""
        [pytest]
        odradek_storage = disk
        odradek_port = {port}
        odradek_log_level = info
        odradek_config =
            num.partitions=3
            auto.create.topics.enable=true
    """)
    write_tests(pytester, "test_options", """
        def test_broker(request, capsys, odradek_clean, odradek_broker, odradek_bootstrap_servers):
            produce(odradek_bootstrap_servers, "auto-created", [b"x"])
            producer = KafkaProducer(bootstrap_servers=odradek_bootstrap_servers)
            partitions = len(producer.partitions_for("auto-created"))
            producer.close()
            record(request, port=odradek_broker.port, memory=odradek_broker.memory, mode=odradek_broker.mode,
                   data_dir=odradek_broker.data_dir, child=odradek_broker.process is not None,
                   partitions=partitions, logged="event='connection opened'" in capsys.readouterr().err)
    """)
    # A child process: the broker configures structlog's level only in a process where nobody did.
    pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120).assert_outcomes(passed=1)
    from_ini = seen(pytester)["test_broker"]
    assert (from_ini["port"], from_ini["memory"], from_ini["mode"], from_ini["child"], from_ini["partitions"],
            from_ini["logged"]) == (port, False, "thread", False, 3, True)
    assert from_ini["data_dir"] is not None and not os.path.exists(from_ini["data_dir"])  # a temporary one

    pytester.runpytest("-p", "no:cacheprovider", "--odradek-storage=memory", "--odradek-port", "0",
                       "--odradek-config", "num.partitions=2", "--odradek-mode=process").assert_outcomes(passed=1)
    from_command_line = seen(pytester)["test_broker"]
    assert from_command_line["port"] != port
    assert (from_command_line["memory"], from_command_line["mode"], from_command_line["child"],
            from_command_line["data_dir"], from_command_line["partitions"]) == (True, "process", True, None, 2)

    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--odradek-log-level=warning",
                                  timeout=120).assert_outcomes(passed=1)
    assert seen(pytester)["test_broker"]["logged"] is False


@pytest.mark.parametrize("arguments, ini, message", [
    (["--odradek-storage=tape"], "", "odradek storage must be one of memory, disk, not 'tape'"),
    ([], "odradek_storage = tape", "odradek storage must be one of memory, disk, not 'tape'"),
    (["--odradek-port=http"], "", "odradek port must be a number from 0 to 65535, not 'http'"),
    ([], "odradek_port = 70000", "odradek port must be a number from 0 to 65535, not '70000'"),
    (["--odradek-config", "num.partitions"], "", "odradek config must be KEY=VALUE, not 'num.partitions'"),
    (["--odradek-keep-on-failure"], "", "it needs --odradek-storage=disk"),
    ([], "odradek_keep_on_failure = true", "it needs --odradek-storage=disk"),
])
def test_an_option_the_plugin_refuses_is_a_usage_error(pytester, arguments, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_nothing="def test_nothing(odradek_broker):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


@pytest.mark.parametrize("arguments, message", [
    (["--odradek-port=9", "--odradek-config", "listeners=PLAINTEXT://127.0.0.1:0"],
     "odradek options: port and config['listeners'] both set the listeners"),
    (["--odradek-config", "num.partitions=many"], "odradek options: Invalid value many for configuration num.partitions"),
    (["--odradek-mode", "fiber"], "mode must be one of ('thread', 'process'), not 'fiber'"),
    (["--odradek-log-level", "loud"], "odradek options: log_level must be one of"),
])
def test_a_setting_the_broker_refuses_fails_its_tests_with_the_reason(pytester, arguments, message):
    pytester.makepyfile(test_broker="""
        def test_one(odradek_broker):
            pass

        def test_two(odradek_bootstrap_servers):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", *arguments)
    result.assert_outcomes(errors=2)
    assert message in result.stdout.str()


def test_keep_on_failure_keeps_and_prints_the_data_dir_only_when_a_test_failed(pytester):
    write_tests(pytester, "test_kept", """
        def test_writes(request, odradek_topic, odradek_bootstrap_servers, odradek_broker):
            produce(odradek_bootstrap_servers, odradek_topic(name="evidence"), [b"what happened"])
            record(request, data_dir=odradek_broker.data_dir)

        def test_fails():
            assert False
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--odradek-storage=disk", "--odradek-keep-on-failure")
    result.assert_outcomes(passed=1, failed=1)
    data_dir = seen(pytester)["test_writes"]["data_dir"]
    try:
        assert [(match.group(1), match.group(2)) for match in KEPT_LINE.finditer(result.stdout.str())] == [
            (None, data_dir)]
        assert "odradek" in result.stdout.str().split("short test summary")[0]  # its own summary section
        partition = os.path.join(data_dir, "evidence-0")
        assert b"what happened" in open(os.path.join(partition, "00000000000000000000.log"), "rb").read()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    result = pytester.runpytest("-p", "no:cacheprovider", "--odradek-storage=disk", "--odradek-keep-on-failure",
                                "-k", "test_writes")
    result.assert_outcomes(passed=1, deselected=1)
    data_dir = seen(pytester)["test_writes"]["data_dir"]
    assert not KEPT_LINE.search(result.stdout.str())
    assert not os.path.exists(data_dir)


XDIST_TESTS = """
    import pytest

    @pytest.mark.parametrize("number", range(6))
    def test_round_trip(request, number, odradek_clean, odradek_topic, odradek_broker):
        topic = odradek_topic(partitions=2)
        produce(odradek_broker.bootstrap_servers, topic, [b"%d" % number])
        names, _ = topics(odradek_broker.bootstrap_servers)
        record(request, bootstrap=odradek_broker.bootstrap_servers, data_dir=odradek_broker.data_dir,
               values=consume(odradek_broker.bootstrap_servers, topic, 1),
               topics=sorted(name for name in names if not name.startswith("__")))
"""


def test_under_xdist_each_worker_has_its_own_broker(pytester, child_env):
    write_tests(pytester, "test_workers", XDIST_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2", timeout=120)
    result.assert_outcomes(passed=6)
    saw = seen(pytester)
    assert len(saw) == 6
    brokers = {item["worker"]: set() for item in saw.values()}
    for name, item in saw.items():
        brokers[item["worker"]].add(item["bootstrap"])
        number = name.split("[")[1].rstrip("]")
        assert item["values"] == [number]
        assert item["topics"] == [f"test_workers-test_round_trip-{number}"]  # clean: only this test's topic
    assert sorted(brokers) == ["gw0", "gw1"]
    assert all(len(servers) == 1 for servers in brokers.values())
    assert len(set.union(*brokers.values())) == 2


def test_under_xdist_a_port_given_is_one_per_worker_and_kept_data_is_printed_by_the_controller(
        pytester, child_env):
    port = free_port_pair()
    write_tests(pytester, "test_workers", XDIST_TESTS + """
    def test_fails(request, odradek_broker):
        record(request, bootstrap=odradek_broker.bootstrap_servers, data_dir=odradek_broker.data_dir)
        assert False
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2",
                                           f"--odradek-port={port}", "--odradek-storage=disk",
                                           "--odradek-keep-on-failure", timeout=120)
    result.assert_outcomes(passed=6, failed=1)
    saw = seen(pytester)
    workers = {item["worker"]: (item["bootstrap"], item["data_dir"]) for item in saw.values()}
    try:
        assert {worker: bootstrap for worker, (bootstrap, _) in workers.items()} == {
            "gw0": f"127.0.0.1:{port}", "gw1": f"127.0.0.1:{port + 1}"}
        failed_on = saw["test_fails"]["worker"]
        kept = [(match.group(1), match.group(2)) for match in KEPT_LINE.finditer(result.stdout.str())]
        assert kept == [(failed_on, workers[failed_on][1])]
        assert os.path.isdir(workers[failed_on][1])
        passed_on = ({"gw0", "gw1"} - {failed_on}).pop()
        assert not os.path.exists(workers[passed_on][1])
    finally:
        for _, data_dir in workers.values():
            shutil.rmtree(data_dir, ignore_errors=True)


@given(st.text(max_size=400))
def test_topic_names_from_any_node_id_are_legal(node_id):
    name = topic_name_base(node_id)
    assert LEGAL_TOPIC_NAME.fullmatch(name), name
    assert len(name) <= 200
    taken = {name, f"{name}-2"}
    assert unique_topic_name(name, taken) == f"{name}-3"
    assert unique_topic_name(name, set()) == name


def test_a_long_node_id_keeps_the_test_name():
    node_id = "tests/" + "deep/" * 60 + "test_x.py::TestY::test_some_case[param.1]"
    assert topic_name_base(node_id).endswith("-test_x-TestY-test_some_case-param-1")
