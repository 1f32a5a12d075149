"""``odradek.advertise.kafka.version``: serve only what an older Kafka release served.

Set to a release line (``2.8``, ``0.11``, ...), the broker advertises in ApiVersions only the
APIs that release had, each with the versions it had, and the connection codec accepts only
those: a request at another version gets what Kafka gives it (an ApiVersions request the KIP-511
answer, UNSUPPORTED_VERSION with the versions served; any other request a closed connection), so a
client's fallback paths for an older broker can be tested. A feature is advertised up to the
level the release supported by default (``transaction.version``: not before 4.0).

What a release served comes from protocol/kafka_releases.py, generated from its kafka-clients
jar (tools/generate_kafka_releases.py). The range served for an API is the intersection of the
release's and odradek's own: an old release may list versions odradek does not implement (Kafka
4 dropped the oldest ones), and an API odradek serves that the release did not have is neither
advertised nor accepted.
"""

from __future__ import annotations

from odradek.protocol.kafka_releases import API_VERSIONS, FEATURES

CONFIG_KEY = "odradek.advertise.kafka.version"


def release_line(value: str) -> str:
    """The release line a value names: ``2.8`` and ``2.8.2`` -> ``2.8``, ``0.11.0`` -> ``0.11``.

    ValueError, listing the lines odradek can advertise, for anything else."""
    parts = value.strip().split(".")
    line = ".".join(parts[:2])
    if 2 <= len(parts) <= 4 and all(part.isdigit() for part in parts) and line in API_VERSIONS:
        return line
    raise ValueError(f"not a Kafka release odradek can advertise; one of {', '.join(API_VERSIONS)} "
                     "(a patch release such as 2.8.2 stands for its line)")


def restrict(served: dict[int, tuple[int, int]], release: str | None) -> dict[int, tuple[int, int]]:
    """``served`` (api key -> (min, max)) cut down to what ``release`` had; all of it for None."""
    if release is None:
        return dict(served)
    had = API_VERSIONS[release_line(release)]
    ranges = {}
    for key, (low, high) in served.items():
        if key in had:
            low, high = max(low, had[key][0]), min(high, had[key][1])
            if low <= high:
                ranges[key] = (low, high)
    return ranges


def feature_level(release: str | None, feature: str, own: int) -> int:
    """The newest level of ``feature`` a broker advertising ``release`` supports: odradek's own
    (``own``) capped at the release's default, 0 for a release that did not support it."""
    if release is None:
        return own
    return min(own, FEATURES[release_line(release)].get(feature, 0))
