"""The ``odradek`` commands that drive a running broker through its control API
(broker/control/): ``reset``, ``snapshot``, ``clients`` and ``activity``.

Which broker: ``--control URL``, else the environment's ``ODRADEK_CONTROL``, else the broker
``odradek up`` runs for this folder. Exit codes: 0 done, 1 the broker answered an error or
could not be reached, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

CONTROL_ENV = "ODRADEK_CONTROL"
EXIT_FAILED = 1
EXIT_USAGE = 2
# How long one poll of ``odradek activity -f`` waits for the next request.
FOLLOW_WAIT_MS = 10_000


def add_control_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control", metavar="URL",
                        help=f"the broker's control API (default: ${CONTROL_ENV}, else the broker `odradek up` "
                             "runs for this folder)")


def add_commands(commands) -> None:
    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        add_control_option(parser)
        return parser

    reset = command("reset", "drop every topic, group, offset and transaction (or empty the topics named)")
    reset.add_argument("topics", nargs="*", metavar="TOPIC")
    snapshot = command("snapshot", "save, restore, list or delete snapshots of the broker's data")
    snapshot.add_argument("action", choices=("save", "restore", "list", "delete"))
    snapshot.add_argument("name", nargs="?")
    command("clients", "the clients connected (and recently closed): software, client id, API versions used")
    activity = command("activity", "the requests the broker answered: client, API, topics, errors, ms")
    activity.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    activity.add_argument("--client-id")
    activity.add_argument("--api", help="an API name: Produce, Fetch, Metadata, ...")
    activity.add_argument("--topic")
    activity.add_argument("--json", action="store_true", help="one JSON object per line")


COMMANDS = ("reset", "snapshot", "clients", "activity")


def run(args) -> int:
    return run_with_control(args, "odradek", lambda client: _COMMANDS[args.command](client, args))


def run_with_control(args, prog: str, command) -> int:
    """Run ``command(client)`` against the broker ``args.control`` names (else
    ``$ODRADEK_CONTROL``, else the ``odradek up`` broker of this folder); its exit code, or
    the error's: the message on stderr after ``prog``."""
    from .control.client import ControlClient, ControlError

    url = args.control or os.environ.get(CONTROL_ENV) or _url_of_project_broker()
    if not url:
        print(f"{prog}: no broker to talk to: give --control URL or set {CONTROL_ENV} "
              "(odradek serve prints its control URL), or start one with odradek up", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = ControlClient(url)
    except ValueError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return command(client)
    except ControlError as error:
        print(f"{prog}: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"{prog}: cannot reach the control API at {url}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def _url_of_project_broker() -> str | None:
    """The control URL of the broker ``odradek up`` started for the current folder, if any."""
    from .cli_dev import project_broker

    state = project_broker()
    return state.control_url if state else None


def _reset(client, args) -> int:
    if args.topics:
        client.call("POST", "/v1/reset", {"topics": args.topics})
        print(f"emptied {', '.join(args.topics)}")
    else:
        answer = client.call("POST", "/v1/reset")
        print(f"reset in {answer['ms']:.1f} ms")
    return 0


def _snapshot(client, args) -> int:
    if args.action == "list":
        for snapshot in client.call("GET", "/v1/snapshots")["snapshots"]:
            print(f"{snapshot['name']}\t{snapshot['bytes']} bytes")
        return 0
    if not args.name:
        print(f"odradek: snapshot {args.action} needs a NAME", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "save":
        answer = client.call("POST", f"/v1/snapshots/{args.name}")
        print(f"saved {answer['name']} ({answer['bytes']} bytes)")
    elif args.action == "restore":
        answer = client.call("POST", f"/v1/snapshots/{args.name}/restore")
        print(f"restored {args.name} in {answer['ms']:.1f} ms")
    else:
        client.call("DELETE", f"/v1/snapshots/{args.name}")
        print(f"deleted {args.name}")
    return 0


def _clients(client, args) -> int:
    for entry in client.call("GET", "/v1/clients")["clients"]:
        software = " ".join(filter(None, (entry["software_name"], entry["software_version"]))) or "-"
        state = "open" if entry["closed_ms"] is None else "closed"
        versions = " ".join(f"{api}:{','.join(map(str, used))}" for api, used in entry["api_versions"].items())
        print(f"{entry['peer']}\t{state}\t{entry['client_id'] or '-'}\t{software}\t{versions}")
    return 0


def _activity(client, args) -> int:
    query = {"client_id": args.client_id, "api": args.api, "topic": args.topic}
    since = 0
    while True:
        answer = client.call("GET", "/v1/activity",
                             query={**query, "since": since, "wait_ms": FOLLOW_WAIT_MS if args.follow else 0})
        for event in answer["events"]:
            print(json.dumps(event) if args.json else _activity_line(event), flush=True)
        since = answer["last"]
        if not args.follow:
            return 0


def _activity_line(event: dict) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(event["time_ms"] / 1000)) + f".{event['time_ms'] % 1000:03d}"
    topics = ",".join(f"{name}[{','.join(map(str, partitions))}]" if partitions else name
                      for name, partitions in (event["topics"] or {}).items()) or "-"
    errors = ",".join(event["errors"]) or "NONE"
    return (f"{at} {event['client_id'] or '-'} {event['api']} v{event['api_version']} {topics} {errors} "
            f"{event['ms']:.1f}ms")


_COMMANDS = {"reset": _reset, "snapshot": _snapshot, "clients": _clients, "activity": _activity}
