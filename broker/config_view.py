"""Configs as DescribeConfigs and CreateTopics (v5+) report them: value, source, synonyms.

Kafka's rules (``ConfigHelper`` / ``DescribeConfigsResponse``), as applied here:

* A topic config's value is the topic's override (source DYNAMIC_TOPIC_CONFIG) if any, else the
  value of the first of its broker synonyms that is set (STATIC_BROKER_CONFIG), else the
  default (DEFAULT_CONFIG).
* Its synonyms, most specific first: the override, every broker synonym that is set
  (STATIC_BROKER_CONFIG), every broker synonym that has a default (DEFAULT_CONFIG, named by the
  broker key: ``retention.ms`` lists ``log.retention.hours=168``).
* A broker config's source is STATIC_BROKER_CONFIG when the file or an override set it, else
  DEFAULT_CONFIG; a null default is reported as a null value. Sensitive (PASSWORD) values are
  reported as null.
* Nothing is read-only except what dynamic broker configs will make so (none yet: broker
  configs are all read-only until AlterConfigs for brokers exists, as Kafka reports static
  broker configs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigDef, ConfigSource


@dataclass
class ConfigView:
    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    sensitive: bool
    definition: ConfigDef
    synonyms: list[tuple[str, str | None, ConfigSource]] = field(default_factory=list)


def topic_config_views(broker_config, overrides: dict[str, str], keys=None) -> list[ConfigView]:
    views = []
    for name, definition in TOPIC_CONFIGS.items():
        if keys is not None and name not in keys:
            continue
        synonyms: list[tuple[str, str | None, ConfigSource]] = []
        if name in overrides:
            synonyms.append((name, overrides[name], ConfigSource.DYNAMIC_TOPIC_CONFIG))
        for broker_key in definition.synonyms:
            if broker_config.is_set(broker_key):
                synonyms.append((broker_key, BROKER_CONFIGS[broker_key].format(broker_config[broker_key]),
                                 ConfigSource.STATIC_BROKER_CONFIG))
        for broker_key in definition.synonyms:
            default = BROKER_CONFIGS[broker_key].default
            if default is not None:
                synonyms.append((broker_key, BROKER_CONFIGS[broker_key].format(default), ConfigSource.DEFAULT_CONFIG))
        if name in overrides:
            value, source = overrides[name], ConfigSource.DYNAMIC_TOPIC_CONFIG
        else:
            raw, broker_key = broker_config.broker_value_for_topic_config(name)
            value = definition.format(raw)
            source = (ConfigSource.STATIC_BROKER_CONFIG
                      if any(broker_config.is_set(key) for key in definition.synonyms)
                      else ConfigSource.DEFAULT_CONFIG)
        if definition.sensitive:
            value = None
        views.append(ConfigView(name, value, source, False, definition.sensitive, definition, synonyms))
    return views


def broker_config_views(broker_config, keys=None) -> list[ConfigView]:
    views = []
    for name, definition in BROKER_CONFIGS.items():
        if keys is not None and name not in keys:
            continue
        source = ConfigSource.STATIC_BROKER_CONFIG if broker_config.is_set(name) else ConfigSource.DEFAULT_CONFIG
        value = None if definition.sensitive else definition.format(broker_config[name])
        synonyms = [(name, value, source)]
        if source is ConfigSource.STATIC_BROKER_CONFIG and definition.default is not None:
            synonyms.append((name, definition.format(definition.default), ConfigSource.DEFAULT_CONFIG))
        views.append(ConfigView(name, value, source, True, definition.sensitive, definition, synonyms))
    return views


def group_config_views(broker_config, overrides: dict[str, str], keys=None) -> list[ConfigView]:
    """A group's configs (ConfigResource GROUP): its override (source GROUP_CONFIG) or the
    broker's value for it (DEFAULT_CONFIG, as Kafka's ConfigHelper reports it), one synonym."""
    from .groups.group_configs import GROUP_CONFIGS, effective_values

    values = effective_values(broker_config, overrides)
    views = []
    for name, (definition, _, _) in GROUP_CONFIGS.items():
        if keys is not None and name not in keys:
            continue
        source = ConfigSource.GROUP_CONFIG if name in overrides else ConfigSource.DEFAULT_CONFIG
        value = definition.format(values[name])
        views.append(ConfigView(name, value, source, False, False, definition, [(name, value, source)]))
    return views
