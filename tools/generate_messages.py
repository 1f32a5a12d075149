#!/usr/bin/env python3
"""Generate odradek's message codecs from Kafka's JSON schemas.

    python tools/generate_messages.py                 # write protocol/messages/ from ../shared/kafka-spec
    python tools/generate_messages.py --spec DIR      # any folder of schemas (e.g. Kafka's common/message)
    python tools/generate_messages.py --check         # exit 1, naming the files, if the output is stale

Stdlib only: CI runs it with the bare system python. How it works: docs/protocol.md.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from codegen.emit import HEADER, render_api_module, render_headers, render_registry, render_single_module  # noqa: E402
from codegen.spec import api_module_name, load_spec  # noqa: E402

OUTPUT = os.path.join(REPO, "protocol", "messages")
RUNTIME_TEMPLATE = os.path.join(HERE, "codegen", "runtime.py")


def render_all(spec_dir: str) -> dict[str, str]:
    """Relative path under protocol/messages/ -> file content."""
    spec = load_spec(spec_dir)
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
    for message in spec.records:
        module = api_module_name(message.name)
        files[f"records/{module}.py"] = render_single_module(message, ".._runtime")
        record_lines.append(f"    {module}: {message.name} ({message.type}, v{message.versions[0]}-{message.versions[-1]})")
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
        + '\n"""\n'
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
    parser.add_argument("--spec", default=os.path.join(REPO, "..", "shared", "kafka-spec"),
                        help="folder of Kafka JSON schemas (default: ../shared/kafka-spec)")
    parser.add_argument("--out", default=OUTPUT, help="output package folder (default: protocol/messages)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args(argv)

    files = render_all(os.path.normpath(args.spec))
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
