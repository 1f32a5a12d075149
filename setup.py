"""Package discovery only; all metadata lives in pyproject.toml.

The repository keeps `broker/`, `protocol/` and `storage/` at its root, but they install as
`odradek.broker`, `odradek.protocol` and `odradek.storage` so that odradek adds exactly one
top-level import name; `odradek` itself (the public API) is `api/`. setuptools' declarative
config cannot prefix discovered packages, so this file does: every package found under the three
folders gets the `odradek.` prefix.
"""

from setuptools import find_packages, setup

ROOTS = ("protocol", "storage", "broker")

setup(
    packages=["odradek"] + [
        f"odradek.{name}"
        for name in find_packages(include=[f"{root}" for root in ROOTS] + [f"{root}.*" for root in ROOTS])
    ],
)
