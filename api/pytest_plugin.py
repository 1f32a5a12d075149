"""odradek's pytest plugin: a broker for the test session, clean state per test, a topic factory.

Registered through the ``pytest11`` entry point (pyproject.toml), so installing odradek is
enough; docs/testing.md ("pytest plugin") has the fixtures and options. pytest loads this module
in every session of every project where odradek is installed, so it imports nothing of the
broker (nor structlog, asyncio, the protocol codecs) until a test asks for one of its fixtures,
and everything it adds is named ``odradek_...``.

Under pytest-xdist every worker is a pytest session of its own: each gets its own broker (a
free port each, or ``--odradek-port`` plus the worker's number), and the data directories kept
on failure travel to the controller in the worker's ``workeroutput`` to be printed there.

State lives in ``config.stash``, never in this module: pytester runs pytest inside pytest, and
both sessions share this module.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile

import pytest

STORAGES = ("memory", "disk")
DEFAULT_STORAGE = "memory"
# Kafka's legal topic characters are [a-zA-Z0-9._-], at most 249 of them. The names made here
# leave out '.', so that none collides with another in Kafka's metric names ('.' and '_' map to
# the same there, and Kafka refuses a topic that collides), and keep room for a suffix.
_NOT_IN_TOPIC_NAME = re.compile(r"[^a-zA-Z0-9_-]+")
_TOPIC_NAME_ROOM = 200
_WORKER_OUTPUT_KEY = "odradek_kept_data_dirs"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The plugin's options, command line over ini; ``mode`` and ``log_level`` None leave
    Broker's defaults."""

    storage: str
    port: int
    config: dict[str, str]
    mode: str | None
    keep_on_failure: bool
    log_level: str | None


@dataclasses.dataclass
class _SessionState:
    settings: Settings
    worker: str | None  # pytest-xdist's worker id ("gw0"), None outside xdist
    data_dir: str | None = None  # made by the plugin (keep-on-failure), removed unless kept
    broker_data_dir: str | None = None  # the running broker's, whoever made it
    topic_names: set[str] = dataclasses.field(default_factory=set)
    kept: list[str] = dataclasses.field(default_factory=list)  # "data dir" or "gw1: data dir" lines


_STATE = pytest.StashKey[_SessionState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("odradek", "odradek (the Kafka broker of the odradek_* fixtures)")
    group.addoption("--odradek-storage", metavar="memory|disk", default=None,
                    help=f"where the broker keeps its data (default: {DEFAULT_STORAGE}); ini: odradek_storage")
    group.addoption("--odradek-port", metavar="PORT", default=None,
                    help="the broker's port on 127.0.0.1; 0 (default) = a free port; under pytest-xdist "
                         "worker gwN uses PORT+N; ini: odradek_port")
    group.addoption("--odradek-config", metavar="KEY=VALUE", action="append", default=[],
                    help="a broker config by Kafka's name (repeatable; over the ini's); ini: odradek_config "
                         "(one KEY=VALUE a line)")
    group.addoption("--odradek-mode", metavar="thread|process", default=None,
                    help="run the broker in a thread of the test process (default) or in a child process; "
                         "ini: odradek_mode")
    group.addoption("--odradek-keep-on-failure", action="store_true", default=None,
                    help="disk storage: keep the broker's data directory when a test failed and print where; "
                         "ini: odradek_keep_on_failure")
    group.addoption("--odradek-log-level", metavar="LEVEL", default=None,
                    help="the broker's log lines on stderr, shown with the test running then: debug logs every "
                         "request (default: warning); ini: odradek_log_level")
    parser.addini("odradek_storage", f"odradek: memory or disk (default: {DEFAULT_STORAGE})", default=DEFAULT_STORAGE)
    parser.addini("odradek_port", "odradek: the broker's port, 0 = a free port", default="0")
    parser.addini("odradek_config", "odradek: broker configs, one KEY=VALUE a line", type="linelist", default=[])
    parser.addini("odradek_mode", "odradek: thread or process (default: thread)", default="")
    parser.addini("odradek_keep_on_failure", "odradek: keep disk storage when a test failed", type="bool",
                  default=False)
    parser.addini("odradek_log_level", "odradek: the broker's log level (default: warning)", default="")


def read_settings(config: pytest.Config) -> Settings:
    """The options, command line over ini; raises pytest.UsageError for a value the plugin
    itself refuses (broker configs and the mode are checked by Broker, when it is made)."""

    def option(name: str):
        value = config.getoption(f"odradek_{name}")
        return config.getini(f"odradek_{name}") if value is None else value

    storage = option("storage")
    if storage not in STORAGES:
        raise pytest.UsageError(f"odradek storage must be one of {', '.join(STORAGES)}, not {storage!r}")
    port_text = str(option("port")).strip()
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise pytest.UsageError(f"odradek port must be a number from 0 to 65535, not {port_text!r}")
    broker_config: dict[str, str] = {}
    for item in [*config.getini("odradek_config"), *config.getoption("odradek_config")]:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise pytest.UsageError(f"odradek config must be KEY=VALUE, not {item!r}")
        broker_config[key.strip()] = value.strip()
    mode = option("mode") or None
    keep_on_failure = bool(option("keep_on_failure"))
    if keep_on_failure and storage != "disk":
        raise pytest.UsageError("odradek keep-on-failure keeps a data directory: it needs --odradek-storage=disk")
    return Settings(storage, port, broker_config, mode, keep_on_failure, option("log_level") or None)


def pytest_configure(config: pytest.Config) -> None:
    worker_input = getattr(config, "workerinput", None)  # set by pytest-xdist in its workers
    worker = worker_input["workerid"] if worker_input else None
    config.stash[_STATE] = _SessionState(read_settings(config), worker)


def worker_port(port: int, worker: str | None) -> int:
    """The port of ``worker``'s broker: ``port`` outside xdist or when 0, else port + N for gwN."""
    if not port or worker is None:
        return port
    return port + int(worker.lstrip("gw"))


@pytest.fixture(scope="session")
def odradek_broker(pytestconfig: pytest.Config):
    """The session's broker, an ``odradek.Broker`` started on 127.0.0.1 (one per xdist worker)."""
    from odradek import Broker

    state = pytestconfig.stash[_STATE]
    settings = state.settings
    data_dir = None
    if settings.keep_on_failure and not {"log.dirs", "log.dir"} & settings.config.keys():
        # Made here rather than by Broker, which removes its temporary directory on stop.
        data_dir = state.data_dir = tempfile.mkdtemp(prefix=f"odradek-pytest-{state.worker or 'data'}-")
    options = {name: value for name, value in (("mode", settings.mode), ("log_level", settings.log_level)) if value}
    try:
        broker = Broker(settings.config, port=worker_port(settings.port, state.worker) or None,
                        data_dir=data_dir, memory=settings.storage == "memory", **options)
    except ValueError as error:  # ConfigError too: a broker config its definition refuses
        pytest.fail(f"odradek options: {error}", pytrace=False)
    broker.start()
    state.broker_data_dir = broker.data_dir
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def odradek_bootstrap_servers(odradek_broker) -> str:
    """``"127.0.0.1:PORT"``, the session broker's bootstrap.servers."""
    return odradek_broker.bootstrap_servers


@pytest.fixture
def odradek_clean(odradek_broker):
    """The session broker reset before the test (no topic, group, offset, transaction or fault
    left; client connections closed); returns the broker."""
    odradek_broker.reset()
    return odradek_broker


@pytest.fixture
def odradek_topic(request: pytest.FixtureRequest, odradek_broker):
    """``odradek_topic(partitions=1, config=None, name=None) -> str``: creates a topic on the
    session broker and returns its name, by default one made from the test's node id, unique in
    the session. ``config``: topic configs by Kafka's names (``{"cleanup.policy": "compact"}``)."""
    if "odradek_clean" in request.fixturenames:
        request.getfixturevalue("odradek_clean")  # the reset first, or it would drop this test's topics
    from odradek.broker.admin_client import KafkaClient
    from odradek.broker.embedded import config_text

    used = request.config.stash[_STATE].topic_names
    base = topic_name_base(request.node.nodeid)

    def create(partitions: int = 1, config=None, name: str | None = None) -> str:
        if name is None:
            name = unique_topic_name(base, used)
        configs = {str(key): config_text(value) for key, value in (config or {}).items()}
        with KafkaClient(odradek_broker.bootstrap_servers, client_id="odradek-pytest") as client:
            client.create_topic(name, partitions=partitions, replication_factor=1, configs=configs)
        used.add(name)
        return name

    return create


def topic_name_base(node_id: str) -> str:
    """A legal topic name from a test's node id: ``tests/test_orders.py::test_send[2]`` gives
    ``tests-test_orders-test_send-2`` (the end kept when it is long: the test's own name)."""
    text = node_id.replace(".py::", "::")
    text = _NOT_IN_TOPIC_NAME.sub("-", text).strip("-") or "topic"
    return text[-_TOPIC_NAME_ROOM:].lstrip("-_") or "topic"


def unique_topic_name(base: str, used: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... the first not in ``used``."""
    name, number = base, 1
    while name in used:
        number += 1
        name = f"{base}-{number}"
    return name


@pytest.hookimpl(trylast=True)  # after the runner's own, which tears down what -x or ^C left set up
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.settings.keep_on_failure:
        return
    if session.testsfailed and state.broker_data_dir is not None:
        line = state.broker_data_dir if state.worker is None else f"{state.worker}: {state.broker_data_dir}"
        state.kept.append(line)
        worker_output = getattr(session.config, "workeroutput", None)
        if worker_output is not None:
            worker_output[_WORKER_OUTPUT_KEY] = state.kept
    elif state.data_dir is not None:
        shutil.rmtree(state.data_dir, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist's controller, as a worker ends: the data directories it kept."""
    state = node.config.stash.get(_STATE, None)
    if state is not None:
        state.kept.extend(getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT_KEY, []))


def pytest_terminal_summary(terminalreporter) -> None:
    state = terminalreporter.config.stash.get(_STATE, None)
    if state is None or not state.kept or state.worker is not None:
        return
    terminalreporter.section("odradek")
    for line in state.kept:
        terminalreporter.write_line(f"a test failed: the broker's data is kept in {line}")

