#!/usr/bin/env bash
# Installs the non-Python tools the test suites drive, so that a fresh machine needs nothing by
# hand: kcat (librdkafka's CLI, Debian package), Apache Kafka's jars from Maven Central
# (compat/kafka_jars.py, cached in compat/.cache) and the Go test programs (compat/go_programs.py:
# modules from the Go module proxy, checked against the committed go.sum, binaries cached in
# compat/.cache/go) and the Node programs' npm packages (compat/node_programs.py: `npm ci` from the
# committed package-lock.json into compat/.cache/npm). Idempotent: a second run costs a second.
# Python clients (kafka-python, aiokafka, confluent-kafka) come from pyproject's `test` extra.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1 && ! command -v kafkacat >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt_get="apt-get"
    elif command -v sudo >/dev/null 2>&1; then
        apt_get="sudo apt-get"
    else
        echo "install_tools: kcat is missing and apt-get needs root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $apt_get update -qq
    $apt_get install -y -qq kcat >/dev/null
fi

for tool in java mvn; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install_tools: $tool is missing (Java 17 and Maven are needed for Kafka's jars)" >&2; exit 1; }
done
python3 compat/kafka_jars.py >/dev/null
command -v go >/dev/null 2>&1 || { echo "install_tools: go is missing (the franz-go and Sarama test programs are Go programs)" >&2; exit 1; }
python3 compat/go_programs.py >/dev/null
command -v npm >/dev/null 2>&1 || { echo "install_tools: node and npm are missing (the kafkajs tests run a Node program)" >&2; exit 1; }
python3 compat/node_programs.py >/dev/null
echo "install_tools: kcat $(command -v kcat || command -v kafkacat), Kafka jars, Go programs and Node programs in compat/.cache"
