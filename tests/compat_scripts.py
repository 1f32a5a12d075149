"""The scripts under compat/ (kafka_jars, go_programs, node_programs) are programs, not a
package: tests import them by path, once, through :func:`load_compat_script`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

COMPAT = Path(__file__).resolve().parents[1] / "compat"


def load_compat_script(name: str):
    """compat/<name>.py as a module (imported once, kept in sys.modules under ``name``)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, COMPAT / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
