"""The ``odradek`` command.

``odradek serve [--config server.properties] [--override key=value ...] [--port N]
[--data-dir DIR | --memory] [--stop-on-stdin-eof] [--log-level L]`` starts a broker. With no arguments it listens on
localhost:9092 with ./odradek-data as its data directory. ``--port N`` is short for
``--override listeners=PLAINTEXT://localhost:N`` (the default listener's name and host, another
port) and ``--data-dir DIR`` for ``--override log.dirs=DIR``; like any override they win over the
file. Giving a shorthand and an ``--override`` of the same key (``listeners``; ``log.dirs`` or
``log.dir``) is refused (exit 2): there is no order between them to guess. Once every listener
is bound it prints one line per listener on stdout::

    odradek listening on 127.0.0.1:PORT (PLAINTEXT)

(the real port, also when the configured one is 0) and flushes it. Once it is also *ready* (the
group and transaction coordinators loaded their state: broker/service.py) it prints::

    odradek control: http://127.0.0.1:PORT
    odradek ready: bootstrap.servers=127.0.0.1:PORT

(the first unless ``odradek.control.port`` is -1: the control API, broker/control/).

Tools and tests wait for one line or the other. ``--memory`` keeps the data in memory (the
storage engine's memory backend: no file is written, nothing outlives the process);
``--stop-on-stdin-eof`` stops the broker cleanly when its stdin is closed, so that a test harness
holding the other end takes its broker with it even when it is killed. SIGTERM or SIGINT stops
it cleanly: stop accepting, answer the requests in flight, flush and
close the logs (clean-shutdown marker), exit 0. Invalid configuration exits 2 naming the key.

``odradek up | status | down | topic | produce | consume | group`` are the developer commands: a
background broker per project folder and the everyday topic, record and group commands
(broker/cli_dev.py; docs/cli.md). ``odradek reset | snapshot | clients | activity`` drive a running
broker through its control API (broker/cli_control.py), and ``odradek fault
add|list|remove|clear`` scripts its faults (broker/cli_fault.py; docs/testing.md).

``odradek --version`` prints the installed package's version (pyproject.toml's, read from the
package metadata). ``odradek config-docs`` prints the configuration reference
(docs/configuration.md) generated from the config definitions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import signal
import sys
import threading

import structlog

from . import cli_control, cli_dev, cli_fault, logs
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
    serve.add_argument("--memory", action="store_true",
                       help="keep the data in memory: nothing is written to disk, and it is gone at exit")
    serve.add_argument("--stop-on-stdin-eof", action="store_true",
                       help="stop cleanly when stdin is closed (a test harness holding it takes the broker with it)")
    serve.add_argument("--log-level", default="warning", choices=logs.LEVELS, help="default: warning")
    commands.add_parser("config-docs", help="print the configuration reference (Markdown)")
    cli_dev.add_commands(commands, _port)
    cli_control.add_commands(commands)
    cli_fault.add_command(commands)
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


async def serve(config: BrokerConfig, ready_stream=None, *, memory: bool = False,
                stop_on_stdin_eof: bool = False) -> None:
    """Run a broker until SIGTERM/SIGINT (or, with ``stop_on_stdin_eof``, until stdin closes),
    then shut it down cleanly. ``memory``: keep the data in memory (nothing is written)."""
    from odradek.storage.fs import MemoryFileSystem

    from .service import BrokerService, address, bootstrap_servers

    log = structlog.get_logger("odradek")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if stop_on_stdin_eof:
        _watch_stdin(loop, stop)

    service = BrokerService(config, fs=MemoryFileSystem() if memory else None)
    broker = service.broker
    out = ready_stream or sys.stdout
    try:
        await service.start()
        for name, (host, port) in service.bound.items():
            print(f"odradek listening on {address(host, port)} ({name})", file=out, flush=True)
        log.info("broker started", node_id=broker.node_id, cluster_id=broker.cluster_id, log_dirs=broker.log_dirs,
                 in_memory=memory, version=package_version(), event_loop=type(loop).__module__.split(".")[0])
        await service.ready()
        if service.control_url is not None:
            print(f"odradek control: {service.control_url}", file=out, flush=True)
        print(f"odradek ready: bootstrap.servers={bootstrap_servers(service.bound)}", file=out, flush=True)
        await stop.wait()
        log.info("shutting down")
    finally:
        await service.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("shut down cleanly")


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once stdin reaches end of file: a harness that holds the write end of the
    broker's stdin takes the broker with it when it dies, even by SIGKILL."""
    def read_until_eof() -> None:
        # os.read on the descriptor, not sys.stdin: a thread blocked in a buffered read holds the
        # buffer's lock, and the interpreter's exit then waits a second for it.
        try:
            while os.read(0, 65536):
                pass
        except OSError:  # stdin closed or unreadable: the same as its end
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read_until_eof, name="odradek-stdin", daemon=True).start()


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
    if args.command in cli_control.COMMANDS:
        return cli_control.run(args)
    if args.command == "config-docs":
        from .config_docs import render

        sys.stdout.write(render())
        return 0
    if args.command == "fault":
        return cli_fault.run(args)
    if args.command in cli_dev.COMMANDS:
        return cli_dev.run(args)
    logs.configure(args.log_level)
    log = structlog.get_logger("odradek")
    if args.memory and args.data_dir is not None:
        print("odradek: --memory keeps no data directory: give --memory or --data-dir", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        config = load_config(args.config, args.override, log, port=args.port, data_dir=args.data_dir)
    except (ConfigError, PropertiesError, ShorthandConflict, OSError) as error:
        print(f"odradek: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    _install_uvloop()
    try:
        asyncio.run(serve(config, memory=args.memory, stop_on_stdin_eof=args.stop_on_stdin_eof))
    except (OSError, LogDirectoryLocked, InconsistentLogDirectory) as error:
        # A port in use, a data dir we cannot write or that another broker holds.
        print(f"odradek: cannot start: {error}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
