"""The control API's asyncio server: HTTP/1.1 with keep-alive on 127.0.0.1, one request at a
time per connection, each handed to its route (router.py) on the broker's event loop, so a
route sees and changes the broker's state exactly as a Kafka request does."""

from __future__ import annotations

import asyncio

import structlog

from . import router, routes  # noqa: F401 - importing routes registers every route
from .http import HttpError, RequestParser, response_bytes

log = structlog.get_logger("odradek.control")

# Loopback only: the control API can wipe the broker and has no authentication.
CONTROL_HOST = "127.0.0.1"
# A keep-alive connection with no request for this long is closed.
IDLE_SECONDS = 120.0


class ControlServer:
    def __init__(self, service):
        self.service = service
        self._server: asyncio.AbstractServer | None = None
        self.port: int | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{CONTROL_HOST}:{self.port}"

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve_connection, CONTROL_HOST, port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        parser = RequestParser()
        try:
            while True:
                try:
                    request = parser.next_request()
                except HttpError as error:
                    writer.write(response_bytes(error.status, {"error": error.message}, keep_alive=False))
                    await writer.drain()
                    return
                if request is None:
                    data = await asyncio.wait_for(reader.read(65536), IDLE_SECONDS)
                    if not data:
                        return
                    parser.receive(data)
                    continue
                status, document = await self._answer(request)
                writer.write(response_bytes(status, document, keep_alive=request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (asyncio.TimeoutError, ConnectionError):
            return
        except asyncio.CancelledError:
            return  # stop(): the connection ends here (re-raising makes asyncio's streams log it)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, request) -> tuple[int, object]:
        try:
            handler = router.find(request)
            return await handler(self.service, request)
        except HttpError as error:
            return error.status, {"error": error.message}
        except Exception as error:  # a bug: answered 500, logged with its traceback
            log.error("control request failed", method=request.method, path=request.path, error=repr(error),
                      exc_info=error)
            return 500, {"error": repr(error)}
