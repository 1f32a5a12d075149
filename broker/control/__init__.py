"""The control API: what a test harness in any language uses to drive a running broker.

An HTTP/1.1 JSON server on the loopback interface only (it has no authentication), on its own
port (``odradek.control.port``), beside the Kafka listeners: reset the broker's state, save and
restore snapshots, script faults, see which clients connected and what they asked. The
embedded broker (``odradek.Broker``) and the ``odradek`` command reach it through
:class:`~odradek.broker.control.client.ControlClient`. docs/testing.md documents every route.

- ``http.py``: the sans-I/O HTTP/1.1 request parser and response writer;
- ``server.py``: the asyncio server and the dispatch to routes;
- ``routes.py``: the route table and the routes of the broker's state (status, reset, snapshots);
- ``client.py``: the blocking client (standard library only).
"""
