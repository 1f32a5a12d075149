// Prints the request versions a kafka-clients jar of Kafka 0.11 to 2.3 declares, one API a line:
// "<api key> <oldest version> <latest version>". Those releases define their schemas in Java
// (no JSON files in the jar), and org.apache.kafka.common.protocol.ApiKeys is where each API's
// range is read from: its oldestVersion() and latestVersion() are what the release's own
// ApiVersionsResponse advertised. Run by tools/generate_kafka_releases.py with the source launcher
// (java -cp <jar> OldApiKeys.java); methods are found by reflection so that one program reads
// every release.
import java.lang.reflect.Field;
import java.lang.reflect.Method;

public class OldApiKeys {
    public static void main(String[] args) throws Exception {
        Class<?> apiKeys = Class.forName("org.apache.kafka.common.protocol.ApiKeys");
        Method oldest = apiKeys.getMethod("oldestVersion");
        Method latest = apiKeys.getMethod("latestVersion");
        Field id = apiKeys.getField("id");
        for (Object key : apiKeys.getEnumConstants()) {
            System.out.println(((Number) id.get(key)).intValue() + " "
                    + ((Number) oldest.invoke(key)).intValue() + " "
                    + ((Number) latest.invoke(key)).intValue());
        }
    }
}
