"""``odradek fault add|list|remove|clear``: script a running broker's faults through its control
API (broker/control/faults.py; docs/testing.md "Faults").

    odradek fault add ACTION [--api NAME] [--error NAME] [--delay-ms N] [--throttle-ms N]
                             [--count N] [--duration-ms N] [--topic T] [--partition P]
                             [--group G] [--client-id C] --control URL
    odradek fault list --control URL            one line per fault (--json: the API's documents)
    odradek fault remove ID --control URL
    odradek fault clear --control URL

Which broker, as for the other control commands (broker/cli_control.py): ``--control URL`` (the
URL ``odradek serve`` prints: ``odradek control: http://127.0.0.1:PORT``), else the environment's
``ODRADEK_CONTROL``, else the broker ``odradek up`` runs for this folder. ``add`` prints the fault as the
broker lists it, with its id. Exit 0 on success; 1 when the broker refused (the reason printed,
such as what is wrong with the spec) or could not be reached; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json

from .cli_control import add_control_option, run_with_control

# Options of ``fault add`` -> the spec's field (the rest of the spec, the action, is positional).
_SPEC_OPTIONS = (("--api", "api", str), ("--error", "error", str), ("--delay-ms", "delay_ms", int),
                 ("--throttle-ms", "throttle_ms", int), ("--count", "count", int),
                 ("--duration-ms", "duration_ms", int), ("--topic", "topic", str), ("--partition", "partition", int),
                 ("--group", "group", str), ("--client-id", "client_id", str))


def add_command(commands) -> None:
    """Register ``fault`` on the ``odradek`` command's subparsers."""
    from .faults import ACTIONS

    control = argparse.ArgumentParser(add_help=False)
    add_control_option(control)
    fault = commands.add_parser("fault", help="script a running broker's faults (errors, delays, drops, offline)")
    actions = fault.add_subparsers(dest="fault_command", required=True, metavar="add|list|remove|clear")
    add = actions.add_parser("add", parents=[control], help="add a fault")
    add.add_argument("action", choices=ACTIONS)
    for option, field, kind in _SPEC_OPTIONS:
        add.add_argument(option, dest=field, type=kind, metavar=field.upper())
    listing = actions.add_parser("list", parents=[control], help="list the faults with their hits")
    listing.add_argument("--json", action="store_true", help="print the control API's JSON")
    remove = actions.add_parser("remove", parents=[control], help="remove a fault by id")
    remove.add_argument("id", type=int)
    actions.add_parser("clear", parents=[control], help="remove every fault")


def run(args) -> int:
    return run_with_control(args, "odradek fault", lambda client: _run(client, args))


def _run(client, args) -> int:
    if args.fault_command == "add":
        spec = {"action": args.action}
        spec.update({field: getattr(args, field) for _, field, _ in _SPEC_OPTIONS
                     if getattr(args, field) is not None})
        print(describe(client.call("POST", "/v1/faults", spec)))
    elif args.fault_command == "list":
        for fault in client.call("GET", "/v1/faults")["faults"]:
            print(json.dumps(fault) if args.json else describe(fault))
    elif args.fault_command == "remove":
        print(describe(client.call("DELETE", f"/v1/faults/{args.id}")))
    else:
        print(f"removed {client.call('DELETE', '/v1/faults')['removed']}")
    return 0


def describe(fault: dict) -> str:
    """One line: ``1 error api=Produce error=NOT_LEADER_OR_FOLLOWER count=3 hits=1 remaining=2 active``."""
    fields = [str(fault["id"]), fault["action"]]
    fields += [f"{key}={value}" for key, value in fault.items()
               if key not in ("id", "action", "active", "hits", "remaining", "expires_in_ms") and value is not None]
    fields.append(f"hits={fault['hits']}")
    if fault["remaining"] is not None:
        fields.append(f"remaining={fault['remaining']}")
    if fault["expires_in_ms"] is not None:
        fields.append(f"expires_in_ms={fault['expires_in_ms']}")
    fields.append("active" if fault["active"] else "inactive")
    return " ".join(fields)
