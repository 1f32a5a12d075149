"""The control API's route table: ``@route("POST", "/v1/faults/{id}")`` registers an
``async def handler(service, request) -> (status, document)``; ``{name}`` segments of the
pattern arrive in ``request.params``. The routes themselves live by area (routes.py imports
every area's module, so that registering happens when the server imports routes.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote
from typing import Awaitable, Callable

from .http import HttpError, Request

Handler = Callable[..., Awaitable[tuple[int, object]]]
ROUTES: list[tuple[str, re.Pattern, Handler]] = []


def route(method: str, pattern: str):
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, regex, handler))
        return handler
    return register


def find(request: Request) -> Handler:
    """The handler for ``request`` (its path parameters put in ``request.params``); HttpError
    404 for a path no route has, 405 for a method the path does not take."""
    methods = []
    for method, regex, handler in ROUTES:
        found = regex.match(request.path)
        if found is None:
            continue
        if method == request.method:
            # Each segment decoded on its own: a group id may hold a "/" (sent as %2F).
            request.params = {name: unquote(value) for name, value in found.groupdict().items()}
            return handler
        methods.append(method)
    if methods:
        raise HttpError(405, f"{request.path} takes {', '.join(sorted(set(methods)))}, not {request.method}")
    raise HttpError(404, f"no route {request.path}")
