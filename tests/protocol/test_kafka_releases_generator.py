"""tools/generate_kafka_releases.py: how a release's request schemas become its version table
(synthetic jars built here; the real table is checked against Kafka's jars by tox -e check), and
that the committed table is the generator's rendering of itself."""

from __future__ import annotations

import os
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import generate_kafka_releases  # noqa: E402

from odradek.protocol import kafka_releases  # noqa: E402


def jar_with(tmp_path, files: dict[str, str]) -> zipfile.ZipFile:
    path = tmp_path / "kafka-clients.jar"
    with zipfile.ZipFile(path, "w") as jar:
        for name, text in files.items():
            jar.writestr(f"common/message/{name}", text)
    return zipfile.ZipFile(path)


def request(key: int, valid: str, extra: str = "") -> str:
    return ('// a comment, as in Kafka\'s files\n{ "apiKey": %d, "type": "request", "name": "X%dRequest", '
            '"validVersions": "%s", %s "fields": [] }' % (key, key, valid, extra))


def test_ranges_from_request_schemas(tmp_path):
    jar = jar_with(tmp_path, {
        "ProduceRequest.json": request(0, "3-13"),
        "FetchRequest.json": request(1, "4-18", '"latestVersionUnstable": true,'),
        "OnlyUnstableRequest.json": request(7, "0", '"latestVersionUnstable": true,'),
        "VoteRequest.json": request(52, "0-2", '"listeners": ["controller"],'),
        "MetadataRequest.json": request(3, "0-13", '"listeners": ["zkBroker", "broker"],'),
        "RemovedRequest.json": request(4, "none"),
        "StrayRequest.json": request(5, "0-1") + "\n  ]}\n",  # 2.8's DescribeProducers has such a tail
        "ProduceResponse.json": '{ "apiKey": 0, "type": "response", "name": "P", "validVersions": "0-99", "fields": [] }',
    })
    assert generate_kafka_releases.ranges_from_schemas(jar) == {0: (3, 13), 1: (4, 17), 3: (0, 13), 5: (0, 1)}


def test_the_committed_table_renders_to_itself():
    table = {release: (kafka_releases.READ_FROM[release], kafka_releases.API_VERSIONS[release],
                       kafka_releases.FEATURES[release])
             for release in kafka_releases.READ_FROM}
    with open(generate_kafka_releases.OUTPUT, encoding="utf-8") as handle:
        assert generate_kafka_releases.render(table) == handle.read()
    assert list(kafka_releases.READ_FROM) == [release for release, _ in generate_kafka_releases.RELEASES]
