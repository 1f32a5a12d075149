"""Write the generated documentation (or check it: --check): docs/configuration.md from the
broker's config definitions, and the API table in docs/quickstart.md from the handler registry."""

from __future__ import annotations

import argparse
import pathlib
import sys

from odradek.broker.config_docs import render, with_api_table

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
CONFIGURATION = DOCS / "configuration.md"
QUICKSTART = DOCS / "quickstart.md"


def expected() -> dict[pathlib.Path, str]:
    return {
        CONFIGURATION: render(),
        QUICKSTART: with_api_table(QUICKSTART.read_text(encoding="utf-8")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = parser.parse_args()
    stale = []
    for path, text in expected().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{path} is out of date: run python tools/gen_config_docs.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
