"""The ``odradek`` command.

``odradek serve [--config server.properties] [--override key=value ...] [--port N]
[--data-dir DIR] [--log-level L]`` starts a broker. With no arguments it listens on
localhost:9092 with ./odradek-data as its data directory. ``--port N`` is short for
``--override listeners=PLAINTEXT://localhost:N`` (the default listener's name and host, another
port) and ``--data-dir DIR`` for ``--override log.dirs=DIR``; like any override they win over the
file. Giving a shorthand and an ``--override`` of the same key (``listeners``; ``log.dirs`` or
``log.dir``) is refused (exit 2): there is no order between them to guess. Once every listener
is bound it prints one line per listener on stdout::

    odradek listening on 127.0.0.1:PORT (PLAINTEXT)

(the real port, also when the configured one is 0) and flushes it: tools and tests wait for it.
SIGTERM or SIGINT stops it cleanly: stop accepting, answer the requests in flight, flush and
close the logs (clean-shutdown marker), exit 0. Invalid configuration exits 2 naming the key.

``odradek --version`` prints the installed package's version (pyproject.toml's, read from the
package metadata). ``odradek config-docs`` prints the configuration reference
(docs/configuration.md) generated from the config definitions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import signal
import sys

import structlog

from . import logs
from .config import BROKER_CONFIGS, BrokerConfig, ConfigError, Listener, parse_listener, parse_overrides
from .properties import PropertiesError, load_properties_file
from odradek.storage.errors import InconsistentLogDirectory, LogDirectoryLocked

EXIT_CONFIG_ERROR = 2
EXIT_START_FAILED = 1


def package_version() -> str:
    """The installed distribution's version: pyproject.toml's ``version``, the one source."""
    try:
        return importlib.metadata.version("odradek")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: pip install .)"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odradek", description="A Kafka-wire-compatible broker.")
    parser.add_argument("--version", action="version", version=f"odradek {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a broker")
    serve.add_argument("--config", "-c", help="a Kafka server.properties file")
    serve.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a config key, overriding the file (repeatable)")
    serve.add_argument("--port", type=_port, metavar="N",
                       help="listen on localhost:N: short for --override listeners=PLAINTEXT://localhost:N "
                            "(0 picks a free port)")
    serve.add_argument("--data-dir", metavar="DIR", help="keep the data in DIR: short for --override log.dirs=DIR")
    serve.add_argument("--log-level", default="warning", choices=logs.LEVELS, help="default: warning")
    commands.add_parser("config-docs", help="print the configuration reference (Markdown)")
    return parser


class ShorthandConflict(ValueError):
    """A shorthand option and an ``--override`` that set the same key."""


# Shorthand option -> the keys it sets or competes with (log.dir is what log.dirs replaces).
SHORTHAND_KEYS = {"--port": ("listeners",), "--data-dir": ("log.dirs", "log.dir")}


def shorthand_overrides(port: int | None, data_dir: str | None, overrides: dict[str, str]) -> dict[str, str]:
    """The overrides that ``--port`` and ``--data-dir`` stand for; ShorthandConflict when an
    ``--override`` already sets one of their keys."""
    result = {}
    given = {"--port": port, "--data-dir": data_dir}
    for option, keys in SHORTHAND_KEYS.items():
        if given[option] is None:
            continue
        clash = [key for key in keys if key in overrides]
        if clash:
            raise ShorthandConflict(f"{option} and --override {clash[0]}={overrides[clash[0]]} both set "
                                    f"{clash[0]}: give one of them")
    if port is not None:
        # The default listener (config.py's one definition of it) with another port.
        default = parse_listener(BROKER_CONFIGS["listeners"].default[0])
        result["listeners"] = str(Listener(default.name, default.host, port))
    if data_dir is not None:
        result["log.dirs"] = data_dir
    return result


def load_config(config_path: str | None, overrides: list[str], logger, *, port: int | None = None,
                data_dir: str | None = None) -> BrokerConfig:
    file_values = load_properties_file(config_path) if config_path else {}
    override_values = parse_overrides(overrides)
    override_values.update(shorthand_overrides(port, data_dir, override_values))
    return BrokerConfig.from_sources(file_values, override_values, logger=logger)


async def serve(config: BrokerConfig, ready_stream=None) -> None:
    """Run a broker until SIGTERM/SIGINT, then shut it down cleanly."""
    from .broker import Broker
    from .handlers import REGISTRY
    from .server import BrokerServer

    log = structlog.get_logger("odradek")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    broker = Broker(config)
    broker.open()
    server = BrokerServer(broker, REGISTRY)
    try:
        await server.start()
        broker.set_bound_listeners(server.bound)
        out = ready_stream or sys.stdout
        for name, (host, port) in server.bound.items():
            shown = f"[{host}]" if ":" in host else host
            print(f"odradek listening on {shown}:{port} ({name})", file=out, flush=True)
        log.info("broker started", node_id=broker.node_id, cluster_id=broker.cluster_id, log_dirs=broker.log_dirs,
                 version=package_version(), event_loop=type(loop).__module__.split(".")[0])
        maintenance = asyncio.ensure_future(broker.run_maintenance())
        await stop.wait()
        log.info("shutting down")
        maintenance.cancel()
        await server.shutdown()
    finally:
        broker.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("shut down cleanly")


def _install_uvloop() -> None:
    """Run on uvloop, a dependency of the package everywhere but on Windows (which has no
    uvloop, and keeps asyncio's own loop)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config-docs":
        from .config_docs import render

        sys.stdout.write(render())
        return 0
    logs.configure(args.log_level)
    log = structlog.get_logger("odradek")
    try:
        config = load_config(args.config, args.override, log, port=args.port, data_dir=args.data_dir)
    except (ConfigError, PropertiesError, ShorthandConflict, OSError) as error:
        print(f"odradek: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    _install_uvloop()
    try:
        asyncio.run(serve(config))
    except (OSError, LogDirectoryLocked, InconsistentLogDirectory) as error:
        # A port in use, a data dir we cannot write or that another broker holds.
        print(f"odradek: cannot start: {error}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
