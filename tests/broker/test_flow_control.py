"""The connection protocol object over a fake transport: response order, back-pressure
(reading pauses above the high-water mark and resumes below half of it), write pausing, and
closing on protocol errors after answering what came before."""

from __future__ import annotations

import asyncio
import struct

from odradek.broker.activity import Activity
from odradek.broker.config import BrokerConfig
from odradek.broker.faults import FaultRegistry
from odradek.broker.registry import HandlerRegistry, LaterResponse
from odradek.broker.server import KafkaProtocol
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from odradek.protocol.messages.metadata import MetadataRequest, MetadataResponse


class FakeTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.reading = True
        self.closed = False
        self.pause_count = 0
        self.write_calls = 0  # system calls a real transport would make (writelines: one)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5555) if name == "peername" else default

    def write(self, data):
        self.written += data
        self.write_calls += 1

    def writelines(self, chunks):
        self.written += b"".join(chunks)
        self.write_calls += 1

    def pause_reading(self):
        self.reading = False
        self.pause_count += 1

    def resume_reading(self):
        self.reading = True

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed


class FakeBroker:
    def __init__(self, **overrides):
        self.config = BrokerConfig.from_sources({k.replace("_", "."): str(v) for k, v in overrides.items()})
        self.faults = FaultRegistry()  # none added: the server asks it on every request


class FakeServer:
    def __init__(self, registry, **overrides):
        self.broker = FakeBroker(**overrides)
        self.registry = registry
        self.connections = set()
        self.activity = Activity()

    def connection_closed(self):
        pass


def make(registry, **overrides):
    server = FakeServer(registry, **overrides)
    protocol = KafkaProtocol(server, "PLAINTEXT")
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def responses(transport, client):
    client.receive_data(bytes(transport.written))
    transport.written.clear()
    out = []
    while (item := client.next_response()) is not None:
        out.append(item)
    return out


def test_responses_leave_in_request_order_even_when_later_ones_finish_first():
    registry = HandlerRegistry()
    gates: list[asyncio.Future] = []

    def slow_metadata(ctx, request):
        gate = asyncio.get_running_loop().create_future()
        gates.append(gate)

        async def wait():
            await gate
            return MetadataResponse(cluster_id="slow")
        return wait()

    registry.register(MetadataRequest, MetadataResponse, slow_metadata)
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse())

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        data = (client.encode_request(MetadataRequest(topics=None), 12, 1)
                + client.encode_request(ApiVersionsRequest(), 2, 2)
                + client.encode_request(MetadataRequest(topics=None), 12, 3))
        protocol.data_received(data)
        await asyncio.sleep(0)
        assert transport.written == b""  # the fast ApiVersions waits behind the slow Metadata
        gates[1].set_result(None)
        await asyncio.sleep(0.01)
        assert transport.written == b""
        gates[0].set_result(None)
        await asyncio.sleep(0.01)
        assert [cid for cid, _ in responses(transport, client)] == [1, 2, 3]

    asyncio.run(scenario())


def test_responses_finished_by_callbacks_in_one_pass_leave_in_one_write_in_order():
    """A group commit's round answers several requests of a connection from its callbacks:
    they go out together in the next pass of the loop (one wake-up of the client), in
    request order, whatever the order the callbacks ran in."""
    registry = HandlerRegistry()
    later: list[LaterResponse] = []

    def durable_metadata(ctx, request):
        answer = LaterResponse()
        later.append(answer)
        return answer

    registry.register(MetadataRequest, MetadataResponse, durable_metadata)

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(b"".join(client.encode_request(MetadataRequest(topics=None), 12, cid)
                                        for cid in (1, 2, 3)))
        await asyncio.sleep(0)
        assert len(later) == 3 and transport.written == b""
        for index in (2, 0, 1):  # one round's callbacks, in no particular order
            later[index].finish(MetadataResponse(cluster_id=f"answer-{index}"))
        assert transport.written == b""  # sent in the next pass, all together
        await asyncio.sleep(0)
        assert transport.write_calls == 1
        assert [(cid, response.cluster_id) for cid, response in responses(transport, client)] == [
            (1, "answer-0"), (2, "answer-1"), (3, "answer-2")]

    asyncio.run(scenario())


def test_reading_pauses_above_the_request_limit_and_resumes_below_half():
    registry = HandlerRegistry()
    gates: list[asyncio.Future] = []

    def parked(ctx, request):
        gate = asyncio.get_running_loop().create_future()
        gates.append(gate)

        async def wait():
            await gate
            return ApiVersionsResponse()
        return wait()

    registry.register(ApiVersionsRequest, ApiVersionsResponse, parked)

    async def scenario():
        protocol, transport = make(registry, queued_max_requests=4)
        client = ClientConnection()
        protocol.data_received(b"".join(client.encode_request(ApiVersionsRequest(), 2, i) for i in range(10)))
        assert not transport.reading
        assert len(gates) == 4  # the other 6 stay as undecoded bytes until there is room
        for gate in gates[:3]:
            gate.set_result(None)
        await asyncio.sleep(0.01)
        assert len(responses(transport, client)) == 3
        # Room again: the buffered requests are decoded (up to the limit) before reading resumes.
        assert len(gates) == 7
        while any(not gate.done() for gate in gates) or len(gates) < 10:
            for gate in gates:
                if not gate.done():
                    gate.set_result(None)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        assert len(responses(transport, client)) == 7
        assert transport.reading

    asyncio.run(scenario())


def test_paused_writing_holds_responses_and_then_reading():
    registry = HandlerRegistry()
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse())

    async def scenario():
        protocol, transport = make(registry, queued_max_requests=3)
        client = ClientConnection()
        protocol.pause_writing()
        protocol.data_received(b"".join(client.encode_request(ApiVersionsRequest(), 2, i) for i in range(5)))
        assert transport.written == b"" and not transport.reading
        protocol.resume_writing()
        assert [cid for cid, _ in responses(transport, client)] == [0, 1, 2, 3, 4]
        assert transport.reading

    asyncio.run(scenario())


def test_a_bad_frame_answers_pending_requests_then_closes():
    registry = HandlerRegistry()
    gate_holder = []

    def slow(ctx, request):
        gate = asyncio.get_running_loop().create_future()
        gate_holder.append(gate)

        async def wait():
            await gate
            return ApiVersionsResponse()
        return wait()

    registry.register(ApiVersionsRequest, ApiVersionsResponse, slow)

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(ApiVersionsRequest(), 2, 1))
        protocol.data_received(struct.pack(">i", -1))  # a later chunk with a bad size prefix
        assert not transport.closed and not transport.reading
        gate_holder[0].set_result(None)
        await asyncio.sleep(0.01)
        assert [cid for cid, _ in responses(transport, client)] == [1]
        assert transport.closed

    asyncio.run(scenario())


def test_an_unregistered_api_closes_the_connection():
    registry = HandlerRegistry()
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse())

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(MetadataRequest(topics=None), 12, 1))
        assert transport.closed and transport.written == b""

    asyncio.run(scenario())


def test_a_handler_bug_is_answered_unknown_server_error_and_the_connection_stays():
    registry = HandlerRegistry()

    def broken(ctx, request):
        raise RuntimeError("bug")

    async def broken_later(ctx, request):
        await asyncio.sleep(0)
        raise RuntimeError("bug after waiting")

    registry.register(ApiVersionsRequest, ApiVersionsResponse, broken)
    registry.register(MetadataRequest, MetadataResponse, broken_later)

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(ApiVersionsRequest(), 2, 1)
                               + client.encode_request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(
                                   name="t")]), 12, 2))
        for _ in range(5):
            await asyncio.sleep(0)
        answered = responses(transport, client)
        assert [correlation_id for correlation_id, _ in answered] == [1, 2]
        assert answered[0][1].error_code == -1
        assert [(topic.name, topic.error_code) for topic in answered[1][1].topics] == [("t", -1)]
        assert not transport.closed

    asyncio.run(scenario())


def test_a_response_that_cannot_be_encoded_is_answered_with_the_error_response():
    registry = HandlerRegistry()
    # An error code outside int16: the encoder refuses it (a handler bug found at encoding).
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse(error_code=1 << 20))

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(ApiVersionsRequest(), 2, 1)
                               + client.encode_request(ApiVersionsRequest(), 2, 2))
        answered = responses(transport, client)
        assert [(correlation_id, body.error_code) for correlation_id, body in answered] == [(1, -1), (2, -1)]
        assert not transport.closed

    asyncio.run(scenario())


def test_a_failed_acks_0_produce_closes_the_connection_after_the_earlier_responses():
    from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse

    registry = HandlerRegistry()
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse())

    def broken(ctx, request):
        raise OSError(24, "Too many open files")

    registry.register(ProduceRequest, ProduceResponse, broken)

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(ApiVersionsRequest(), 2, 1)
                               + client.encode_request(ProduceRequest(acks=0, timeout_ms=1), 9, 2))
        assert [correlation_id for correlation_id, _ in responses(transport, client)] == [1]
        assert transport.closed

    asyncio.run(scenario())


def test_answers_sent_together_before_a_close_are_written_before_it():
    """A durable answer finished in the same pass as a failed acks=0 produce behind it: the
    answer is written, then the connection closes."""
    from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse

    registry = HandlerRegistry()
    later: list[LaterResponse] = []

    def durable_metadata(ctx, request):
        later.append(LaterResponse())
        return later[-1]

    def broken(ctx, request):
        raise OSError(24, "Too many open files")

    registry.register(MetadataRequest, MetadataResponse, durable_metadata)
    registry.register(ProduceRequest, ProduceResponse, broken)

    async def scenario():
        protocol, transport = make(registry)
        client = ClientConnection()
        protocol.data_received(client.encode_request(MetadataRequest(topics=None), 12, 1)
                               + client.encode_request(ProduceRequest(acks=0, timeout_ms=1), 9, 2))
        await asyncio.sleep(0)
        assert not transport.closed
        later[0].finish(MetadataResponse(cluster_id="durable"))
        await asyncio.sleep(0)
        assert [(cid, body.cluster_id) for cid, body in responses(transport, client)] == [(1, "durable")]
        assert transport.closed

    asyncio.run(scenario())


class _Region:
    def __init__(self, file, position, length):
        self.file, self.position, self.length = file, position, length


def test_record_data_is_read_only_as_fast_as_the_socket_takes_it(tmp_path):
    from odradek.broker.records_source import FileRegions
    from odradek.broker.server import SEND_CHUNK_SIZE
    from odradek.protocol.messages.fetch import FetchRequest, FetchResponse

    payload = bytes(range(256)) * (5 * SEND_CHUNK_SIZE // 256 + 7)
    path = tmp_path / "segment.log"
    path.write_bytes(b"head" + payload)
    handle = open(path, "rb")
    registry = HandlerRegistry()

    def serve(ctx, request):
        return FetchResponse(responses=[FetchResponse.FetchableTopicResponse(
            topic="t", partitions=[FetchResponse.FetchableTopicResponse.PartitionData(
                partition_index=0, records=FileRegions([_Region(handle, 4, len(payload))]))])])

    registry.register(FetchRequest, FetchResponse, serve, min_version=4)
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: ApiVersionsResponse())

    async def scenario():
        protocol, transport = make(registry)
        received = bytearray()
        original_write = transport.write

        def write(data):  # a socket that takes one write, then is full until drained
            original_write(data)
            protocol.pause_writing()

        transport.write = write
        client = ClientConnection()
        protocol.data_received(client.encode_request(FetchRequest(max_wait_ms=0), 12, 1)
                               + client.encode_request(ApiVersionsRequest(), 2, 2))
        writes = 0
        while True:
            assert len(transport.written) <= SEND_CHUNK_SIZE + 4096  # never more than a chunk at once
            received += transport.written
            transport.written.clear()
            writes += 1
            if not protocol._writing_paused:
                break
            protocol.resume_writing()
        client.receive_data(bytes(received))
        first = client.next_response()
        second = client.next_response()
        assert first[0] == 1 and bytes(first[1].responses[0].partitions[0].records) == payload
        assert second[0] == 2
        assert writes > 5

    try:
        asyncio.run(scenario())
    finally:
        handle.close()


def test_thousands_of_pipelined_requests_after_a_pause_do_not_recurse():
    registry = HandlerRegistry()
    gates: list[asyncio.Future] = []

    def first_parked(ctx, request):
        if not gates:
            gate = asyncio.get_running_loop().create_future()
            gates.append(gate)

            async def wait():
                await gate
                return ApiVersionsResponse()
            return wait()
        return ApiVersionsResponse()

    registry.register(ApiVersionsRequest, ApiVersionsResponse, first_parked)

    async def scenario():
        protocol, transport = make(registry, queued_max_requests=4)
        client = ClientConnection()
        count = 3000
        protocol.data_received(b"".join(client.encode_request(ApiVersionsRequest(), 2, i) for i in range(count)))
        gates[0].set_result(None)
        await asyncio.sleep(0.05)
        assert [cid for cid, _ in responses(transport, client)] == list(range(count))

    asyncio.run(scenario())


def test_acks_all_answers_timeout_and_storage_errors_per_partition():
    from odradek.broker.handlers.produce import PartitionResponse, _DurableAnswer
    from odradek.protocol import error_codes
    from odradek.protocol.messages.produce import ProduceResponse

    class CalledBack:
        """A partition whose group commit calls back when the test says so."""

        def when_durable(self, end_offset, on_durable):
            self.on_durable = on_durable
            return True

    async def answer(timeout_ms, settle):
        answers = [PartitionResponse(index=i, error_code=0, base_offset=0) for i in range(3)]
        response = ProduceResponse(responses=[ProduceResponse.TopicProduceResponse(name="t", partition_responses=answers)])
        partitions = [CalledBack() for _ in answers]
        durable = _DurableAnswer(response)
        for partition, partition_answer in zip(partitions, answers):
            durable.wait_for(partition, 1, partition_answer)
        later = durable.start(timeout_ms)
        for partition, error in zip(partitions, settle):
            if error is not ...:
                partition.on_durable(error)
        result = await later
        for partition in partitions:  # rounds that end after the answer change nothing
            partition.on_durable(OSError("too late"))
        return [a.error_code for a in result.responses[0].partition_responses]

    synced, failed, never = None, OSError("disk on fire"), ...
    assert asyncio.run(answer(50, [synced, never, failed])) == [
        0, error_codes.REQUEST_TIMED_OUT, error_codes.KAFKA_STORAGE_ERROR]
    # all three settled: answered at once, long before the (10 s) timeout
    assert asyncio.run(asyncio.wait_for(answer(10_000, [synced, synced, failed]), 5)) == [
        0, 0, error_codes.KAFKA_STORAGE_ERROR]
