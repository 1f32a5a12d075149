"""Small Go programs under compat/ (each a folder with its own go.mod and go.sum), built with
the machine's ``go`` into compat/.cache/go (gitignored) for the tests that drive them.

Run from the repository root (or import it)::

    python compat/go_programs.py franzgo     # build if needed, print the binary's path

A binary is cached under a name derived from its sources (``*.go``, go.mod, go.sum) and the Go
version, so an edited program is rebuilt and an unchanged one costs nothing. Modules come from
the Go module proxy and are checked against the committed go.sum (``-mod=readonly``: a build
never edits go.mod or go.sum). A build writes to a temporary name and renames, so concurrent
first runs cannot leave a half-written binary.

Programs: ``franzgo`` (a franz-go consumer group member, compat/franzgo/main.go; a transactional
producer, a GroupTransactSession and a read_committed reader, compat/franzgo/transactions.go; an
idempotent producer reporting each record's fate for the fault tests, compat/franzgo/produce.go) and
``sarama`` (IBM/sarama as producer, consumer, group member, admin and transactional producer,
compat/sarama/main.go and transactions.go).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

COMPAT = Path(__file__).resolve().parent
CACHE_ROOT = COMPAT / ".cache" / "go"
PROGRAMS = ("franzgo", "sarama")
BUILD_TIMEOUT = 600.0  # the first build downloads modules and compiles them


class GoUnavailable(RuntimeError):
    """go is missing or the build failed (the message says which)."""


def _source_digest(source: Path, go_version: str) -> str:
    digest = hashlib.sha256(go_version.encode())
    for path in sorted([*source.glob("*.go"), source / "go.mod", source / "go.sum"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(name: str, *, timeout: float = BUILD_TIMEOUT) -> Path:
    """The path of program ``name``'s binary, built first unless cached."""
    if name not in PROGRAMS:
        raise ValueError(f"unknown Go program {name!r} (known: {', '.join(PROGRAMS)})")
    go = shutil.which("go")
    if go is None:
        raise GoUnavailable("go is not on PATH")
    source = COMPAT / name
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout.strip()
    binary = CACHE_ROOT / f"{name}-{_source_digest(source, version)}" / name
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{name}.{os.getpid()}.partial")
    try:
        result = subprocess.run([go, "build", "-mod=readonly", "-o", str(partial), "."], cwd=source,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise GoUnavailable(f"go build of {name} did not finish within {timeout}s") from exc
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise GoUnavailable(f"go build of {name} failed:\n{result.stdout}{result.stderr}")
    os.replace(partial, binary)
    return binary


def main(argv: list[str]) -> int:
    names = argv or list(PROGRAMS)
    try:
        for name in names:
            print(build(name))
    except (GoUnavailable, ValueError) as error:
        print(f"go_programs: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
