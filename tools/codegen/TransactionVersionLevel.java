// Prints the newest production level of the transaction.version feature a kafka-server-common
// jar defines (3.9 on): the level a broker of that release supports by default, without
// unstable.feature.versions.enable. The enum is Features in 3.9 and Feature from 4.0; both have
// TRANSACTION_VERSION and latestProduction(). Run by tools/generate_kafka_releases.py with the
// source launcher on the jar (plus kafka-clients, which it uses).
import java.lang.reflect.Method;

public class TransactionVersionLevel {
    public static void main(String[] args) throws Exception {
        Class<?> features;
        try {
            features = Class.forName("org.apache.kafka.server.common.Feature");
        } catch (ClassNotFoundException renamedIn40) {
            features = Class.forName("org.apache.kafka.server.common.Features");
        }
        Object feature = features.getField("TRANSACTION_VERSION").get(null);
        Method latestProduction = features.getMethod("latestProduction");
        System.out.println(((Number) latestProduction.invoke(feature)).intValue());
    }
}
