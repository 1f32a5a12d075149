#!/usr/bin/env python3
"""Generate odradek's message codecs from Kafka's JSON schemas.

    python tools/generate_messages.py                 # write protocol/messages/ from Kafka's jars
    python tools/generate_messages.py --check         # exit 1, naming the files, if the output is stale
    python tools/generate_messages.py --spec DIR ...  # folders of schemas instead, newest first

The schemas are read straight out of Kafka's published jars (SCHEMA_JARS), which
compat/kafka_jars.py fetches once from Maven Central with ``mvn`` into compat/.cache (gitignored);
after that no Java, Maven or network is needed. Stdlib only: CI runs it with the bare system
python. How it works: docs/protocol.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "compat"))

from codegen.emit import HEADER, render_api_module, render_headers, render_registry, render_single_module  # noqa: E402
from codegen.spec import SchemaFile, api_module_name, load_spec, parse_schema, schemas_in_folder  # noqa: E402
from kafka_jars import KafkaJarsUnavailable, artifact_jars  # noqa: E402

OUTPUT = os.path.join(REPO, "protocol", "messages")
RUNTIME_TEMPLATE = os.path.join(HERE, "codegen", "runtime.py")

# The Kafka release whose protocol and record schemas odradek speaks.
KAFKA_RELEASE = "4.4.0"
# Kafka 4.0 removed the protocol versions of pre-2.1 clients from its schemas; 3.9's
# kafka-clients is the last to declare every version from 0 (3.9.2: the newest 3.9 release on
# Maven Central). It supplies only the versions 4.4's files no longer cover.
LEGACY_KAFKA_RELEASE = "3.9.2"
# Schema generations, newest first: (artifacts of group org.apache.kafka, version). Each
# (message, version) comes from the first generation with a file covering it. kafka-clients
# holds the requests, responses, headers and client-side data schemas (common/message); the
# others the records their component writes (kafka-metadata's are under common/metadata).
# kafka-coordinator-common holds no schema in 4.4.
SCHEMA_JARS = (
    (("kafka-clients", "kafka-group-coordinator", "kafka-transaction-coordinator",
      "kafka-share-coordinator", "kafka-metadata", "kafka-raft"), KAFKA_RELEASE),
    (("kafka-clients",), LEGACY_KAFKA_RELEASE),
)
KAFKA_GROUP = "org.apache.kafka"
JAR_CACHE = "schema-jars"  # compat/.cache/schema-jars
# Where a jar keeps its schemas: common/message/X.json, common/metadata/X.json.
SCHEMA_ENTRY = re.compile(r"common/[a-z]+/([A-Za-z0-9]+\.json)")


def schemas_in_jar(path: str, label: str) -> list[SchemaFile]:
    """The JSON schemas inside one jar, named ``<label>/<file>`` as sources."""
    schemas = []
    with zipfile.ZipFile(path) as jar:
        for entry in sorted(jar.namelist()):
            match = SCHEMA_ENTRY.fullmatch(entry)
            if match:
                text = jar.read(entry).decode("utf-8")
                schemas.append(parse_schema(text, f"{label}/{match.group(1)}"))
    return schemas


def schemas_from_jars() -> list[list[SchemaFile]]:
    """SCHEMA_JARS' generations, fetching the jars on the first run."""
    coordinates = [(KAFKA_GROUP, artifact, version)
                   for artifacts, version in SCHEMA_JARS for artifact in artifacts]
    jars = artifact_jars(JAR_CACHE, coordinates)
    generations = []
    for artifacts, version in SCHEMA_JARS:
        generation = []
        for artifact in artifacts:
            found = schemas_in_jar(str(jars[KAFKA_GROUP, artifact, version]), f"{artifact}-{version}")
            if not found:
                raise SystemExit(f"{artifact}-{version}.jar holds no schema under common/: has it moved?")
            generation.extend(found)
        generations.append(generation)
    return generations


def render_all(generations: list[list[SchemaFile]]) -> dict[str, str]:
    """Relative path under protocol/messages/ -> file content."""
    spec = load_spec(generations)
    files: dict[str, str] = {}
    with open(RUNTIME_TEMPLATE, encoding="utf-8") as handle:
        files["_runtime.py"] = HEADER + "# (copied from tools/codegen/runtime.py)\n" + handle.read()
    api_lines = []
    for key, (request, response) in sorted(spec.apis.items()):
        module = api_module_name(request.name)
        files[f"{module}.py"] = render_api_module(request, response)
        api_lines.append(f"    {module}: {request.name[:-7]} (key {key}, v{request.versions[0]}-{request.versions[-1]})")
    files["headers.py"] = render_headers(spec.headers)
    files["registry.py"] = render_registry(spec)
    record_lines = []
    metadata_types = []
    for message in spec.records:
        module = api_module_name(message.name)
        files[f"records/{module}.py"] = render_single_module(message, ".._runtime")
        record_lines.append(f"    {module}: {message.name} ({message.type}, v{message.versions[0]}-{message.versions[-1]})")
        if message.type == "metadata":
            metadata_types.append(f"    {message.api_key}: ({module!r}, {message.name!r}),")
    files["__init__.py"] = (
        HEADER
        + '"""Message codecs generated from Kafka\'s schemas: one module per API (request and response\n'
        + "classes), ``headers``, ``registry`` (API keys, lazily imported classes) and ``records``\n"
        + "(record-level schemas). See docs/protocol.md.\n\nAPI modules:\n"
        + "\n".join(api_lines)
        + '\n"""\n'
    )
    files["records/__init__.py"] = (
        HEADER
        + '"""Record-level schemas (__consumer_offsets, __transaction_state, KRaft metadata, raft,\n'
        + "share coordinator, consumer protocol, control records).\n\nModules:\n"
        + "\n".join(record_lines)
        + '\n"""\n\n'
        + "# KRaft metadata record type (the schema's apiKey) -> (module, class): what the frame of a\n"
        + "# __cluster_metadata record names (protocol/metadata.py imports each on first use).\n"
        + "METADATA_RECORD_TYPES = {\n"
        + "\n".join(sorted(metadata_types, key=lambda line: int(line.split(":")[0])))
        + "\n}\n"
    )
    return files


def existing_files(root: str) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                found.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--spec", metavar="DIR", action="append",
                        help="a folder of Kafka JSON schemas instead of the jars; repeat it for "
                             "several generations, newest first")
    parser.add_argument("--out", default=OUTPUT, help="output package folder (default: protocol/messages)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args(argv)

    if args.spec:
        generations = [schemas_in_folder(folder) for folder in args.spec]
    else:
        try:
            generations = schemas_from_jars()
        except KafkaJarsUnavailable as exc:
            print(f"cannot fetch Kafka's jars: {exc}", file=sys.stderr)
            return 2
    files = render_all(generations)
    present = existing_files(args.out) if os.path.isdir(args.out) else set()
    stale = sorted(present - set(files))
    changed = []
    for rel, content in sorted(files.items()):
        path = os.path.join(args.out, rel)
        try:
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != content:
            changed.append(rel)
            if not args.check:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(content)
    if args.check:
        if changed or stale:
            for rel in changed:
                print(f"out of date: {os.path.join(os.path.relpath(args.out), rel)}", file=sys.stderr)
            for rel in stale:
                print(f"not generated (remove it): {os.path.join(os.path.relpath(args.out), rel)}", file=sys.stderr)
            print("run: python tools/generate_messages.py", file=sys.stderr)
            return 1
        print(f"{os.path.relpath(args.out)}: {len(files)} files up to date")
        return 0
    for rel in stale:
        os.remove(os.path.join(args.out, rel))
    print(f"{os.path.relpath(args.out)}: {len(files)} files, {len(changed)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
