"""The harness snippets of docs/testing.md ("Other languages and CI") work as printed: the JUnit 5
extension, the Go ``TestMain`` and the ``node:test`` hooks are taken from the document, put beside
a small test that talks to the broker they started (a TCP connection to the bootstrap servers, a
reset over the control API), and run with JUnit's console launcher (fetched from Maven Central),
``go test`` and ``node --test``; after the run the broker process is gone (it stopped when its
stdin closed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import subprocess_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
# JUnit 5's launcher with the Jupiter engine in one jar, for the JUnit extension's test.
JUNIT_CONSOLE = ("org.junit.platform", "junit-platform-console-standalone", "1.11.4")


def snippet(language: str, marker: str) -> str:
    """The fenced ``language`` block of docs/testing.md that contains ``marker``."""
    for block in re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S):
        if marker in block:
            return block
    raise AssertionError(f"no {language} block with {marker!r} in {DOC}")


def harness_env(tmp_path) -> dict:
    env = subprocess_env()
    # `odradek` as installed with this interpreter, first on the PATH as the document assumes.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("GOPATH", str(Path.home() / "go"))
    env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
    env["GOFLAGS"] = "-mod=mod"
    return env


def odradek_processes() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"odradek") for part in command[:2]) and b"--stop-on-stdin-eof" in command:
                found.add(int(entry))
    return found


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_the_go_test_main_starts_resets_and_stops_the_broker(tmp_path):
    before = odradek_processes()
    (tmp_path / "go.mod").write_text("module harness\n\ngo 1.21\n")
    (tmp_path / "harness_test.go").write_text(
        "package harness\n\nimport (\n\t\"bufio\"\n\t\"log\"\n\t\"net\"\n\t\"net/http\"\n\t\"os\"\n\t\"os/exec\"\n"
        "\t\"strings\"\n\t\"testing\"\n)\n\n" + snippet("go", "func TestMain") + """
func TestTheBrokerAnswers(t *testing.T) {
	conn, err := net.Dial("tcp", bootstrapServers)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	resetBroker(t)
}
""")
    result = subprocess.run(["go", "test", "-count=1", "-v", "./..."], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=harness_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--- PASS: TestTheBrokerAnswers" in result.stdout
    assert odradek_processes() <= before


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_test_hooks_start_reset_and_stop_the_broker(tmp_path):
    before = odradek_processes()
    (tmp_path / "harness.test.mjs").write_text(snippet("js", "node:test") + """
import { test } from "node:test";
import { connect } from "node:net";
import assert from "node:assert";

test("the broker answers and was reset", async () => {
  const [host, port] = bootstrapServers.split(":");
  await new Promise((resolve, reject) => connect({ host, port: Number(port) }, resolve).on("error", reject).unref());
  const status = await (await fetch(`${control}/v1/status`)).json();
  assert.strictEqual(status.topics, 0);
});
""")
    result = subprocess.run(["node", "--test", "harness.test.mjs"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=harness_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 1" in result.stdout, result.stdout
    assert odradek_processes() <= before


@pytest.mark.skipif(shutil.which("javac") is None, reason="a JDK is not installed")
def test_the_junit5_extension_starts_resets_and_stops_the_broker(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat"))
    import kafka_jars  # compat/: fetches from Maven Central into compat/.cache

    [console] = kafka_jars.artifact_jars("junit", [JUNIT_CONSOLE]).values()
    before = odradek_processes()
    (tmp_path / "OdradekExtension.java").write_text(snippet("java", "class OdradekExtension"))
    (tmp_path / "HarnessTest.java").write_text("""
import java.net.Socket;
import org.junit.jupiter.api.*;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(OdradekExtension.class)
class HarnessTest {
    @BeforeEach
    void clean() throws Exception {
        OdradekExtension.reset();
    }

    @Test
    void theBrokerAnswers() throws Exception {
        int colon = OdradekExtension.bootstrapServers.lastIndexOf(':');
        try (Socket socket = new Socket(OdradekExtension.bootstrapServers.substring(0, colon),
                                        Integer.parseInt(OdradekExtension.bootstrapServers.substring(colon + 1)))) {
            Assertions.assertTrue(socket.isConnected());
        }
    }
}
""")
    env = harness_env(tmp_path)
    compiled = subprocess.run(["javac", "-cp", str(console), "-d", "classes", "OdradekExtension.java", "HarnessTest.java"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert compiled.returncode == 0, compiled.stderr
    result = subprocess.run(["java", "-jar", str(console), "execute", "--class-path", "classes",
                             "--select-class", "HarnessTest", "--disable-banner"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\[\s+1 tests successful\s+\]", result.stdout), result.stdout
    assert odradek_processes() <= before
