"""The ``odradek`` command.

``odradek serve [--config server.properties] [--override key=value ...] [--log-level L]``
starts a broker. With no arguments it listens on localhost:9092 with ./odradek-data as its data
directory. Once every listener is bound it prints one line per listener on stdout::

    odradek listening on 127.0.0.1:PORT (PLAINTEXT)

(the real port, also when the configured one is 0) and flushes it: tools and tests wait for it.
SIGTERM or SIGINT stops it cleanly: stop accepting, answer the requests in flight, flush and
close the logs (clean-shutdown marker), exit 0. Invalid configuration exits 2 naming the key.

``odradek config-docs`` prints the configuration reference (docs/configuration.md) generated
from the config definitions.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from . import logs
from .config import BrokerConfig, ConfigError, parse_overrides
from .properties import PropertiesError, load_properties_file
from odradek.storage.errors import InconsistentLogDirectory, LogDirectoryLocked

EXIT_CONFIG_ERROR = 2
EXIT_START_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odradek", description="A Kafka-wire-compatible broker.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a broker")
    serve.add_argument("--config", "-c", help="a Kafka server.properties file")
    serve.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a config key, overriding the file (repeatable)")
    serve.add_argument("--log-level", default="warning", choices=logs.LEVELS, help="default: warning")
    commands.add_parser("config-docs", help="print the configuration reference (Markdown)")
    return parser


def load_config(config_path: str | None, overrides: list[str], logger) -> BrokerConfig:
    file_values = load_properties_file(config_path) if config_path else {}
    return BrokerConfig.from_sources(file_values, parse_overrides(overrides), logger=logger)


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
        log.info("broker started", node_id=broker.node_id, cluster_id=broker.cluster_id, log_dirs=broker.log_dirs)
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
        config = load_config(args.config, args.override, log)
    except (ConfigError, PropertiesError, OSError) as error:
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
