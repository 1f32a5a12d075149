"""Group tests reuse the broker fixtures (a real ``odradek serve`` per test or per module)."""

from __future__ import annotations

import time

import pytest

from broker.conftest import (  # noqa: F401  (broker_process: a fixture of tests/broker)
    BrokerProcess, RawClient, assert_no_traceback, broker_process, module_broker, raw_clients,
)
from odradek.protocol import error_codes as E
from odradek.protocol.messages.list_groups import ListGroupsRequest

# Fast group settings for tests that are not about the timings themselves: the first rebalance
# starts at once and clients may ask for short sessions.
FAST_GROUPS = ("group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=500", "num.partitions=4")


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory):
    """One broker with fast group settings for a whole test module (tests use distinct names)."""
    yield from module_broker(tmp_path_factory, "group-broker", FAST_GROUPS)


@pytest.fixture
def group_client(group_broker):
    yield from raw_clients(group_broker.host, group_broker.port)


def wait_until_loaded(client, timeout=60.0):
    """ListGroups answers COORDINATOR_LOAD_IN_PROGRESS while any partition is replayed."""
    deadline = time.monotonic() + timeout
    while True:
        error = client.request(ListGroupsRequest(), 4).error_code
        if error != E.COORDINATOR_LOAD_IN_PROGRESS:
            assert error == E.NONE
            return
        assert time.monotonic() < deadline, "the coordinator never finished loading"
        time.sleep(0.01)
