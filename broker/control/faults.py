"""The control API's fault routes (docs/testing.md "Faults"; the faults themselves:
broker/faults.py).

- ``POST /v1/faults`` with a fault spec: 201 and the fault as listed (its ``id``); 400 saying
  what is wrong with a spec that is not one.
- ``GET /v1/faults``: ``{"faults": [...]}``, each with its ``hits``, ``remaining`` (of its count),
  ``expires_in_ms`` and whether it is still ``active``; used-up and expired faults stay listed.
- ``GET /v1/faults/{id}``: one of them; 404 when there is none.
- ``DELETE /v1/faults/{id}``: removes it, answered with it as it was last (its hits); 404.
- ``DELETE /v1/faults``: removes every fault, answered ``{"removed": N}``.
"""

from __future__ import annotations

from odradek.broker.faults import FaultSpecError

from .http import HttpError
from .router import route


@route("POST", "/v1/faults")
async def add_fault(service, request):
    registry = service.broker.faults
    try:
        fault = registry.add(request.json)
    except FaultSpecError as error:
        raise HttpError(400, str(error)) from None
    return 201, registry.describe(fault)


@route("GET", "/v1/faults")
async def list_faults(service, request):
    return 200, {"faults": service.broker.faults.list()}


@route("GET", "/v1/faults/{id}")
async def get_fault(service, request):
    registry = service.broker.faults
    fault = registry.get(_fault_id(request))
    if fault is None:
        raise HttpError(404, f"no fault {request.params['id']}")
    return 200, registry.describe(fault)


@route("DELETE", "/v1/faults/{id}")
async def remove_fault(service, request):
    registry = service.broker.faults
    fault = registry.remove(_fault_id(request))
    if fault is None:
        raise HttpError(404, f"no fault {request.params['id']}")
    return 200, registry.describe(fault)


@route("DELETE", "/v1/faults")
async def clear_faults(service, request):
    return 200, {"removed": service.broker.faults.clear()}


def _fault_id(request) -> int:
    text = request.params["id"]
    if not text.isdigit() or not text.isascii():
        raise HttpError(400, f"a fault id is a number, not {text[:50]!r}")
    return int(text)
