"""The generator itself (tools/generate_messages.py, tools/codegen/): comment stripping, version
ranges, merging of schema generations, determinism and the --check mode."""

import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(REPO, "..", "shared", "kafka-spec")
sys.path.insert(0, os.path.join(REPO, "tools"))

from codegen.spec import Versions, load_spec, snake_case, strip_comments  # noqa: E402

needs_spec = pytest.mark.skipif(not os.path.isdir(SPEC), reason="../shared/kafka-spec not present")


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
    old = tmp_path / "clients"
    new = tmp_path / "clients-newer"
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
    spec = load_spec(str(tmp_path))
    request, response = spec.apis[99]
    assert request.versions == [0, 1, 2, 3]
    assert request.sources == {0: "clients/XRequest.json", 1: "clients/XRequest.json",
                               2: "clients-newer/XRequest.json", 3: "clients-newer/XRequest.json"}
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
    request, _ = load_spec(str(tmp_path)).apis[98]
    (field,) = request.root.fields
    assert field.present_mask == 0b10 and field.default == -1


def _run(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "generate_messages.py"), *args],
                          capture_output=True, text=True)


@needs_spec
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
