"""Apache Kafka's own CLI tools (Java client 4.x) against odradek: kafka-topics, the console
producer (idempotent by default) and consumer, kafka-configs, kafka-get-offsets and
kafka-delete-records. Slow (a JVM per tool); skipped when Java or Kafka's jars are absent (they
are fetched from Maven Central by ``python compat/kafka_jars.py`` into compat/.cache)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from compat_scripts import load_compat_script

pytestmark = pytest.mark.slow

KAFKA_JARS = load_compat_script("kafka_jars")


def _classpath() -> str | None:
    """The pinned Kafka's jars (compat/kafka_jars.py), if fetched: not whichever version the
    cache happens to hold too."""
    jars = sorted((KAFKA_JARS.home() / "lib").glob("*.jar"))
    if not jars or shutil.which("java") is None:
        return None
    return ":".join(str(jar) for jar in jars)


CLASSPATH = _classpath()


def tool(main_class: str, *args: str, stdin: str | None = None) -> str:
    if CLASSPATH is None:
        pytest.skip("java or Kafka's jars (compat/.cache) not available")
    result = subprocess.run(["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", CLASSPATH, main_class, *args],
                            input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_kafka_cli_tools(shared_broker, tmp_path):
    server = ["--bootstrap-server", shared_broker.bootstrap]
    assert "Created topic jt" in tool("org.apache.kafka.tools.TopicCommand", *server, "--create", "--topic", "jt",
                                      "--partitions", "2")
    described = tool("org.apache.kafka.tools.TopicCommand", *server, "--describe", "--topic", "jt")
    assert "PartitionCount: 2" in described and "Leader: 1" in described
    tool("org.apache.kafka.tools.ConsoleProducer", *server, "--topic", "jt", "--reader-property", "parse.key=true",
         "--reader-property", "key.separator=:", stdin="k1:hello\nk1:world\n")
    offsets = tool("org.apache.kafka.tools.GetOffsetShell", *server, "--topic", "jt")
    filled = [line for line in offsets.split() if line.endswith(":2")]
    assert len(filled) == 1, offsets  # both records with one key went to one partition
    partition = filled[0].split(":")[1]
    consumed = tool("org.apache.kafka.tools.consumer.ConsoleConsumer", *server, "--topic", "jt", "--partition",
                    partition, "--offset", "earliest", "--max-messages", "2", "--timeout-ms", "20000",
                    "--formatter-property", "print.key=true")
    assert consumed.splitlines()[:2] == ["k1\thello", "k1\tworld"]
    tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--alter", "--entity-type", "topics", "--entity-name", "jt",
         "--add-config", "retention.ms=1000,cleanup.policy=[delete,compact]")
    configs = tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--describe", "--entity-type", "topics", "--entity-name", "jt")
    assert "retention.ms=1000" in configs and "cleanup.policy=delete,compact" in configs
    offsets_file = tmp_path / "delete.json"
    offsets_file.write_text('{"partitions":[{"topic":"jt","partition":%s,"offset":1}],"version":1}' % partition)
    deleted = tool("org.apache.kafka.tools.DeleteRecordsCommand", *server, "--offset-json-file", str(offsets_file))
    assert "low_watermark: 1" in deleted
    tool("org.apache.kafka.tools.TopicCommand", *server, "--delete", "--topic", "jt")
    assert "jt" not in tool("org.apache.kafka.tools.TopicCommand", *server, "--list").split()
