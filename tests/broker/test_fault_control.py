"""Faults through the control API's three faces: HTTP (POST/GET/DELETE /v1/faults, 400 with the
reason for a spec that is not one, 404 for a fault that is not there), the embedded broker's
Python methods in a child process, and ``odradek fault add|list|remove|clear``; a reset removes
every fault."""

from __future__ import annotations

import subprocess
import sys

import pytest

from odradek import Broker
from odradek.broker.cli_control import CONTROL_ENV
from odradek.broker.control.client import ControlClient, ControlError
from odradek.protocol import error_codes as E
from odradek.protocol.messages.metadata import MetadataRequest

from .conftest import RawClient, subprocess_env


@pytest.fixture(scope="module")
def running():
    with Broker(memory=True) as broker:
        yield broker


@pytest.fixture
def control(running):
    client = ControlClient(running.control_url)
    yield client
    client.call("DELETE", "/v1/faults")
    client.close()


def test_http_add_list_get_remove_clear(control):
    added = control.call("POST", "/v1/faults", {"action": "error", "api": 3, "error": 6, "count": 2,
                                                "client_id": "me"})
    assert added == {"id": added["id"], "action": "error", "api": "Metadata", "error": "NOT_LEADER_OR_FOLLOWER",
                     "count": 2, "client_id": "me", "hits": 0, "remaining": 2, "expires_in_ms": None, "active": True}
    second = control.call("POST", "/v1/faults", {"action": "delay", "delay_ms": 10, "duration_ms": 60000})
    assert 0 < second["expires_in_ms"] <= 60000
    assert [fault["id"] for fault in control.call("GET", "/v1/faults")["faults"]] == [added["id"], second["id"]]
    assert control.call("GET", f"/v1/faults/{added['id']}") == added
    removed = control.call("DELETE", f"/v1/faults/{added['id']}")
    assert (removed["id"], removed["active"]) == (added["id"], False)
    assert control.call("DELETE", "/v1/faults") == {"removed": 1}
    assert control.call("GET", "/v1/faults") == {"faults": []}


@pytest.mark.parametrize("body, says", [
    ({"action": "explode"}, "action: one of"),
    ({"action": "error", "error": "NOT_A_KAFKA_ERROR"}, "no error named"),
    ({"action": "error", "error": 6, "api": "Frobnicate"}, "no API named"),
    ({"action": "delay"}, "needs delay_ms"),
    ({"action": "offline", "topic": "t", "count": 1}, "count does not apply to offline"),
    ([1, 2], "JSON object"),
])
def test_http_refuses_a_spec_that_is_not_one_with_the_reason(control, body, says):
    with pytest.raises(ControlError) as raised:
        control.call("POST", "/v1/faults", body)
    assert raised.value.status == 400 and says in raised.value.message


def test_http_a_fault_that_is_not_there(control):
    for method in ("GET", "DELETE"):
        with pytest.raises(ControlError) as raised:
            control.call(method, "/v1/faults/999")
        assert raised.value.status == 404
    with pytest.raises(ControlError) as raised:
        control.call("DELETE", "/v1/faults/x")
    assert raised.value.status == 400


def test_python_api_in_a_child_process_and_a_reset_removes_faults():
    with Broker(mode="process", memory=True) as broker:
        fault = broker.add_fault("error", api="Metadata", error="LEADER_NOT_AVAILABLE", count=1)
        client = RawClient(broker.host, broker.port)
        try:
            assert client.request(MetadataRequest(topics=None), 13).error_code == E.LEADER_NOT_AVAILABLE
            assert client.request(MetadataRequest(topics=None), 13).error_code == E.NONE
        finally:
            client.close()
        [listed] = broker.faults()
        assert (listed["id"], listed["hits"], listed["active"]) == (fault["id"], 1, False)
        assert broker.remove_fault(fault["id"])["hits"] == 1
        with pytest.raises(ControlError):
            broker.add_fault("error")  # no error given
        broker.add_fault("no_response", api="Fetch")
        broker.add_fault("offline", topic="t")
        assert broker.clear_faults() == 2
        broker.add_fault("offline", topic="t")
        broker.reset()
        assert broker.faults() == []


def odradek_fault(*args, control_url=None, env_url=None, cwd=None):
    command = [sys.executable, "-m", "odradek.broker.cli", "fault", *args]
    if control_url is not None:
        command += ["--control", control_url]
    env = subprocess_env()
    env.pop(CONTROL_ENV, None)
    if env_url is not None:
        env[CONTROL_ENV] = env_url
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=cwd)


def test_cli_add_list_remove_clear(running):
    url = running.control_url
    added = odradek_fault("add", "error", "--api", "Produce", "--error", "NOT_LEADER_OR_FOLLOWER", "--count", "3",
                          "--topic", "orders", control_url=url)
    assert added.returncode == 0, added.stderr
    fault_id = added.stdout.split()[0]
    assert added.stdout.strip() == (f"{fault_id} error api=Produce error=NOT_LEADER_OR_FOLLOWER count=3 topic=orders "
                                    "hits=0 remaining=3 active")
    odradek_fault("add", "offline", "--topic", "orders", "--partition", "1", "--duration-ms", "60000",
                  control_url=url)
    listing = odradek_fault("list", control_url=url)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 2
    assert listing.stdout.splitlines()[1].split()[1:6] == ["offline", "error=NOT_LEADER_OR_FOLLOWER",
                                                           "duration_ms=60000", "topic=orders", "partition=1"]
    removed = odradek_fault("remove", fault_id, control_url=url)
    assert removed.returncode == 0 and removed.stdout.split()[0] == fault_id and "inactive" in removed.stdout
    cleared = odradek_fault("clear", env_url=url)  # the URL from the environment
    assert (cleared.returncode, cleared.stdout) == (0, "removed 1\n")
    assert running.faults() == []


def test_cli_errors(running, tmp_path):
    refused = odradek_fault("add", "error", "--api", "Produce", control_url=running.control_url)
    assert refused.returncode == 1 and "needs error" in refused.stderr
    missing = odradek_fault("remove", "999", control_url=running.control_url)
    assert missing.returncode == 1 and "no fault 999" in missing.stderr
    assert odradek_fault("add", "explode", control_url=running.control_url).returncode == 2
    no_url = odradek_fault("list", cwd=tmp_path)  # no --control, no environment, no odradek up here
    assert no_url.returncode == 2 and "--control" in no_url.stderr
    unreachable = odradek_fault("list", control_url="http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
