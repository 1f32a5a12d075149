"""Config parsing: Kafka's properties format, typed values, validation naming the key."""

import pytest
from hypothesis import given, strategies as st

from odradek.broker.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    BrokerConfig,
    ConfigError,
    ConfigSource,
    parse_overrides,
    topic_config_defaults,
    validate_topic_configs,
)
from odradek.broker.properties import PropertiesError, parse_properties


def test_properties_comments_separators_and_whitespace():
    text = "# comment\n! also comment\n\n  a=1\nb : 2\nc 3\nd=\ne\n f =  spaced value  \n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "", "e": "", "f": "spaced value  "}


def test_properties_continuation_and_escapes():
    text = "key = first \\\n     second\\\n third\npath=C:\\\\data\\tx\nuni=\\u0041\\u00e9\nk\\=x=v\\:w\n"
    props = parse_properties(text)
    assert props["key"] == "first secondthird"  # continuation whitespace dropped, as Java does
    assert props["path"] == "C:\\data\tx"
    assert props["uni"] == "A\u00e9"
    assert props["k=x"] == "v:w"


def test_properties_even_backslashes_do_not_continue_and_comments_never_continue():
    text = "a=x\\\\\nb=y\n# comment \\\nc=z\r\nd=w\r"
    assert parse_properties(text) == {"a": "x\\", "b": "y", "c": "z", "d": "w"}


def test_properties_later_key_wins_and_bad_unicode_escape_refused():
    assert parse_properties("a=1\na=2") == {"a": "2"}
    with pytest.raises(PropertiesError):
        parse_properties("a=\\u12x4")


@given(st.text(max_size=200))
def test_properties_parser_accepts_or_refuses_cleanly(text):
    try:
        result = parse_properties(text)
    except PropertiesError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


@given(st.dictionaries(st.from_regex(r"[a-z][a-z.]{0,15}", fullmatch=True), st.from_regex(r"[ -~]{0,20}", fullmatch=True), max_size=5))
def test_properties_round_trip_of_escaped_pairs(pairs):
    def escape(text):
        out = text.replace("\\", "\\\\").replace("=", "\\=").replace(":", "\\:").replace("#", "\\#").replace("!", "\\!")
        return ("\\ " + out[1:]) if out.startswith(" ") else out

    text = "\n".join(f"{k}={escape(v)}" for k, v in pairs.items())
    assert parse_properties(text) == pairs


def test_defaults_need_nothing():
    config = BrokerConfig.from_sources({})
    assert config.node_id == 1
    assert [str(item) for item in config.listeners] == ["PLAINTEXT://localhost:9092"]
    assert config.log_dir == "./odradek-data"
    assert config["num.partitions"] == 1
    assert config["auto.create.topics.enable"] is True
    assert config.log_retention_ms == 168 * 3_600_000
    assert config.source("num.partitions") is ConfigSource.DEFAULT_CONFIG


def test_typed_parsing_and_precedence():
    config = BrokerConfig.from_sources(
        {"num.partitions": " 3 ", "log.retention.hours": "1", "auto.create.topics.enable": "FALSE", "log.dirs": "/a, /b"},
        {"log.retention.minutes": "5", "node.id": "7"},
    )
    assert config["num.partitions"] == 3
    assert config["auto.create.topics.enable"] is False
    assert config.log_dir == "/a"
    assert config.log_retention_ms == 5 * 60_000
    assert config.node_id == 7
    assert config.source("num.partitions") is ConfigSource.STATIC_BROKER_CONFIG
    assert topic_config_defaults(config)["retention.ms"] == 300_000


def test_broker_id_used_when_node_id_unset():
    assert BrokerConfig.from_sources({"broker.id": "4"}).node_id == 4


@pytest.mark.parametrize(
    "key,value",
    [
        ("num.partitions", "0"),
        ("num.partitions", "many"),
        ("num.partitions", "99999999999"),
        ("auto.create.topics.enable", "yes"),
        ("log.cleanup.policy", "delete,forever"),
        ("listeners", "PLAINTEXT//localhost:9092"),
        ("listeners", "PLAINTEXT://localhost:9092,PLAINTEXT://localhost:9093"),
        ("listeners", "SSL://localhost:9093"),
        ("compression.type", "brotli"),
        ("cluster.id", "not-a-cluster-id"),
    ],
)
def test_invalid_values_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_sources({key: value})
    assert info.value.key in (key, "listener.security.protocol.map")
    assert key in str(info.value) or "listener" in str(info.value)


def test_unknown_keys_are_kept_and_warned():
    warnings = []

    class Recorder:
        def warning(self, event, **kw):
            warnings.append((event, kw))

    config = BrokerConfig.from_sources({"no.such.key": "1", "num.partitions": "2"}, logger=Recorder())
    assert config.unknown == {"no.such.key": "1"}
    assert warnings and warnings[0][1]["keys"] == ["no.such.key"]


def test_overrides():
    assert parse_overrides(["a=b=c", "x="]) == {"a": "b=c", "x": ""}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def test_topic_configs_have_valid_defaults_and_known_synonyms():
    for name, definition in TOPIC_CONFIGS.items():
        assert definition.parse(definition.default) == definition.default, name
        for synonym in definition.synonyms:
            assert synonym in BROKER_CONFIGS, (name, synonym)
    for name, definition in BROKER_CONFIGS.items():
        if definition.default is not None:
            assert definition.parse(definition.default) == definition.default, name


def test_topic_config_validation():
    assert validate_topic_configs({"cleanup.policy": "compact,delete", "retention.ms": "-1"}) == {
        "cleanup.policy": ["compact", "delete"],
        "retention.ms": -1,
    }
    with pytest.raises(ConfigError):
        validate_topic_configs({"retention.mss": "1"})
    with pytest.raises(ConfigError):
        validate_topic_configs({"min.cleanable.dirty.ratio": "2"})


def test_wildcard_address_must_not_be_advertised():
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_sources({"listeners": "PLAINTEXT://0.0.0.0:9092"})
    assert "nonroutable" in str(info.value)
    config = BrokerConfig.from_sources({"listeners": "PLAINTEXT://0.0.0.0:9092",
                                        "advertised.listeners": "PLAINTEXT://broker.example:9092"})
    assert [(listener.host, listener.port) for listener in config.advertised_listeners] == [("broker.example", 9092)]
    assert [(listener.host, listener.port) for listener in BrokerConfig.from_sources({"listeners": "PLAINTEXT://[::1]:0"}).listeners] == [("::1", 0)]
