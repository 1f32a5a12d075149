"""Small Node.js programs under compat/ (each a folder with its own package.json and committed
package-lock.json), their npm dependencies installed with the machine's ``npm ci`` into
compat/.cache/npm (gitignored) for the tests that drive them.

Run from the repository root (or import it)::

    python compat/node_programs.py kafkajs     # install if needed, print the node_modules path

The dependencies are cached under a name derived from package.json, package-lock.json and the
Node version (a native addon such as kafkajs-lz4's is built for that Node), so a changed lock
file reinstalls and an unchanged one costs nothing. ``npm ci`` installs exactly what the lock
file pins and never edits it. An install goes into a temporary folder that is then renamed, so
concurrent first runs cannot leave a half-installed cache. The program itself (``main.js``) is
run from compat/<name>/ with NODE_PATH pointing at the cached modules (:func:`command`), so an
edited program needs no reinstall.

Programs: ``kafkajs`` (kafkajs as producer, consumer, group member, admin and transactional
producer, compat/kafkajs/main.js).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

COMPAT = Path(__file__).resolve().parent
CACHE_ROOT = COMPAT / ".cache" / "npm"
PROGRAMS = ("kafkajs",)
INSTALL_TIMEOUT = 600.0  # the first install downloads packages and builds native addons
LOCK_FILES = ("package.json", "package-lock.json")


class NodeUnavailable(RuntimeError):
    """node or npm is missing or the install failed (the message says which)."""


def _lock_digest(source: Path, node_version: str) -> str:
    digest = hashlib.sha256(node_version.encode())
    for name in LOCK_FILES:
        digest.update(name.encode() + b"\0" + (source / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def install(name: str, *, timeout: float = INSTALL_TIMEOUT) -> Path:
    """The node_modules folder of program ``name``, installed first unless cached."""
    if name not in PROGRAMS:
        raise ValueError(f"unknown Node program {name!r} (known: {', '.join(PROGRAMS)})")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeUnavailable("node and npm must be on PATH")
    source = COMPAT / name
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    target = CACHE_ROOT / f"{name}-{_lock_digest(source, version)}"
    modules = target / "node_modules"
    if modules.is_dir():
        return modules
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    partial = CACHE_ROOT / f"{target.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for file_name in LOCK_FILES:
        shutil.copyfile(source / file_name, partial / file_name)
    try:
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=partial, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise NodeUnavailable(f"npm ci for {name} did not finish within {timeout}s") from exc
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise NodeUnavailable(f"npm ci for {name} failed:\n{result.stdout}{result.stderr}")
    try:
        os.rename(partial, target)
    except OSError:  # another process installed it first
        shutil.rmtree(partial, ignore_errors=True)
        if not modules.is_dir():
            raise
    return modules


def command(name: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run program ``name`` (installed first unless cached)."""
    modules = install(name)
    return [shutil.which("node"), str(COMPAT / name / "main.js")], dict(os.environ, NODE_PATH=str(modules))


def main(argv: list[str]) -> int:
    names = argv or list(PROGRAMS)
    try:
        for name in names:
            print(install(name))
    except (NodeUnavailable, ValueError) as error:
        print(f"node_programs: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
