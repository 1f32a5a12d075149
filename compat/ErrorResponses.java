import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.util.HexFormat;

import org.apache.kafka.common.errors.KafkaStorageException;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.common.requests.AbstractRequest;
import org.apache.kafka.common.requests.AbstractResponse;

/**
 * Kafka's own answer to a request whose handling failed: for each input line
 * "API_KEY VERSION FAILURE REQUEST_BODY_HEX" (FAILURE "storage": a KafkaStorageException with
 * the message "x"; "unknown": a RuntimeException, Kafka's UNKNOWN_SERVER_ERROR), parses the
 * request with Kafka's AbstractRequest.parseRequest and prints one line: "OK " and the body of
 * request.getErrorResponse(0, exception) serialized at VERSION in hex; "NULL" when Kafka has no
 * error response (it closes the connection); "UNSUPPORTED" for a version this Kafka does not
 * speak; "REFUSED " and the exception when Kafka's parsing refuses the request.
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
            Throwable failure = parts[2].equals("storage") ? new KafkaStorageException("x") : new RuntimeException("x");
            byte[] body = parts.length > 3 ? hex.parseHex(parts[3]) : new byte[0];
            if (version < api.oldestVersion() || version > api.latestVersion(true)) {
                System.out.println("UNSUPPORTED");
                continue;
            }
            AbstractRequest request;
            try {
                request = AbstractRequest.parseRequest(api, version, new ByteBufferAccessor(ByteBuffer.wrap(body))).request;
            } catch (Exception e) {
                System.out.println("REFUSED " + e.toString().replace('\n', ' '));
                continue;
            }
            AbstractResponse response = request.getErrorResponse(0, failure);
            if (response == null) {
                System.out.println("NULL");
                continue;
            }
            ByteBuffer buffer = MessageUtil.toByteBufferAccessor(response.data(), version).buffer();
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            System.out.println("OK " + hex.formatHex(bytes));
        }
    }
}
