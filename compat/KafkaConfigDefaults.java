// Prints the default of every broker and topic configuration key as Kafka itself defines them
// (kafka.server.KafkaConfig's and LogConfig's ConfigDef), one line each:
//     <broker|topic> TAB <name> TAB <default as Kafka writes it, or NO_DEFAULT>
// Run as a single-file program on the classpath of Kafka's jars (compat/kafka_jars.py); used by
// tests/broker/test_config_agreement.py to hold odradek's defaults to Kafka's.
import org.apache.kafka.common.config.ConfigDef;

public class KafkaConfigDefaults {
    static void print(String kind, ConfigDef definitions) {
        for (ConfigDef.ConfigKey key : definitions.configKeys().values()) {
            String shown = key.defaultValue == ConfigDef.NO_DEFAULT_VALUE ? "NO_DEFAULT"
                : ConfigDef.convertToString(key.defaultValue, key.type);
            System.out.println(kind + "\t" + key.name + "\t" + shown);
        }
    }

    public static void main(String[] args) {
        print("broker", kafka.server.KafkaConfig.configDef());
        print("topic", org.apache.kafka.storage.internals.log.LogConfig.configDefCopy());
    }
}
