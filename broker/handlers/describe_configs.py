"""DescribeConfigs (key 32), versions 0-4.

Topics (resource type 2): every topic config (or the ``configuration_keys`` asked for), with the
effective value and its source and, when asked (v1+), its synonyms; see
``odradek.broker.config_view`` for the rules. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION.

Brokers (type 4): the resource name must be this node's id (or empty: the cluster-wide default
configs, of which there are none but the static ones yet); another id is INVALID_REQUEST, as
Kafka answers. Every broker config is reported, read-only (no dynamic broker configs yet).

Groups (type 32, KIP-848): every group config (``odradek.broker.groups.group_configs``), the
group's override (source GROUP_CONFIG) or the broker's value (DEFAULT_CONFIG); the group need
not exist; an empty name is INVALID_REQUEST.

Other resource types (broker loggers, client metrics) are INVALID_REQUEST with a message saying
they are not served.

Version notes: v0 has ``is_default`` instead of a source; v1+ source and synonyms; v3+ config
type and documentation (when ``include_documentation``).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest, DescribeConfigsResponse

from ..config import ConfigSource
from ..config_view import broker_config_views, group_config_views, topic_config_views
from ..topics import BROKER_RESOURCE, GROUP_RESOURCE, TOPIC_RESOURCE
from . import REGISTRY

Result = DescribeConfigsResponse.DescribeConfigsResult
Entry = DescribeConfigsResponse.DescribeConfigsResult.DescribeConfigsResourceResult
Synonym = Entry.DescribeConfigsSynonym



def _entries(views, version: int, include_synonyms: bool, include_documentation: bool):
    entries = []
    for view in views:
        entry = Entry(name=view.name, value=view.value, read_only=view.read_only, is_sensitive=view.sensitive)
        if version == 0:
            entry.is_default = view.source is ConfigSource.DEFAULT_CONFIG
        else:
            entry.config_source = int(view.source)
            if include_synonyms:
                entry.synonyms = [Synonym(name=name, value=value, source=int(source))
                                  for name, value, source in view.synonyms]
        if version >= 3:
            entry.config_type = view.definition.type.value
            if include_documentation:
                entry.documentation = view.definition.doc
        entries.append(entry)
    return entries


@REGISTRY.handles(DescribeConfigsRequest, DescribeConfigsResponse)
def handle_describe_configs(ctx, request: DescribeConfigsRequest) -> DescribeConfigsResponse:
    broker = ctx.broker
    version = ctx.api_version
    include_synonyms = version >= 1 and request.include_synonyms
    include_documentation = version >= 3 and request.include_documentation
    results = []
    for resource in request.resources:
        keys = set(resource.configuration_keys) if resource.configuration_keys is not None else None
        result = Result(error_code=error_codes.NONE, resource_type=resource.resource_type,
                        resource_name=resource.resource_name, configs=[])
        if resource.resource_type == TOPIC_RESOURCE:
            topic = broker.topics.get(resource.resource_name)
            if topic is None:
                result.error_code = error_codes.UNKNOWN_TOPIC_OR_PARTITION
                result.error_message = f"Topic {resource.resource_name} does not exist"
            else:
                result.configs = _entries(topic_config_views(broker.config, topic.configs, keys), version,
                                          include_synonyms, include_documentation)
        elif resource.resource_type == BROKER_RESOURCE:
            if resource.resource_name not in ("", str(broker.node_id)):
                result.error_code = error_codes.INVALID_REQUEST
                result.error_message = (f"Unexpected broker id, expected {broker.node_id} or empty string, "
                                        f"but received {resource.resource_name}")
            else:
                views = broker_config_views(broker.config, keys) if resource.resource_name else []
                result.configs = _entries(views, version, include_synonyms, include_documentation)
        elif resource.resource_type == GROUP_RESOURCE:
            if not resource.resource_name:
                result.error_code = error_codes.INVALID_REQUEST
                result.error_message = "Group name must not be empty"
            else:
                overrides = broker.topics.group_configs.get(resource.resource_name, {})
                result.configs = _entries(group_config_views(broker.config, overrides, keys), version,
                                          include_synonyms, include_documentation)
        else:
            result.error_code = error_codes.INVALID_REQUEST
            result.error_message = f"Resource type {resource.resource_type} is not served by odradek yet"
        results.append(result)
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)
