"""A broker without an authorizer answers the ACL APIs as Kafka 4.4 does (``AclApis`` with no
authorizer): DescribeAcls, CreateAcls and DeleteAcls are listed in ApiVersions (v1-3) and
answered SECURITY_DISABLED, at every version, through raw requests, confluent-kafka's admin
client and Kafka's own ``kafka-acls`` tool (``org.apache.kafka.tools.AclCommand``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from odradek.protocol import error_codes
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_acls import AclCreation, CreateAclsRequest
from odradek.protocol.messages.delete_acls import DeleteAclsFilter, DeleteAclsRequest
from odradek.protocol.messages.describe_acls import DescribeAclsRequest

from .conftest import RawClient

# Kafka's codes: ResourceType TOPIC 2, GROUP 3, USER 7 (v3+), ANY 1; PatternType LITERAL 3,
# PREFIXED 4, ANY 1, MATCH 2; AclOperation ANY 1, ALL 2, READ 3, WRITE 4; AclPermissionType
# ANY 1, DENY 2, ALLOW 3. 0 is UNKNOWN in each.
TOPIC, GROUP, USER, ANY = 2, 3, 7, 1
LITERAL, PREFIXED = 3, 4
READ, WRITE = 3, 4
ALLOW, DENY = 3, 2
ACL_VERSIONS = range(1, 4)
ACL_KEYS = {29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls"}


def test_acl_apis_are_advertised_v1_to_v3(raw_client):
    client = raw_client()
    for version in range(0, 5):
        response = client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), version)
        ranges = {item.api_key: (item.min_version, item.max_version) for item in response.api_keys}
        assert {key: ranges.get(key) for key in ACL_KEYS} == {29: (1, 3), 30: (1, 3), 31: (1, 3)}


@pytest.mark.parametrize("version", ACL_VERSIONS)
def test_describe_acls_is_security_disabled(raw_client, version):
    client = raw_client()
    request = DescribeAclsRequest(resource_type_filter=USER if version >= 3 else TOPIC, resource_name_filter=None,
                                  pattern_type_filter=ANY, principal_filter=None, host_filter=None,
                                  operation=ANY, permission_type=ANY)
    response = client.request(request, version)
    assert (response.error_code, response.error_message, response.resources) == (
        error_codes.SECURITY_DISABLED, "No Authorizer is configured on the broker", [])
    assert response.throttle_time_ms == 0


@pytest.mark.parametrize("version", ACL_VERSIONS)
def test_create_acls_answers_each_creation_security_disabled(raw_client, version):
    client = raw_client()
    creations = [AclCreation(resource_type=TOPIC, resource_name="t", resource_pattern_type=LITERAL,
                             principal="User:alice", host="*", operation=READ, permission_type=ALLOW),
                 AclCreation(resource_type=GROUP, resource_name="g", resource_pattern_type=PREFIXED,
                             principal="User:bob", host="10.0.0.1", operation=WRITE, permission_type=DENY)]
    response = client.request(CreateAclsRequest(creations=creations), version)
    assert [(r.error_code, r.error_message) for r in response.results] == [
        (error_codes.SECURITY_DISABLED, "No Authorizer is configured.")] * 2
    assert client.request(CreateAclsRequest(creations=[]), version).results == []
    # Nothing was stored: a describe still finds no authorizer, and no resources.
    described = client.request(DescribeAclsRequest(resource_type_filter=ANY, pattern_type_filter=ANY,
                                                   operation=ANY, permission_type=ANY), version)
    assert described.error_code == error_codes.SECURITY_DISABLED and described.resources == []


@pytest.mark.parametrize("version", ACL_VERSIONS)
def test_delete_acls_answers_each_filter_security_disabled(raw_client, version):
    client = raw_client()
    filters = [DeleteAclsFilter(resource_type_filter=ANY, resource_name_filter=None, pattern_type_filter=ANY,
                                principal_filter=None, host_filter=None, operation=ANY, permission_type=ANY),
               DeleteAclsFilter(resource_type_filter=TOPIC, resource_name_filter="t", pattern_type_filter=LITERAL,
                                principal_filter="User:alice", host_filter="*", operation=READ,
                                permission_type=ALLOW)]
    response = client.request(DeleteAclsRequest(filters=filters), version)
    assert [(r.error_code, r.error_message, r.matching_acls) for r in response.filter_results] == [
        (error_codes.SECURITY_DISABLED, "No Authorizer is configured.", [])] * 2


def _describe(**unknown):
    fields = dict(resource_type_filter=ANY, pattern_type_filter=ANY, operation=ANY, permission_type=ANY)
    fields.update(unknown)
    return DescribeAclsRequest(**fields)


def _create(**unknown):
    fields = dict(resource_type=TOPIC, resource_name="t", resource_pattern_type=LITERAL, principal="User:a",
                  host="*", operation=READ, permission_type=ALLOW)
    fields.update(unknown)
    return CreateAclsRequest(creations=[AclCreation(resource_type=TOPIC, resource_name="ok", principal="User:a",
                                                    host="*", operation=READ, permission_type=ALLOW),
                                        AclCreation(**fields)])


def _delete(**unknown):
    fields = dict(resource_type_filter=ANY, pattern_type_filter=ANY, operation=ANY, permission_type=ANY)
    fields.update(unknown)
    return DeleteAclsRequest(filters=[DeleteAclsFilter(**fields)])


@pytest.mark.parametrize("request_of, field", [
    (_describe, "resource_type_filter"), (_describe, "pattern_type_filter"), (_describe, "operation"),
    (_describe, "permission_type"),
    (_create, "resource_type"), (_create, "resource_pattern_type"), (_create, "operation"),
    (_create, "permission_type"),
    (_delete, "resource_type_filter"), (_delete, "pattern_type_filter"), (_delete, "operation"),
    (_delete, "permission_type"),
])
def test_an_unknown_element_closes_the_connection_as_kafkas_parsing_does(raw_client, request_of, field):
    client = raw_client()
    client.send(request_of(**{field: 0}), 3)
    assert client.is_closed_by_peer()
    # The broker is unharmed: a new connection is answered.
    assert raw_client().request(request_of(), 3).throttle_time_ms == 0


@pytest.mark.parametrize("request_of, literal", [
    (_describe, {"pattern_type_filter": LITERAL}), (_create, {}), (_delete, {"pattern_type_filter": LITERAL})])
def test_version_0_is_not_served(raw_client, request_of, literal):
    """Kafka 4 removed v0 of the ACL APIs (KIP-896): the connection is closed."""
    client = raw_client()
    client.send(request_of(**literal), 0)  # v0 carries LITERAL patterns only
    assert client.is_closed_by_peer()


def test_confluent_kafka_admin_sees_security_disabled(shared_broker):
    """create_acls and delete_acls fail with SECURITY_DISABLED; describe_acls gives an empty list
    (librdkafka drops DescribeAcls's top-level error): both exactly what the same calls give
    against Kafka 4.4.0 (compat/test_same_answers_as_kafka.py::test_acl_answers_agree)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)

    admin = AdminClient({"bootstrap.servers": shared_broker.bootstrap})
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    assert admin.describe_acls(any_filter, request_timeout=10).result(timeout=15) == []
    binding = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
                         AclPermissionType.ALLOW)
    futures = list(admin.create_acls([binding], request_timeout=10).values())
    futures += list(admin.delete_acls([any_filter], request_timeout=10).values())
    assert len(futures) == 2
    for future in futures:
        with pytest.raises(KafkaException) as failed:
            future.result(timeout=15)
        assert failed.value.args[0].code() == KafkaError.SECURITY_DISABLED
        assert failed.value.args[0].str() == "No Authorizer is configured."


@pytest.mark.slow
def test_kafka_acls_tool_reports_security_disabled(shared_broker, kafka_jars):
    server = ["--bootstrap-server", shared_broker.bootstrap]
    expected = {
        "--list": "No Authorizer is configured on the broker",
        "--add": "No Authorizer is configured on the broker",  # it lists the ACLs it is adding to first
        "--remove": "No Authorizer is configured.",
    }
    for args in (["--list"], ["--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"],
                 ["--remove", "--force", "--topic", "t"]):
        result = kafka_jars.run_java("org.apache.kafka.tools.AclCommand", server + args, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert (result.stdout + result.stderr).splitlines()[0] == (
            "Error while executing ACL command: org.apache.kafka.common.errors.SecurityDisabledException: "
            + expected[args[0]])


_codes = st.integers(-128, 127)
_names = st.one_of(st.none(), st.text(max_size=20))


@settings(max_examples=60, deadline=None)
@given(version=st.integers(1, 3), api=st.sampled_from(["describe", "create", "delete"]),
       entries=st.lists(st.tuples(_codes, _codes, _codes, _codes, _names), max_size=4))
def test_any_acl_request_is_answered_or_closed_as_kafka_would(shared_broker, version, api, entries):
    """Whatever the enum codes (Kafka reads them as int8; unknown non-zero codes parse), the
    answer is SECURITY_DISABLED for each entry, unless a code is UNKNOWN (0): then the
    connection closes."""
    if api == "describe":
        entries = entries[:1] or [(ANY, ANY, ANY, ANY, None)]
        resource, pattern, operation, permission, name = entries[0]
        request = DescribeAclsRequest(resource_type_filter=resource, resource_name_filter=name,
                                      pattern_type_filter=pattern, principal_filter=None, host_filter=None,
                                      operation=operation, permission_type=permission)
    elif api == "create":
        request = CreateAclsRequest(creations=[
            AclCreation(resource_type=r, resource_name=n or "", resource_pattern_type=p, principal="User:x", host="*",
                        operation=o, permission_type=m) for r, p, o, m, n in entries])
    else:
        request = DeleteAclsRequest(filters=[
            DeleteAclsFilter(resource_type_filter=r, resource_name_filter=n, pattern_type_filter=p,
                             principal_filter=None, host_filter=None, operation=o, permission_type=m)
            for r, p, o, m, n in entries])
    client = RawClient(shared_broker.host, shared_broker.port)
    try:
        if any(0 in entry[:4] for entry in entries):
            client.send(request, version)
            assert client.is_closed_by_peer()
            return
        response = client.request(request, version)
        if api == "describe":
            assert (response.error_code, response.resources) == (error_codes.SECURITY_DISABLED, [])
        else:
            results = response.results if api == "create" else response.filter_results
            assert [r.error_code for r in results] == [error_codes.SECURITY_DISABLED] * len(entries)
    finally:
        client.close()
