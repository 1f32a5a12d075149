"""Apache Kafka's own jars, fetched from Maven Central, as test tools.

Run from the repository root (or import it)::

    python compat/kafka_jars.py [--version 4.4.0]        # fetch, print the lib directory
    python compat/kafka_jars.py --run org.apache.kafka.tools.DumpLogSegments --files x.log

The jars are resolved with Maven (``mvn dependency:copy-dependencies`` over a small pom written
next to them) into ``compat/.cache/kafka-<version>/lib``, which is gitignored: nothing fetched
is ever committed. A marker file written after a complete copy makes a second run instant (no
Maven, no network); an interrupted copy leaves no marker and is redone, and so is a copy made
for another list of artifacts (the marker names them). Concurrent first runs
(two test processes) serialise on a lock file.

What is fetched is what Kafka's own distribution puts in ``libs/`` for the tools we use:
``kafka_2.13`` (the broker ``kafka.Kafka``, ``kafka.tools.StorageTool``),
``kafka-tools`` (``DumpLogSegments``, ``TopicCommand``, ``ConfigCommand``, ``GetOffsetShell``, console
producer/consumer, ...), ``kafka-storage`` and
``kafka-server-common`` and ``kafka-metadata`` (``StorageTool``'s pieces), ``kafka-clients``,
``kafka-streams`` (the exactly-once Streams application of the transaction tests),
plus a log4j2 backend so that the JVMs log through a configuration we choose, not stderr noise.

``run_java(main_class, args)`` runs a main class on that classpath with a bounded wall-clock
time: every JVM a test starts must end, whatever Kafka does.

``artifact_jars(name, coordinates)`` fetches single jars, without their dependencies, into
``compat/.cache/<name>`` the same way (one Maven run, a marker, a lock): the message generator
reads Kafka's JSON schemas out of them (tools/generate_messages.py).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Pinned so that the fixtures and the test expectations do not move under us; a recent 4.x
# (KRaft only, Java 17) release. Override with ODRADEK_KAFKA_VERSION to try another one.
DEFAULT_VERSION = "4.4.0"
LOG4J_VERSION = "2.24.3"

# Main classes, as named in Kafka 4.x (DumpLogSegments and the CLI tools moved from kafka.tools /
# kafka.admin in the core jar to org.apache.kafka.tools in kafka-tools).
DUMP_LOG_SEGMENTS = "org.apache.kafka.tools.DumpLogSegments"
STORAGE_TOOL = "kafka.tools.StorageTool"
KAFKA_SERVER = "kafka.Kafka"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
# Kafka 4.4 moved ConfigCommand from kafka.admin (the core jar, Scala) to kafka-tools (Java).
CONFIG_COMMAND = "org.apache.kafka.tools.ConfigCommand"
DELETE_RECORDS_COMMAND = "org.apache.kafka.tools.DeleteRecordsCommand"
LOG_DIRS_COMMAND = "org.apache.kafka.tools.LogDirsCommand"
METADATA_QUORUM_COMMAND = "org.apache.kafka.tools.MetadataQuorumCommand"

# compat/.cache (gitignored); ODRADEK_KAFKA_CACHE points elsewhere (a CI cache directory).
CACHE_ROOT = Path(os.environ.get("ODRADEK_KAFKA_CACHE") or Path(__file__).resolve().parent / ".cache")
_COMPLETE_MARKER = "COMPLETE"

# Artifacts of group org.apache.kafka that the tools and a KRaft broker need; Maven adds
# their transitive runtime dependencies (scala-library, jackson, zstd-jni, lz4, snappy, ...).
KAFKA_ARTIFACTS = [
    "kafka_2.13",
    "kafka-tools",
    "kafka-storage",
    "kafka-server-common",
    "kafka-server",
    "kafka-metadata",
    "kafka-raft",
    "kafka-clients",
    "kafka-group-coordinator",
    "kafka-transaction-coordinator",
    "kafka-share-coordinator",
    "kafka-coordinator-common",
    "kafka-streams",
]

# Kafka's distribution logs through log4j2 behind slf4j; the poms only declare the API.
LOGGING_ARTIFACTS = [
    ("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
]

# Quiet by default: warnings and errors on stderr, nothing on stdout (tests parse stdout).
_LOG4J2_PROPERTIES = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
"""


class KafkaJarsUnavailable(RuntimeError):
    """Java or Maven is missing, or Maven could not resolve the jars."""


def kafka_version() -> str:
    return os.environ.get("ODRADEK_KAFKA_VERSION", DEFAULT_VERSION)


def home(version: str | None = None) -> Path:
    """``compat/.cache/kafka-<version>``: the pom, ``lib/`` and the log configuration."""
    return CACHE_ROOT / f"kafka-{version or kafka_version()}"


def _pom(version: str) -> str:
    dependencies = [("org.apache.kafka", artifact, version) for artifact in KAFKA_ARTIFACTS]
    dependencies += LOGGING_ARTIFACTS
    rendered = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*dependency)
        for dependency in dependencies
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by compat/kafka_jars.py: the jars Kafka's tools need, copied to lib/. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>odradek.compat</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{rendered}
  </dependencies>
</project>
"""


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaJarsUnavailable(
            f"{name!r} is not on PATH; Kafka's jars need a JDK (17+) and Maven "
            "(Debian: apt-get install openjdk-17-jdk-headless maven)"
        )
    return path


def ensure(version: str | None = None, *, timeout: float = 900.0) -> Path:
    """Make sure the jars of ``version`` are in ``home(version)/lib``; return that directory.

    Instant when a previous run completed (the marker file exists)."""
    version = version or kafka_version()
    root = home(version)
    lib = root / "lib"
    require_tool("java")  # cached jars are no use without it: fail here, clearly

    def fetch() -> None:
        (root / "pom.xml").write_text(_pom(version))
        _run_maven(root, lib, ["dependency:copy-dependencies", "-DincludeScope=runtime"], timeout)
        if not any(lib.glob("kafka_2.13-*.jar")):
            raise KafkaJarsUnavailable(f"Maven finished but {lib} has no kafka_2.13 jar")
        (root / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)

    # The marker names what was fetched: a cache made before an artifact was added is redone.
    _fetch_once(root, "".join(f"{artifact}\n" for artifact in KAFKA_ARTIFACTS), fetch)
    return lib


def artifact_jars(name: str, coordinates: list[tuple[str, str, str]], *,
                  timeout: float = 900.0) -> dict[tuple[str, str, str], Path]:
    """Fetch the jars ``(group, artifact, version)`` (no dependencies) into ``compat/.cache/<name>``.

    Returns coordinate -> jar path. Instant, with neither Java nor Maven, when a previous run
    fetched the same coordinates; a changed list is fetched afresh."""
    root = CACHE_ROOT / name
    lib = root / "lib"
    wanted = "".join(f"{group}:{artifact}:{version}\n" for group, artifact, version in coordinates)

    def fetch() -> None:
        (root / "pom.xml").write_text(_copy_pom(name, coordinates, lib))
        _run_maven(root, lib, ["dependency:copy"], timeout)

    _fetch_once(root, wanted, fetch)
    jars = {coordinate: lib / f"{coordinate[1]}-{coordinate[2]}.jar" for coordinate in coordinates}
    missing = [str(jar) for jar in jars.values() if not jar.is_file()]
    if missing:
        raise KafkaJarsUnavailable(f"Maven finished but these jars are missing: {missing}")
    return jars


def _copy_pom(name: str, coordinates: list[tuple[str, str, str]], lib: Path) -> str:
    items = "\n".join(
        "        <artifactItem><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>"
        "<type>jar</type></artifactItem>".format(*coordinate)
        for coordinate in coordinates
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by compat/kafka_jars.py: single jars copied to lib/ by dependency:copy. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>odradek.compat</groupId>
  <artifactId>{name}</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <configuration>
          <outputDirectory>{lib}</outputDirectory>
          <artifactItems>
{items}
          </artifactItems>
        </configuration>
      </plugin>
    </plugins>
  </build>
</project>
"""


def _fetch_once(root: Path, wanted: str, fetch) -> None:
    """Run ``fetch()`` unless the marker of ``root`` says a run for ``wanted`` completed.

    Concurrent first runs serialise on a lock file; the marker is written last, so an
    interrupted fetch is redone."""
    marker = root / _COMPLETE_MARKER

    def done() -> bool:
        try:
            return marker.read_text().partition("fetched in")[0] == wanted
        except FileNotFoundError:
            return False

    if done():
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done():
            return  # another process fetched them while we waited
        marker.unlink(missing_ok=True)
        started = time.monotonic()
        fetch()
        marker.write_text(f"{wanted}fetched in {time.monotonic() - started:.1f}s\n")


def _run_maven(root: Path, lib: Path, goal: list[str], timeout: float) -> None:
    """Run a goal of Maven on ``root/pom.xml`` that fills ``lib`` (emptied first)."""
    mvn = require_tool("mvn")
    # A partial copy from an interrupted run may hold stale jars: start from an empty lib/.
    if lib.exists():
        shutil.rmtree(lib)
    command = [mvn, "-q", "-B", "-f", str(root / "pom.xml"), *goal, f"-DoutputDirectory={lib}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise KafkaJarsUnavailable(f"Maven did not finish within {timeout}s") from exc
    if result.returncode != 0:
        raise KafkaJarsUnavailable(
            f"Maven failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def classpath(version: str | None = None) -> str:
    """The classpath (``lib/*`` jars, sorted) of Kafka ``version``, fetching it if needed."""
    lib = ensure(version)
    return os.pathsep.join(str(jar) for jar in sorted(lib.glob("*.jar")))


def java_command(main_class: str, args: list[str] = (), *, version: str | None = None,
                 heap: str = "256m", jvm_options: list[str] = ()) -> list[str]:
    """The argv that runs ``main_class`` with Kafka's jars (a small heap, quiet logging)."""
    java = require_tool("java")
    cp = classpath(version)
    log_config = home(version) / "log4j2.properties"
    return [
        java, f"-Xmx{heap}", "-Xss1m",
        # Short-lived tool JVMs on a shared 2-core machine: C1 only, one GC thread.
        "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:+UseSerialGC",
        "-Djava.awt.headless=true",
        # Text in and out as UTF-8 whatever the locale (a CI's C locale would print '?').
        "-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-Dsun.stderr.encoding=UTF-8",
        f"-Dlog4j2.configurationFile={log_config}",
        f"-Dlog4j.configurationFile={log_config}",
        *jvm_options,
        "-cp", cp, main_class, *args,
    ]


def run_java(main_class: str, args: list[str] = (), *, timeout: float = 120.0,
             version: str | None = None, input: str | None = None, check: bool = True,
             heap: str = "256m", jvm_options: list[str] = (), cwd: str | None = None,
             ) -> subprocess.CompletedProcess:
    """Run ``main_class`` to completion (killed after ``timeout`` seconds); text output.

    ``check`` raises ``subprocess.CalledProcessError`` (with the output) on a non-zero exit."""
    command = java_command(main_class, list(args), version=version, heap=heap,
                           jvm_options=list(jvm_options))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            input=input, cwd=cwd)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command[-len(args) - 1:],
                                            result.stdout, result.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=None, help=f"Kafka version (default {kafka_version()})")
    parser.add_argument("--classpath", action="store_true", help="print the classpath")
    parser.add_argument("--run", metavar="MAIN_CLASS",
                        help="run a main class with the jars; every later argument is its own")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after --run MAIN_CLASS belongs to the Java program, --help included.
    run_args: list[str] = []
    if "--run" in argv:
        cut = argv.index("--run") + 2
        argv, run_args = argv[:cut], argv[cut:]
    options = parser.parse_args(argv)
    started = time.monotonic()
    lib = ensure(options.version)
    if options.run:
        command = java_command(options.run, run_args, version=options.version)
        return subprocess.call(command)
    if options.classpath:
        print(classpath(options.version))
    else:
        print(f"{lib} ({len(list(lib.glob('*.jar')))} jars, {time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
