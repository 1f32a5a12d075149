"""The layering holds: ``odradek.protocol`` imports nothing of ``odradek.storage`` or
``odradek.broker``, and ``odradek.storage`` nothing of ``odradek.broker``.

Every source file of a layer is parsed with ``ast`` and every import in it is resolved to the
module it names: absolute and relative imports (``from ..broker import x`` resolved against the
file's own package), at module level and inside functions, classes and ``if TYPE_CHECKING:``
blocks alike, and ``importlib.import_module("odradek...")`` / ``__import__`` with a literal name.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Each layer: its folder in the repository and the odradek packages it must not import.
LAYERS = {
    "odradek.protocol": (ROOT / "protocol", ("odradek.storage", "odradek.broker")),
    "odradek.storage": (ROOT / "storage", ("odradek.broker",)),
}


def module_name(package: str, folder: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, ``module``'s text."""
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[:len(package_parts) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # `from odradek import broker` imports odradek.broker: count the names as modules too.
            found.append((node.lineno, prefix))
            found += [(node.lineno, f"{prefix}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module")))):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(package: str, folder: pathlib.Path, forbidden: tuple[str, ...]) -> list[str]:
    result = []
    for path in sorted(folder.rglob("*.py")):
        module = module_name(package, folder, path)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            if any(name == banned or name.startswith(banned + ".") for banned in forbidden):
                result.append(f"{path.relative_to(folder.parent)}:{line} imports {name}")
    return result


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layer_imports_nothing_above_it(package):
    folder, forbidden = LAYERS[package]
    assert folder.is_dir() and any(folder.rglob("*.py"))
    assert violations(package, folder, forbidden) == []


@pytest.mark.parametrize("source, module, expected", [
    ("from ..broker import config", "odradek.storage.config", "odradek.broker.config"),
    ("from .. import broker", "odradek.storage.fs", "odradek.broker"),
    ("def f():\n    import odradek.broker.cli\n", "odradek.storage.fs", "odradek.broker.cli"),
    ("from odradek.broker.config import X", "odradek.protocol.primitives", "odradek.broker.config"),
    ("import importlib\nimportlib.import_module('odradek.broker')", "odradek.storage.fs", "odradek.broker"),
    ("from ...broker.config import X", "odradek.protocol.records.batch", "odradek.broker.config"),
])
def test_the_walk_sees_each_kind_of_import(source, module, expected):
    names = [name for _, name in imported_modules(source, module, False)]
    assert expected in names


def test_relative_import_from_a_package_init_resolves_against_the_package():
    names = [name for _, name in imported_modules("from .config import LogConfig", "odradek.storage", True)]
    assert "odradek.storage.config" in names


def test_a_violation_is_reported(tmp_path):
    layer = tmp_path / "storage"
    layer.mkdir()
    (layer / "clean.py").write_text("from .config import LogConfig\n")
    (layer / "bad.py").write_text("def later():\n    from ..broker.config import BrokerConfig\n")
    assert violations("odradek.storage", layer, ("odradek.broker",)) == [
        "storage/bad.py:2 imports odradek.broker.config",
        "storage/bad.py:2 imports odradek.broker.config.BrokerConfig",
    ]
