"""The generator itself (tools/generate_messages.py, tools/codegen/): comment stripping, version
ranges, merging of schema generations, reading Kafka's jars, determinism and the --check mode.

The tests that run the generator on Kafka's jars fetch them (compat/kafka_jars.py, cached in
compat/.cache) like ``tox -e check`` does; they need Maven only on the first run."""

import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import generate_messages  # noqa: E402
from codegen.spec import SchemaError, Versions, load_spec, schemas_in_folder, snake_case, strip_comments  # noqa: E402


def test_comments_are_stripped_only_outside_strings():
    text = '{\n  // a comment\n  "about": "see http://x//y", // trailing\n  "q": "a \\" // b"\n}'
    assert json.loads(strip_comments(text)) == {"about": "see http://x//y", "q": 'a " // b'}


def test_comment_stripping_keeps_line_numbers():
    text = '// one\n{ "a": 1 // two\n}\n'
    assert strip_comments(text).count("\n") == text.count("\n")


@pytest.mark.parametrize("text, lo, hi, inside, outside", [
    ("0+", 0, None, [0, 5, 100], [-1]),
    ("3-5", 3, 5, [3, 4, 5], [2, 6]),
    ("7", 7, 7, [7], [6, 8]),
    ("none", -1, -1, [], [0, 1, -1]),
])
def test_version_ranges(text, lo, hi, inside, outside):
    versions = Versions.parse(text)
    assert (versions.lo, versions.hi) == (lo, hi)
    assert all(v in versions for v in inside)
    assert not any(v in versions for v in outside)
    assert str(versions) == text


def test_snake_case_names():
    assert snake_case("TopicData") == "topic_data"
    assert snake_case("ThrottleTimeMs") == "throttle_time_ms"
    assert snake_case("ISRNodes") == "isr_nodes"
    assert snake_case("group") == "group"
    assert snake_case("Global") == "global_"  # a Python keyword gets a trailing underscore


def _write(folder, name, doc):
    with open(os.path.join(folder, name), "w") as handle:
        handle.write("// header comment\n" + json.dumps(doc, indent=1))


def _message(api_key, kind, name, valid, flexible, fields):
    return {"apiKey": api_key, "type": kind, "name": name, "validVersions": valid,
            "flexibleVersions": flexible, "fields": fields}


def test_merging_takes_each_version_from_the_newest_file_that_declares_it(tmp_path):
    old = tmp_path / "kafka-3"
    new = tmp_path / "kafka-4"
    old.mkdir()
    new.mkdir()
    old_fields = [{"name": "A", "type": "int32", "versions": "0+"},
                  {"name": "Old", "type": "string", "versions": "0-1"}]
    new_fields = [{"name": "A", "type": "int32", "versions": "0+"},
                  {"name": "New", "type": "int64", "versions": "3+", "tag": 0, "taggedVersions": "3+"}]
    _write(old, "XRequest.json", _message(99, "request", "XRequest", "0-2", "2+", old_fields))
    _write(old, "XResponse.json", _message(99, "response", "XResponse", "0-2", "2+", old_fields[:1]))
    _write(new, "XRequest.json", _message(99, "request", "XRequest", "2-3", "2+", new_fields))
    _write(new, "XResponse.json", _message(99, "response", "XResponse", "2-3", "2+", new_fields[:1]))
    spec = load_spec([schemas_in_folder(str(new)), schemas_in_folder(str(old))])
    request, response = spec.apis[99]
    assert request.versions == [0, 1, 2, 3]
    assert request.sources == {0: "kafka-3/XRequest.json", 1: "kafka-3/XRequest.json",
                               2: "kafka-4/XRequest.json", 3: "kafka-4/XRequest.json"}
    fields = {f.attr: f for f in request.root.fields}
    assert set(fields) == {"a", "old", "new"}
    assert fields["old"].present_mask == 0b0011
    assert fields["new"].present_mask == 0b1000 and fields["new"].tagged_mask == 0b1000
    assert request.flexible_min == 2


def test_tagged_field_without_versions_exists_where_it_is_tagged(tmp_path):
    clients = tmp_path / "clients"
    clients.mkdir()
    fields = [{"name": "T", "type": "int64", "taggedVersions": "1+", "tag": 0, "default": -1}]
    _write(clients, "ZRequest.json", _message(98, "request", "ZRequest", "0-1", "0+", fields))
    _write(clients, "ZResponse.json", _message(98, "response", "ZResponse", "0-1", "0+", []))
    request, _ = load_spec([schemas_in_folder(str(clients))]).apis[98]
    (field,) = request.root.fields
    assert field.present_mask == 0b10 and field.default == -1


def test_a_removed_api_is_left_out_unless_an_older_generation_declares_it(tmp_path):
    # Kafka 4 keeps a field-less "validVersions": "none" file for each API it removed.
    new = tmp_path / "new"
    old = tmp_path / "old"
    new.mkdir()
    old.mkdir()
    for kind in ("request", "response"):
        _write(new, f"Gone{kind.title()}.json", {"apiKey": 97, "type": kind, "name": f"Gone{kind.title()}",
                                                 "validVersions": "none"})
        _write(old, f"Gone{kind.title()}.json", _message(97, kind, f"Gone{kind.title()}", "0-1", "none",
                                                         [{"name": "A", "type": "int8", "versions": "0+"}]))
    assert 97 not in load_spec([schemas_in_folder(str(new))]).apis
    request, _ = load_spec([schemas_in_folder(str(new)), schemas_in_folder(str(old))]).apis[97]
    assert request.versions == [0, 1] and request.sources[1] == "old/GoneRequest.json"


def test_one_generation_may_not_define_a_message_twice(tmp_path):
    fields = [{"name": "A", "type": "int8", "versions": "0+"}]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder, "XRecord.json", {"type": "data", "name": "XRecord", "validVersions": "0",
                                                   "flexibleVersions": "none", "fields": fields})
    one_generation = schemas_in_folder(str(tmp_path / "a")) + schemas_in_folder(str(tmp_path / "b"))
    with pytest.raises(SchemaError, match="define the same message"):
        load_spec([one_generation])


def test_schemas_are_read_from_the_pinned_kafka_jars():
    generations = generate_messages.schemas_from_jars()
    assert [len(generation) for generation in generations] == [
        203 + 44 + 2 + 4 + 27 + 1,  # kafka-clients, group/transaction/share coordinators, metadata, raft 4.4.0
        186,                         # kafka-clients 3.9.2
    ]
    sources = {schema.source for generation in generations for schema in generation}
    assert "kafka-clients-4.4.0/ProduceRequest.json" in sources
    assert "kafka-metadata-4.4.0/TopicRecord.json" in sources  # common/metadata, not common/message
    assert "kafka-clients-3.9.2/ProduceRequest.json" in sources
    spec = load_spec(generations)
    produce, _ = spec.apis[0]
    # Kafka 4 dropped Produce v0-2; they come from 3.9, everything newer from 4.4.
    assert {produce.sources[v] for v in (0, 1, 2)} == {"kafka-clients-3.9.2/ProduceRequest.json"}
    assert {produce.sources[v] for v in produce.versions[3:]} == {"kafka-clients-4.4.0/ProduceRequest.json"}
    assert spec.apis[18][0].versions[-1] == 5  # ApiVersions v5 (KIP-1242) is Kafka 4.4's
    assert sorted(spec.apis) == list(range(95))


def _run(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "generate_messages.py"), *args],
                          capture_output=True, text=True)


def test_check_passes_on_the_committed_output_and_names_stale_files(tmp_path):
    result = _run("--check")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "messages"
    shutil.copytree(os.path.join(REPO, "protocol", "messages"), out,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert _run("--check", "--out", str(out)).returncode == 0
    with open(out / "produce.py", "a") as handle:
        handle.write("# edited by hand\n")
    (out / "leftover.py").write_text("")
    result = _run("--check", "--out", str(out))
    assert result.returncode == 1
    assert "produce.py" in result.stderr and "leftover.py" in result.stderr
    # Regenerating repairs it and gives identical bytes (the output is deterministic).
    assert _run("--out", str(out)).returncode == 0
    assert _run("--check", "--out", str(out)).returncode == 0
    with open(os.path.join(REPO, "protocol", "messages", "fetch.py")) as a, open(out / "fetch.py") as b:
        assert a.read() == b.read()


def test_generated_files_carry_the_header():
    folder = os.path.join(REPO, "protocol", "messages")
    for name in ("produce.py", "registry.py", "headers.py", "_runtime.py", "records/offset_commit_key.py"):
        with open(os.path.join(folder, name)) as handle:
            assert handle.readline().startswith(
                "# generated by tools/generate_messages.py from Kafka's schemas; do not edit")
