"""kcat (librdkafka's CLI, Debian package ``kcat``) against odradek: metadata listing, produce
with keys and headers in every codec, consume back. Skipped when kcat is not installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (apt-get install kcat)")


def kcat(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run([KCAT, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume(shared_broker, codec):
    topic = f"kcat-{codec}"
    kcat("-b", shared_broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec,
         "-H", "source=kcat", stdin="a:first\nb:second\nc:third\n")
    out = kcat("-b", shared_broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
               "-f", "%o %k %s %h\\n")
    assert out.splitlines() == ["0 a first source=kcat", "1 b second source=kcat", "2 c third source=kcat"]
    listing = kcat("-b", shared_broker.bootstrap, "-L", "-t", topic)
    assert f'topic "{topic}" with 1 partitions' in listing and "leader 1" in listing
