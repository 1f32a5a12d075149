"""Fixtures for the stock-client compatibility tests: one real ``odradek serve`` per module,
with the fast group settings of tests/groups (the first rebalance at once, short sessions)."""

from __future__ import annotations

import pytest

from broker.conftest import RawClient
from groups.conftest import group_broker  # noqa: F401  (a fixture: the broker of tests/groups)


@pytest.fixture(scope="module")
def client_broker(group_broker):  # noqa: F811
    """tests/groups' module broker, which also fails the module if the broker logged a traceback."""
    return group_broker


@pytest.fixture
def setup_client(client_broker):
    client = RawClient(client_broker.host, client_broker.port)
    yield client
    client.close()
