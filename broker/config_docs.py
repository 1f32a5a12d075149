"""Render the configuration reference (docs/configuration.md) from the config definitions.

Used by ``odradek config-docs`` and ``tools/gen_config_docs.py``; a test checks that the
committed document matches, so the reference cannot drift from the code.
"""

from __future__ import annotations

from .config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigDef

HEADER = """# Configuration reference

<!-- Generated from odradek/broker/config.py by `python tools/gen_config_docs.py`; do not edit. -->

odradek reads Kafka's configuration: the same names, types and defaults (Apache Kafka 3.9), in
Kafka's `server.properties` format (`odradek serve --config server.properties`), with
`--override key=value` (repeatable) on top, as Kafka's start script has. `odradek serve` with
no configuration at all listens on `localhost:9092` and keeps its data in `./odradek-data`.

* A key odradek does not know is reported with a warning at start and otherwise ignored.
* A value its definition refuses stops the start with an error naming the key (exit code 2).
* Keys marked **accepted, not applied** are validated so that a stock Kafka
  `server.properties` loads cleanly, but odradek does not act on them yet.
* Where odradek deliberately differs from Kafka, the entry says so.

Differences from Kafka's defaults, on purpose:

* `log.dir` / `log.dirs`: `./odradek-data` (Kafka: `/tmp/kafka-logs`). A development broker keeps
  its data next to where it was started, not in a directory the OS may wipe.
* `node.id`: 1, so that no configuration is needed (Kafka requires it in KRaft mode).
* `odradek.flush.on.acks.all` (odradek's own key, default true): a produce with `acks=all` is
  acknowledged only after its records are fsynced. Kafka relies on replication for durability;
  a single node has no replicas.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(definition: ConfigDef) -> str:
    if definition.default is None:
        return "null"
    value = definition.format(definition.default)
    return f"`{value}`" if value != "" else '""'


def _entry(definition: ConfigDef, broker_table: bool) -> list[str]:
    lines = [f"### `{definition.name}`", "", _cell(definition.doc), ""]
    rows = [("Type", definition.type.name.lower()), ("Default", _default(definition))]
    if definition.valid_values:
        rows.append(("Valid values", f"`{definition.valid_values}`"))
    rows.append(("Importance", definition.importance))
    if not broker_table and definition.synonyms:
        rows.append(("Broker synonyms", ", ".join(f"`{name}`" for name in definition.synonyms)))
    if not definition.applied:
        rows.append(("Status", "**accepted, not applied**"))
    if definition.odradek_note:
        rows.append(("odradek", _cell(definition.odradek_note)))
    lines += ["| | |", "| --- | --- |"] + [f"| {key} | {value} |" for key, value in rows] + [""]
    return lines


def render() -> str:
    lines = [HEADER, "## Broker configuration", ""]
    for name in sorted(BROKER_CONFIGS):
        lines += _entry(BROKER_CONFIGS[name], True)
    lines += ["## Topic configuration", "",
              "Set per topic (CreateTopics, `kafka-topics --config`, AlterConfigs); a topic that does not",
              "set one takes its broker synonym's value (the first synonym that is set), else the default.",
              ""]
    for name in sorted(TOPIC_CONFIGS):
        lines += _entry(TOPIC_CONFIGS[name], False)
    return "\n".join(lines).rstrip() + "\n"
