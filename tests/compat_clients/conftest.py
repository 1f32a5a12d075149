"""Fixtures for the stock-client compatibility tests: one real ``odradek serve`` per module,
with the fast group settings of tests/groups (the first rebalance at once, short sessions)."""

from __future__ import annotations

import pytest

from broker.conftest import BrokerProcess, RawClient
from groups.conftest import FAST_GROUPS, assert_no_traceback


@pytest.fixture(scope="module")
def client_broker(tmp_path_factory):
    directory = tmp_path_factory.mktemp("client-broker")
    process = BrokerProcess(directory / "data", FAST_GROUPS, directory / "broker.log")
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
    assert_no_traceback(process)  # no handler or coordinator failed on what the clients sent


@pytest.fixture
def setup_client(client_broker):
    client = RawClient(client_broker.host, client_broker.port)
    yield client
    client.close()
