"""What AlterConfigs and IncrementalAlterConfigs share: resolving a resource and applying a
new set of topic or group overrides (validated as a whole before anything changes)."""

from __future__ import annotations

from odradek.protocol import error_codes

from ..config import TOPIC_CONFIGS, ConfigType
from ..groups.group_configs import GROUP_CONFIGS, set_group_configs
from ..topics import BROKER_RESOURCE, GROUP_RESOURCE, TOPIC_RESOURCE, TopicError

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def alter_resource(broker, resource_type: int, resource_name: str, change, validate_only: bool) -> None:
    """``change(current_overrides) -> new_overrides`` for a topic or a group; raises TopicError
    with the code and message to answer."""
    if resource_type == TOPIC_RESOURCE:
        topic = broker.topics.get(resource_name)
        if topic is None:
            raise TopicError(error_codes.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {resource_name} does not exist")
        new = change(dict(topic.configs))
        if validate_only:
            broker.check_topic_configs(new)
        else:
            broker.set_topic_configs(topic, new)
        return
    if resource_type == GROUP_RESOURCE:
        current = dict(broker.topics.group_configs.get(resource_name, {}))
        set_group_configs(broker, resource_name, change(current), validate_only)
        return
    if resource_type == BROKER_RESOURCE:
        raise TopicError(error_codes.INVALID_CONFIG,
                         "odradek has no dynamic broker configs yet: set them in server.properties")
    raise TopicError(error_codes.INVALID_REQUEST, f"Resource type {resource_type} is not served by odradek yet")


def incremental_change(operations, resource_type: int = TOPIC_RESOURCE):
    """The ``change`` function for IncrementalAlterConfigs ``operations`` ((name, op, value)) on
    a topic or a group: SET, DELETE (back to the default), APPEND / SUBTRACT (list configs only:
    items added if absent / removed, starting from the current value or the default)."""
    if resource_type == GROUP_RESOURCE:
        definitions, kind = {name: entry[0] for name, entry in GROUP_CONFIGS.items()}, "group"
    else:
        definitions, kind = TOPIC_CONFIGS, "topic"
    names = [name for name, _, _ in operations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TopicError(error_codes.INVALID_CONFIG, f"Error due to duplicate config keys: {duplicates}")

    def change(overrides: dict) -> dict:
        for name, operation, value in operations:
            definition = definitions.get(name)
            if definition is None:
                raise TopicError(error_codes.INVALID_CONFIG, f"Unknown {kind} config name: {name}")
            if operation == SET:
                overrides[name] = value
            elif operation == DELETE:
                overrides.pop(name, None)
            elif operation in (APPEND, SUBTRACT):
                if definition.type is not ConfigType.LIST:
                    verb = "append" if operation == APPEND else "subtract"
                    raise TopicError(error_codes.INVALID_CONFIG,
                                     f"Config value {verb} is not allowed for config key: {name}")
                current = overrides.get(name)
                items = ([item.strip() for item in current.split(",") if item.strip()] if current is not None
                         else list(definition.default or []))
                given = [item.strip() for item in (value or "").split(",") if item.strip()]
                if operation == APPEND:
                    items += [item for item in given if item not in items]
                else:
                    items = [item for item in items if item not in given]
                overrides[name] = ",".join(items)
            else:
                raise TopicError(error_codes.INVALID_REQUEST, f"Unknown config operation {operation}")
        return overrides

    return change
