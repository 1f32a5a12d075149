"""Real clients against the connection codec alone (no broker): a loopback socket served by a
thread that feeds a ServerConnection and answers ApiVersions and Metadata.

What it shows: the first requests librdkafka (confluent-kafka) and kafka-python really send
decode; and KIP-511 works with them end to end: when the server serves ApiVersions only up to
v2, the client's newer ApiVersions is answered at v0 with UNSUPPORTED_VERSION and ApiVersions'
range, the client retries at a version we serve, and goes on to a Metadata request within the
range advertised."""

import socket
import threading
import time

import pytest

from odradek.protocol import error_codes
from odradek.protocol.connection import ServerConnection
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.api_versions import ApiVersionsResponse
from odradek.protocol.messages.metadata import MetadataResponse

SERVED = {18: (0, 2), 3: (0, 9)}  # ApiVersions v0-2, Metadata v0-9: older than any client here


class RecordingServer:
    """Accepts connections on 127.0.0.1 in a thread; records (api_key, api_version, answered
    with UNSUPPORTED_VERSION) for each request, answers ApiVersions and Metadata."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.seen: list[tuple[int, int, bool]] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock):
        sock.settimeout(0.2)
        connection = ServerConnection(api_versions=SERVED)
        try:
            while not self.stopping.is_set():
                try:
                    data = sock.recv(65536)
                except (TimeoutError, socket.timeout):
                    continue
                if not data:
                    return
                connection.receive_data(data)
                while True:
                    try:
                        request = connection.next_request()
                    except ProtocolError as error:
                        if error.request is None:
                            raise
                        self.seen.append((error.api_key, error.api_version, True))
                        answer = ApiVersionsResponse(
                            error_code=error_codes.UNSUPPORTED_VERSION,
                            api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=2)])
                        sock.sendall(connection.encode_response(error.request, answer))
                        continue
                    if request is None:
                        break
                    self.seen.append((request.api_key, request.api_version, False))
                    sock.sendall(connection.encode_response(request, self._answer(request)))
        except BaseException as error:  # surfaced by the test
            self.errors.append(error)
        finally:
            sock.close()

    def _answer(self, request):
        if request.api_key == 18:
            return ApiVersionsResponse(api_keys=[
                ApiVersionsResponse.ApiVersion(api_key=key, min_version=low, max_version=high)
                for key, (low, high) in sorted(SERVED.items())])
        broker = MetadataResponse.MetadataResponseBroker(node_id=1, host="127.0.0.1", port=self.port)
        return MetadataResponse(brokers=[broker], cluster_id="odradek-test", controller_id=1)

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.02)

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        self.listener.close()


@pytest.fixture
def server():
    recording = RecordingServer()
    yield recording
    recording.close()
    assert not recording.errors, recording.errors


def assert_kip511_sequence(seen):
    api_versions = [entry for entry in seen if entry[0] == 18]
    _, first_version, first_answered_v0 = api_versions[0]
    assert first_version > 2 and first_answered_v0  # newer than we serve: answered at v0
    # Retried within what we serve: kafka-python picks the advertised v2; librdkafka reads the v0
    # answer as its v3 (flexible) layout, fails, and falls back to v0 -- as it does with Kafka,
    # whose answer is byte for byte this one.
    assert any(version <= 2 and not answered for _, version, answered in api_versions[1:])
    metadata = [version for key, version, _ in seen if key == 3]
    assert metadata and all(version <= 9 for version in metadata)


def test_librdkafka_falls_back_through_kip511(server):
    import confluent_kafka
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({
        "bootstrap.servers": f"127.0.0.1:{server.port}", "socket.timeout.ms": 2000,
        "reconnect.backoff.ms": 50, "log_level": 0})
    try:
        admin.list_topics(timeout=3)
    except confluent_kafka.KafkaException:
        pass  # our answers are minimal; what matters is what the client sent
    server.wait_for(lambda: any(key == 3 for key, _, _ in server.seen))
    assert_kip511_sequence(server.seen)


def test_kafka_python_falls_back_through_kip511(server):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError
    try:
        client = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{server.port}", request_timeout_ms=3000)
        client.close()
    except KafkaError:
        pass
    server.wait_for(lambda: any(key == 3 for key, _, _ in server.seen))
    assert_kip511_sequence(server.seen)
