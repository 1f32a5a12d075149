import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.util.HexFormat;

import org.apache.kafka.common.errors.KafkaStorageException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.requests.AbstractRequest;
import org.apache.kafka.common.requests.AbstractResponse;

/**
 * Kafka's own answer to a request whose handling failed: for each input line
 * "API_KEY VERSION FAILURE REQUEST_BODY_HEX" (FAILURE "storage": a KafkaStorageException with
 * the message "x"; "unsupported": an UnsupportedVersionException (ApiVersions then lists its
 * own range, KIP-511); "unknown": a RuntimeException, Kafka's UNKNOWN_SERVER_ERROR), parses the
 * request with Kafka's AbstractRequest.parseRequest and prints one line: "OK " and the body of
 * request.getErrorResponse(0, exception) serialized at VERSION in hex; "NULL" when Kafka has no
 * error response (it closes the connection); "UNSUPPORTED" for a version this Kafka does not
 * speak; "REFUSED " and the exception when Kafka's parsing refuses the request; "THROWS " and the
 * exception when getErrorResponse itself throws.
 *
 * Compiles against kafka-clients 4.x and 3.9 alike (3.9's parseRequest takes a ByteBuffer, 4.x's a
 * Readable), so that the versions Kafka 4 dropped can be checked with 3.9.
 *
 * tests/broker/test_error_responses.py compares odradek's error responses with these, field by
 * field. Nothing printed here is committed.
 */
public class ErrorResponses {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        HexFormat hex = HexFormat.of();
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.trim().split(" ", -1);
            ApiKeys api = ApiKeys.forId(Integer.parseInt(parts[0]));
            short version = Short.parseShort(parts[1]);
            Throwable failure = switch (parts[2]) {
                case "storage" -> new KafkaStorageException("x");
                case "unsupported" -> new UnsupportedVersionException("x");
                default -> new RuntimeException("x");
            };
            byte[] body = parts.length > 3 ? hex.parseHex(parts[3]) : new byte[0];
            if (version < api.oldestVersion() || version > api.latestVersion(true)) {
                System.out.println("UNSUPPORTED");
                continue;
            }
            AbstractRequest request;
            try {
                request = parse(api, version, body);
            } catch (InvocationTargetException e) {
                System.out.println("REFUSED " + e.getCause().toString().replace('\n', ' '));
                continue;
            }
            AbstractResponse response;
            try {
                response = request.getErrorResponse(0, failure);
            } catch (Exception e) {  // a Produce with null records: Kafka's own error path fails
                System.out.println("THROWS " + e.toString().replace('\n', ' '));
                continue;
            }
            if (response == null) {
                System.out.println("NULL");
                continue;
            }
            Message data = response.data();
            ObjectSerializationCache cache = new ObjectSerializationCache();
            ByteBuffer buffer = ByteBuffer.allocate(data.size(cache, version));
            data.write(new ByteBufferAccessor(buffer), cache, version);
            System.out.println("OK " + hex.formatHex(buffer.array()));
        }
    }

    private static AbstractRequest parse(ApiKeys api, short version, byte[] body) throws Exception {
        for (Method method : AbstractRequest.class.getMethods()) {
            if (method.getName().equals("parseRequest") && method.getParameterCount() == 3) {
                Class<?> input = method.getParameterTypes()[2];
                Object readable = input == ByteBuffer.class ? ByteBuffer.wrap(body) : new ByteBufferAccessor(ByteBuffer.wrap(body));
                Object parsed = method.invoke(null, api, version, readable);
                return (AbstractRequest) parsed.getClass().getField("request").get(parsed);
            }
        }
        throw new IllegalStateException("no AbstractRequest.parseRequest(ApiKeys, short, input)");
    }
}
