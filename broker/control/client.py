"""The blocking client of the control API (standard library only): what the embedded broker
(``odradek.Broker``) and the ``odradek`` command use to drive a running broker."""

from __future__ import annotations

import http.client
import json
import urllib.parse


class ControlError(Exception):
    """The control API answered an error: ``status`` (HTTP) and the broker's message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ControlClient:
    """One keep-alive connection to ``url`` (``http://127.0.0.1:PORT``), reopened when the
    broker closed it. Not thread-safe: one per thread."""

    def __init__(self, url: str, timeout: float = 60.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"a control URL is http://HOST:PORT, not {url!r}")
        self.url = url
        self._host, self._port, self._timeout = parts.hostname, parts.port, timeout
        self._connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body=None, query: dict | None = None):
        """The parsed JSON answer (None for 204); ControlError for a 4xx or 5xx."""
        if query:
            path += "?" + urllib.parse.urlencode({key: value for key, value in query.items() if value is not None})
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (1, 2):
            connection = self._connection or http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._connection = connection
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.BadStatusLine):
                # A keep-alive connection the broker closed meanwhile (idle, or a restart):
                # once more on a new one. A request that never reached the broker is safe to resend.
                self.close()
                if attempt == 2:
                    raise
        if response.will_close:
            self.close()
        document = json.loads(data) if data.strip() else None
        if response.status >= 400:
            message = document.get("error") if isinstance(document, dict) else data.decode(errors="replace")
            raise ControlError(response.status, message)
        return document

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
